/*
 * test_structure.c - the shape of lib/ that docs/HACKING.md promises: no
 * module calls into a module that calls back into it (read off the built
 * objects with nm), the state machine does not call the loop, and no file
 * in lib/ is much over 600 lines; and that everything but the epoll backend
 * is plain POSIX 2008 C11, so that a port to another system touches only the
 * loop backend.
 */
#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/ts_util.h"

#define MAX_MODULES 64
#define MAX_SYMS 512

typedef struct module {
  char name[64];
  char defs[MAX_SYMS][64];
  int ndefs;
  char uses[MAX_SYMS][64];
  int nuses;
} module;

static module mods[MAX_MODULES];
static int nmods;
/* calls[a][b]: module a uses a symbol module b defines */
static int calls[MAX_MODULES][MAX_MODULES];

static const char *build_dir(void) {
  const char *d = getenv("ES_BUILD_DIR");
  ck_assert_msg(d && *d, "ES_BUILD_DIR is not set");
  return d;
}

static const char *src_dir(void) {
  const char *d = getenv("ES_SRC_DIR");
  ck_assert_msg(d && *d, "ES_SRC_DIR is not set");
  return d;
}

/* Reads one object's defined and undefined global symbols (nm -P). */
static void read_object(module *m, const char *path) {
  char cmd[1500];
  snprintf(cmd, sizeof cmd, "nm -P '%s'", path);
  FILE *f = popen(cmd, "r");
  ck_assert_msg(f != NULL, "cannot run nm");
  char line[512];
  while (fgets(line, sizeof line, f)) {
    char sym[256], type[8];
    if (sscanf(line, "%255s %7s", sym, type) != 2 || strlen(sym) >= 64)
      continue;
    if (strchr("TDRB", type[0]) && m->ndefs < MAX_SYMS)
      strcpy(m->defs[m->ndefs++], sym);
    else if (type[0] == 'U' && m->nuses < MAX_SYMS)
      strcpy(m->uses[m->nuses++], sym);
  }
  ck_assert_int_eq(pclose(f), 0);
}

static void load(void) {
  if (nmods)
    return;
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/lib", build_dir());
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "no %s", dir);
  struct dirent *e;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 3 || strcmp(e->d_name + n - 2, ".o") != 0 || n - 2 >= 64)
      continue;
    ck_assert_int_lt(nmods, MAX_MODULES);
    module *m = &mods[nmods++];
    memcpy(m->name, e->d_name, n - 2);
    m->name[n - 2] = '\0';
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    read_object(m, path);
  }
  closedir(d);
  for (int a = 0; a < nmods; a++)
    for (int i = 0; i < mods[a].nuses; i++)
      for (int b = 0; b < nmods; b++)
        for (int j = 0; b != a && j < mods[b].ndefs; j++)
          if (strcmp(mods[a].uses[i], mods[b].defs[j]) == 0)
            calls[a][b] = 1;
}

static int find(const char *name) {
  for (int i = 0; i < nmods; i++)
    if (strcmp(mods[i].name, name) == 0)
      return i;
  return -1;
}

/* Does a reach b through calls? (depth-first, seen marks visited) */
static int reaches(int a, int b, int *seen) {
  for (int n = 0; n < nmods; n++) {
    if (!calls[a][n] || seen[n])
      continue;
    if (n == b)
      return 1;
    seen[n] = 1;
    if (reaches(n, b, seen))
      return 1;
  }
  return 0;
}

START_TEST(test_objects_found) {
  load();
  /* the modules HACKING.md names are all there, with their symbols */
  const char *names[] = {"source", "transfer", "multi", "run", "parser", "handle"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    int m = find(names[i]);
    ck_assert_msg(m >= 0, "no lib/%s.o", names[i]);
    ck_assert_int_gt(mods[m].ndefs, 0);
  }
  /* the graph is read right: the loop calls the state machine */
  ck_assert(calls[find("multi")][find("source")]);
  ck_assert(calls[find("source")][find("transfer")]);
}
END_TEST

START_TEST(test_no_cycle) {
  load();
  for (int a = 0; a < nmods; a++) {
    int seen[MAX_MODULES] = {0};
    ck_assert_msg(!reaches(a, a, seen), "lib/%s.c calls, through other modules, back into itself",
                  mods[a].name);
  }
}
END_TEST

START_TEST(test_one_way) {
  load();
  /* the state machine and the transfer never call the loop or run.c */
  const char *low[] = {"source", "transfer", "parser", "listeners", "event", "policy", "options"};
  const char *high[] = {"multi", "drive", "run"};
  for (size_t i = 0; i < sizeof low / sizeof low[0]; i++)
    for (size_t j = 0; j < sizeof high / sizeof high[0]; j++) {
      int a = find(low[i]), b = find(high[j]);
      ck_assert(a >= 0 && b >= 0);
      ck_assert_msg(!calls[a][b], "lib/%s.c calls lib/%s.c", low[i], high[j]);
    }
  /* and the transfer knows nothing of the source */
  ck_assert(!calls[find("transfer")][find("source")]);
  ck_assert(!calls[find("transfer")][find("handle")]);
}
END_TEST

START_TEST(test_file_sizes) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/lib", src_dir());
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "no %s", dir);
  struct dirent *e;
  int files = 0;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 3 || (strcmp(e->d_name + n - 2, ".c") != 0 && strcmp(e->d_name + n - 2, ".h") != 0))
      continue;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
      lines += c == '\n';
    fclose(f);
    files++;
    /* "about 600": a file that grows past 650 lines wants splitting */
    ck_assert_msg(lines <= 650, "lib/%s has %d lines", e->d_name, lines);
  }
  closedir(d);
  ck_assert_int_gt(files, 10);
}
END_TEST

/* Each lib/ file but loop_epoll.c compiles as C11 with nothing but POSIX
 * 2008 (no _GNU_SOURCE), and only loop_epoll.c names epoll or eventfd. */
START_TEST(test_posix_only) {
  char dir[1024];
  snprintf(dir, sizeof dir, "%s/lib", src_dir());
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "no %s", dir);
  struct dirent *e;
  int checked = 0;
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (n < 3 || strcmp(e->d_name + n - 2, ".c") != 0)
      continue;
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    int linux_only = 0;
    while (fgets(line, sizeof line, f))
      linux_only |= strstr(line, "<sys/epoll.h>") || strstr(line, "<sys/eventfd.h>");
    fclose(f);
    if (strcmp(e->d_name, "loop_epoll.c") == 0) {
      ck_assert_msg(linux_only, "loop_epoll.c does not include <sys/epoll.h>?");
      continue;
    }
    ck_assert_msg(!linux_only, "lib/%s includes a Linux-only header", e->d_name);
    char cmd[3200];
    snprintf(cmd, sizeof cmd,
             "${CC:-cc} -fsyntax-only -std=c11 -D_POSIX_C_SOURCE=200809L -Werror "
             "-I'%s/include' -I'%s/lib' $(pkg-config --cflags libcurl 2>/dev/null) "
             "'%s' 2>&1",
             src_dir(), src_dir(), path);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    char out[512] = "";
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = '\0';
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "lib/%s is not plain POSIX C11: %s", e->d_name, out);
    checked++;
  }
  closedir(d);
  ck_assert_int_gt(checked, 10);
}
END_TEST

static Suite *structure_suite(void) {
  Suite *s = suite_create("structure");
  TCase *tc = tcase_create("modules");
  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_objects_found);
  tcase_add_test(tc, test_no_cycle);
  tcase_add_test(tc, test_one_way);
  tcase_add_test(tc, test_file_sizes);
  tcase_add_test(tc, test_posix_only);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) { return ts_run_suite(structure_suite(), CK_NORMAL); }
