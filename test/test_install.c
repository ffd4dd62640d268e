/*
 * test_install.c - `make install` and `make uninstall` into a staging
 * directory, and a program built against the staged library with pkg-config,
 * linked shared and static, as docs/packaging.md tells users to.
 *
 * It builds the library itself (plain, no sanitizers) in a temporary
 * directory: first `make lib` with the default PREFIX, then `make install
 * PREFIX=/usr DESTDIR=...`, which is how most people (and packagers) do it,
 * so a stale eventsource.pc from the first step would be caught.
 *
 * The "cmake" case installs the same way and builds an out-of-tree CMake
 * project with find_package(eventsource): both imported targets, a version
 * that must be refused, and the staged tree moved elsewhere.
 *
 * Needs ES_SRC_DIR (set by `make test`), make, a C compiler, pkg-config,
 * readelf, nm and cmake (mk/deps.sh installs them; a missing one fails).
 */
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "eventsource.h"

#define STR_(x) #x
#define STR(x) STR_(x)
/* The soname policy of docs/packaging.md: libeventsource.so.0.MINOR while
 * the major version is 0, libeventsource.so.MAJOR from 1.0 on. */
#if EVENTSOURCE_VERSION_MAJOR == 0
#define SONAME "libeventsource.so.0." STR(EVENTSOURCE_VERSION_MINOR)
#else
#define SONAME "libeventsource.so." STR(EVENTSOURCE_VERSION_MAJOR)
#endif

static char tmp[64];   /* the temporary directory */
static char stage[128]; /* DESTDIR */

static const char *src_dir(void) {
  const char *d = getenv("ES_SRC_DIR");
  return d != NULL && *d != '\0' ? d : ".";
}

/* Runs a shell command (printf-style) with its output in tmp/cmd.log; on
 * failure shows the command and the end of the log. Returns the exit code. */
static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int sh(const char *fmt, ...) {
  char cmd[8192], full[8400];
  va_list ap;
  int n, rc;
  va_start(ap, fmt);
  n = vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  ck_assert_int_lt(n, (int)sizeof cmd);
  n = snprintf(full, sizeof full, "( %s ) >'%s/cmd.log' 2>&1", cmd, tmp);
  ck_assert_int_lt(n, (int)sizeof full);
  rc = system(full);
  rc = rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  if (rc != 0) {
    char tail[600];
    snprintf(tail, sizeof tail, "tail -n 40 '%s/cmd.log' >&2", tmp);
    fprintf(stderr, "command failed (%d): %s\n", rc, cmd);
    if (system(tail) != 0)
      fprintf(stderr, "(no log)\n");
  }
  return rc;
}

/* The first line of what the last sh() printed. */
static const char *sh_output(void) {
  static char line[4096];
  char path[128];
  FILE *f;
  snprintf(path, sizeof path, "%s/cmd.log", tmp);
  f = fopen(path, "r");
  ck_assert_ptr_nonnull(f);
  if (fgets(line, sizeof line, f) == NULL)
    line[0] = '\0';
  fclose(f);
  line[strcspn(line, "\n")] = '\0';
  return line;
}

static int exists(const char *rel) {
  char path[512];
  struct stat st;
  snprintf(path, sizeof path, "%s%s", stage, rel);
  return lstat(path, &st) == 0;
}

/* Files and symbolic links left under stage. */
static int leftovers;
static int count_leftover(const char *path, const struct stat *st, int type,
                          struct FTW *ftw) {
  (void)st;
  (void)ftw;
  if (type == FTW_F || type == FTW_SL || type == FTW_SLN) {
    fprintf(stderr, "left after uninstall: %s\n", path);
    leftovers++;
  }
  return 0;
}

/* The temporary directory is made and removed by an unchecked fixture,
 * which runs in the runner's process, so it goes even when an assertion
 * ends the test. */
static void tmp_setup(void) {
  snprintf(tmp, sizeof tmp, "/tmp/es-test-install.XXXXXX");
  if (mkdtemp(tmp) == NULL)
    tmp[0] = '\0';
  snprintf(stage, sizeof stage, "%s/stage", tmp);
}

static void tmp_teardown(void) {
  char cmd[128];
  if (tmp[0] == '\0')
    return;
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", tmp);
  tmp[0] = '\0';
}

/* A make above us (make test) must not pass its variables, jobserver or
 * sanitizer build down to the ones a test runs. */
static void clean_make_env(void) {
  unsetenv("MAKEFLAGS");
  unsetenv("MFLAGS");
  unsetenv("MAKELEVEL");
  unsetenv("MAKEOVERRIDES");
  unsetenv("O");
  unsetenv("SAN");
}

/* Writes text to tmp/rel. */
static void write_file(const char *rel, const char *text) {
  char path[256];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", tmp, rel);
  f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fputs(text, f) >= 0, 1);
  ck_assert_int_eq(fclose(f), 0);
}

static const char hello_c[] =
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include <eventsource.h>\n"
    "int main(void) {\n"
    "  eventsource_t *es = NULL;\n"
    "  const char *v = eventsource_version();\n"
    "  printf(\"%s\\n\", v);\n"
    "  if (strcmp(v, EVENTSOURCE_VERSION) != 0) return 1;\n"
    "  if (eventsource_version_num() != EVENTSOURCE_VERSION_NUM) return 1;\n"
    "  /* Pulls in the rest of the library and libcurl. */\n"
    "  if (eventsource_new(&es, \"http://127.0.0.1:1/\") != EVENTSOURCE_OK) return 1;\n"
    "  eventsource_free(es);\n"
    "  return 0;\n"
    "}\n";

/* The version lives in include/eventsource.h only; its four macros must
 * agree, since the Makefile reads the string and the numbers separately. */
START_TEST(version_macros_agree) {
  char numbers[64];
  snprintf(numbers, sizeof numbers, "%d.%d.%d", EVENTSOURCE_VERSION_MAJOR,
           EVENTSOURCE_VERSION_MINOR, EVENTSOURCE_VERSION_PATCH);
  ck_assert_str_eq(numbers, EVENTSOURCE_VERSION);
  ck_assert_uint_eq(EVENTSOURCE_VERSION_NUM,
                    ((unsigned)EVENTSOURCE_VERSION_MAJOR << 16) |
                        ((unsigned)EVENTSOURCE_VERSION_MINOR << 8) |
                        (unsigned)EVENTSOURCE_VERSION_PATCH);
  ck_assert_str_eq(eventsource_version(), EVENTSOURCE_VERSION);
  ck_assert_uint_eq(eventsource_version_num(), EVENTSOURCE_VERSION_NUM);
}
END_TEST

START_TEST(install_pkgconfig_uninstall) {
  const char *src = src_dir();
  const char *pc;
  char path[256];

  ck_assert_msg(tmp[0] != '\0', "no temporary directory");
  clean_make_env();

  /* Build with the default PREFIX, then install with another one. */
  ck_assert_int_eq(sh("make -C '%s' -j2 O='%s/build' SAN=0 CFLAGS=-O1 lib", src, tmp), 0);
  ck_assert_int_eq(sh("make -C '%s' O='%s/build' SAN=0 CFLAGS=-O1 PREFIX=/usr "
                      "DESTDIR='%s' install",
                      src, tmp, stage),
                   0);

  ck_assert(exists("/usr/include/eventsource.h"));
  ck_assert(exists("/usr/include/eventsource_curl.h"));
  ck_assert(exists("/usr/include/eventsource_parser.h"));
  ck_assert(exists("/usr/lib/libeventsource.so." EVENTSOURCE_VERSION));
  ck_assert(exists("/usr/lib/" SONAME));
  ck_assert(exists("/usr/lib/libeventsource.so"));
  ck_assert(exists("/usr/lib/libeventsource.a"));
  ck_assert(exists("/usr/lib/pkgconfig/eventsource.pc"));
  snprintf(path, sizeof path, "%s/man/eventsource.3", src);
  if (access(path, F_OK) == 0) {
    ck_assert(exists("/usr/share/man/man3/eventsource.3"));
    ck_assert(exists("/usr/share/man/man3/eventsource_run.3"));
    ck_assert(exists("/usr/share/man/man3/eventsource_close.3"));
    ck_assert(exists("/usr/share/man/man3/eventsource_parser.3"));
    ck_assert(exists("/usr/share/man/man3/eventsource_parser_feed.3"));
    /* "man eventsource_close" finds eventsource_run(3) through the .so page
     * (checked only where man-db is installed). */
    ck_assert_int_eq(sh("command -v man >/dev/null || exit 0; "
                        "MANPAGER=cat MANWIDTH=100 man -M '%s/usr/share/man' 3 eventsource_close "
                        "| grep -q 'eventsource_restart()'",
                        stage),
                     0);
  }

  /* The .pc file must describe where it was installed, not the PREFIX the
   * library happened to be built with. */
  ck_assert_int_eq(sh("grep -x 'prefix=/usr' '%s/usr/lib/pkgconfig/eventsource.pc'", stage), 0);

  /* The soname carries the major version; only eventsource_* is exported. */
  ck_assert_int_eq(sh("readelf -d '%s/usr/lib/libeventsource.so." EVENTSOURCE_VERSION
                      "' | grep SONAME | grep -F '[" SONAME "]'",
                      stage),
                   0);
  ck_assert_int_eq(sh("nm -D --defined-only '%s/usr/lib/libeventsource.so' | "
                      "awk '$3 !~ /^eventsource_/ && $2 ~ /[A-Z]/ { print; bad = 1 } "
                      "END { exit bad }'",
                      stage),
                   0);

  write_file("hello.c", hello_c);

  pc = "PKG_CONFIG_PATH=\"$S/usr/lib/pkgconfig\" PKG_CONFIG_SYSROOT_DIR=\"$S\"";
  ck_assert_int_eq(sh("S='%s'; %s pkg-config --modversion eventsource", stage, pc), 0);
  ck_assert_str_eq(sh_output(), EVENTSOURCE_VERSION);
  /* Requires.private and Libs.private make it into --static. */
  ck_assert_int_eq(sh("S='%s'; %s pkg-config --static --libs eventsource | "
                      "grep -e -lcurl | grep -e -pthread",
                      stage, pc),
                   0);

  /* Shared: what most programs do. */
  ck_assert_int_eq(sh("S='%s'; T='%s'; cc -o \"$T/hello-shared\" \"$T/hello.c\" "
                      "$(%s pkg-config --cflags --libs eventsource)",
                      stage, tmp, pc),
                   0);
  ck_assert_int_eq(sh("readelf -d '%s/hello-shared' | grep NEEDED | "
                      "grep -F '[" SONAME "]'",
                      tmp),
                   0);
  ck_assert_int_eq(sh("LD_LIBRARY_PATH='%s/usr/lib' '%s/hello-shared'", stage, tmp), 0);
  ck_assert_str_eq(sh_output(), EVENTSOURCE_VERSION);

  /* Static libeventsource, shared libcurl (Debian ships no static libraries
   * for most of libcurl's dependencies; see docs/packaging.md). */
  ck_assert_int_eq(sh("S='%s'; T='%s'; cc -o \"$T/hello-static\" \"$T/hello.c\" "
                      "$(%s pkg-config --cflags eventsource) "
                      "$(%s pkg-config --libs-only-L eventsource) "
                      "-Wl,-Bstatic -leventsource -Wl,-Bdynamic "
                      "$(pkg-config --libs libcurl) -pthread",
                      stage, tmp, pc, pc),
                   0);
  ck_assert_int_eq(sh("! readelf -d '%s/hello-static' | grep NEEDED | grep -F libeventsource", tmp),
                   0);
  ck_assert_int_eq(sh("'%s/hello-static'", tmp), 0);
  ck_assert_str_eq(sh_output(), EVENTSOURCE_VERSION);

  /* Uninstall leaves none of our files. */
  ck_assert_int_eq(sh("make -C '%s' O='%s/build' SAN=0 CFLAGS=-O1 PREFIX=/usr "
                      "DESTDIR='%s' uninstall",
                      src, tmp, stage),
                   0);
  leftovers = 0;
  ck_assert_int_eq(nftw(stage, count_leftover, 16, FTW_PHYS), 0);
  ck_assert_int_eq(leftovers, 0);

}
END_TEST

/* The CMake project of the "cmake" case: the shared program (hello.c, as
 * above) and a static one that also includes eventsource_curl.h and calls
 * libcurl, which only the targets' link to CURL::libcurl provides. The
 * version asked for is the one of this header (MAJOR.MINOR); the
 * project fails unless it finds exactly that library. */
static const char hello_curl_c[] =
    "#include <stdio.h>\n"
    "#include <string.h>\n"
    "#include <eventsource.h>\n"
    "#include <eventsource_curl.h>\n"
    "static CURLcode tune(eventsource_t *es, CURL *easy, void *ud) {\n"
    "  (void)es; (void)ud;\n"
    "  return curl_easy_setopt(easy, CURLOPT_VERBOSE, 0L);\n"
    "}\n"
    "int main(void) {\n"
    "  eventsource_t *es = NULL;\n"
    "  printf(\"%s\\n\", eventsource_version());\n"
    "  if (strcmp(eventsource_version(), EVENTSOURCE_VERSION) != 0) return 1;\n"
    "  if (curl_version() == NULL) return 1;\n"
    "  if (eventsource_new(&es, \"http://127.0.0.1:1/\") != EVENTSOURCE_OK) return 1;\n"
    "  if (eventsource_set_curl_callback(es, tune, NULL) != EVENTSOURCE_OK) return 1;\n"
    "  eventsource_free(es);\n"
    "  return 0;\n"
    "}\n";

static const char app_cmake[] =
    "cmake_minimum_required(VERSION 3.12)\n"
    "project(es_app C)\n"
    "find_package(eventsource " STR(EVENTSOURCE_VERSION_MAJOR) "." STR(
        EVENTSOURCE_VERSION_MINOR) " REQUIRED)\n"
    "if(NOT eventsource_VERSION STREQUAL \"" EVENTSOURCE_VERSION "\")\n"
    "  message(FATAL_ERROR \"eventsource_VERSION is ${eventsource_VERSION}\")\n"
    "endif()\n"
    "foreach(t eventsource::eventsource eventsource::eventsource_static)\n"
    "  if(NOT TARGET ${t})\n"
    "    message(FATAL_ERROR \"no target ${t}\")\n"
    "  endif()\n"
    "endforeach()\n"
    "add_executable(hello-shared ../hello.c)\n"
    "target_link_libraries(hello-shared PRIVATE eventsource::eventsource)\n"
    "add_executable(hello-static ../hello_curl.c)\n"
    "target_link_libraries(hello-static PRIVATE eventsource::eventsource_static)\n";

/* A project asking for the next major version (and, while the major is 0,
 * the next minor), which the version file must refuse. */
static const char bad_cmake[] =
    "cmake_minimum_required(VERSION 3.12)\n"
    "project(es_bad C)\n"
    "find_package(eventsource ${ES_WANT} QUIET)\n"
    "if(eventsource_FOUND)\n"
    "  message(FATAL_ERROR \"eventsource ${eventsource_VERSION} taken for ${ES_WANT}\")\n"
    "endif()\n"
    "find_package(eventsource ${ES_OK} REQUIRED)\n";

/* Configures tmp/app in tmp/BUILD with -DVAR=VALUE (CMAKE_PREFIX_PATH or
 * eventsource_DIR), builds it and runs both programs, the shared one with
 * the libraries in LIBS. */
static void cmake_app(const char *build, const char *var, const char *value,
                      const char *libs) {
  ck_assert_int_eq(sh("cmake -S '%s/app' -B '%s/%s' -D%s='%s' -DCMAKE_BUILD_TYPE=Release",
                      tmp, tmp, build, var, value),
                   0);
  ck_assert_int_eq(sh("cmake --build '%s/%s'", tmp, build), 0);
  ck_assert_int_eq(sh("readelf -d '%s/%s/hello-shared' | grep NEEDED | "
                      "grep -F '[" SONAME "]'",
                      tmp, build),
                   0);
  ck_assert_int_eq(sh("! readelf -d '%s/%s/hello-static' | grep NEEDED | grep -F libeventsource",
                      tmp, build),
                   0);
  ck_assert_int_eq(sh("readelf -d '%s/%s/hello-static' | grep NEEDED | grep -F libcurl",
                      tmp, build),
                   0);
  ck_assert_int_eq(sh("LD_LIBRARY_PATH='%s' '%s/%s/hello-shared'", libs, tmp, build), 0);
  ck_assert_str_eq(sh_output(), EVENTSOURCE_VERSION);
  ck_assert_int_eq(sh("'%s/%s/hello-static'", tmp, build), 0);
  ck_assert_str_eq(sh_output(), EVENTSOURCE_VERSION);
}

START_TEST(install_cmake_package) {
  const char *src = src_dir();
  char dir[256], libs[256];

  ck_assert_msg(tmp[0] != '\0', "no temporary directory");
  clean_make_env();
  /* Like pkg-config, cmake is a test dependency: mk/deps.sh installs it. */
  ck_assert_msg(sh("command -v cmake") == 0,
                "cmake not found: `make deps-test` installs it");

  ck_assert_int_eq(sh("make -C '%s' -j2 O='%s/build' SAN=0 CFLAGS=-O1 lib", src, tmp), 0);
  ck_assert_int_eq(sh("make -C '%s' O='%s/build' SAN=0 CFLAGS=-O1 PREFIX=/usr "
                      "DESTDIR='%s' install",
                      src, tmp, stage),
                   0);
  ck_assert(exists("/usr/lib/cmake/eventsource/eventsourceConfig.cmake"));
  ck_assert(exists("/usr/lib/cmake/eventsource/eventsourceConfigVersion.cmake"));
  /* The stage is nowhere in the files. */
  ck_assert_int_eq(sh("! grep -rF '%s' '%s/usr/lib/cmake/eventsource'", stage, stage), 0);

  snprintf(dir, sizeof dir, "%s/app", tmp);
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  snprintf(dir, sizeof dir, "%s/bad", tmp);
  ck_assert_int_eq(mkdir(dir, 0755), 0);
  write_file("hello.c", hello_c);
  write_file("hello_curl.c", hello_curl_c);
  write_file("app/CMakeLists.txt", app_cmake);
  write_file("bad/CMakeLists.txt", bad_cmake);

  /* The staged tree, as DESTDIR left it. */
  snprintf(dir, sizeof dir, "%s/usr", stage);
  snprintf(libs, sizeof libs, "%s/usr/lib", stage);
  cmake_app("app-build", "CMAKE_PREFIX_PATH", dir, libs);

  /* The version file: the next major version is refused, and while the
   * major is 0 the next minor too; the version installed is taken. */
  ck_assert_int_eq(sh("cmake -S '%s/bad' -B '%s/bad-major' -DCMAKE_PREFIX_PATH='%s' "
                      "-DES_WANT=%d.0 -DES_OK=%d.%d",
                      tmp, tmp, dir, EVENTSOURCE_VERSION_MAJOR + 1, EVENTSOURCE_VERSION_MAJOR,
                      EVENTSOURCE_VERSION_MINOR),
                   0);
#if EVENTSOURCE_VERSION_MAJOR == 0
  ck_assert_int_eq(sh("cmake -S '%s/bad' -B '%s/bad-minor' -DCMAKE_PREFIX_PATH='%s' "
                      "-DES_WANT=0.%d -DES_OK=0.%d.0",
                      tmp, tmp, dir, EVENTSOURCE_VERSION_MINOR + 1, EVENTSOURCE_VERSION_MINOR),
                   0);
  /* An older minor of the 0 series is not this one's API either. */
  if (EVENTSOURCE_VERSION_MINOR > 0)
    ck_assert_int_eq(sh("cmake -S '%s/bad' -B '%s/bad-older' -DCMAKE_PREFIX_PATH='%s' "
                        "-DES_WANT=0.%d -DES_OK=0.%d",
                        tmp, tmp, dir, EVENTSOURCE_VERSION_MINOR - 1, EVENTSOURCE_VERSION_MINOR),
                     0);
#endif

  /* Relocatable: the whole tree moved elsewhere still works. */
  ck_assert_int_eq(sh("mv '%s/usr' '%s/moved'", stage, stage), 0);
  snprintf(dir, sizeof dir, "%s/moved", stage);
  snprintf(libs, sizeof libs, "%s/moved/lib", stage);
  cmake_app("app-moved", "CMAKE_PREFIX_PATH", dir, libs);
  ck_assert_int_eq(sh("mv '%s/moved' '%s/usr'", stage, stage), 0);

  /* A multiarch LIBDIR, one level deeper (docs/packaging.md), beside it;
   * cmake looks in lib/<arch>/ only for its own architecture's name, so
   * the project names the directory. */
  ck_assert_int_eq(sh("make -C '%s' O='%s/build' SAN=0 CFLAGS=-O1 PREFIX=/usr "
                      "LIBDIR=/usr/lib/es-arch DESTDIR='%s' install",
                      src, tmp, stage),
                   0);
  ck_assert(exists("/usr/lib/es-arch/cmake/eventsource/eventsourceConfig.cmake"));
  snprintf(dir, sizeof dir, "%s/usr/lib/es-arch/cmake/eventsource", stage);
  snprintf(libs, sizeof libs, "%s/usr/lib/es-arch", stage);
  cmake_app("app-arch", "eventsource_DIR", dir, libs);
  ck_assert_int_eq(sh("grep -F '%s/usr/lib/es-arch/libeventsource.so." EVENTSOURCE_VERSION "' "
                      "'%s/app-arch/CMakeFiles/hello-shared.dir/link.txt'",
                      stage, tmp),
                   0);
  ck_assert_int_eq(sh("make -C '%s' O='%s/build' SAN=0 CFLAGS=-O1 PREFIX=/usr "
                      "LIBDIR=/usr/lib/es-arch DESTDIR='%s' uninstall",
                      src, tmp, stage),
                   0);
  ck_assert(!exists("/usr/lib/es-arch/cmake/eventsource"));

  /* Uninstall removes the package (and its directory). */
  ck_assert_int_eq(sh("make -C '%s' O='%s/build' SAN=0 CFLAGS=-O1 PREFIX=/usr "
                      "DESTDIR='%s' uninstall",
                      src, tmp, stage),
                   0);
  ck_assert(!exists("/usr/lib/cmake/eventsource"));
  leftovers = 0;
  ck_assert_int_eq(nftw(stage, count_leftover, 16, FTW_PHYS), 0);
  ck_assert_int_eq(leftovers, 0);
}
END_TEST

static Suite *install_suite(void) {
  Suite *su = suite_create("install");
  TCase *tc = tcase_create("version");
  tcase_add_test(tc, version_macros_agree);
  tcase_set_timeout(tc, 5);
  suite_add_tcase(su, tc);

  tc = tcase_create("install");
  tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, install_pkgconfig_uninstall);
  /* It compiles the library. */
  tcase_set_timeout(tc, 120);
  suite_add_tcase(su, tc);

  tc = tcase_create("cmake");
  tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
  tcase_add_test(tc, install_cmake_package);
  /* It compiles the library, then runs cmake five to seven times. */
  tcase_set_timeout(tc, 180);
  suite_add_tcase(su, tc);
  return su;
}

int main(void) {
  SRunner *sr = srunner_create(install_suite());
  int failed;
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
