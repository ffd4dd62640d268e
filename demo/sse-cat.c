/*
 * sse-cat.c - prints every event of an EventSource (Server-Sent Events)
 * stream. See docs/sse-cat.md for the options, the output formats and the
 * exit statuses.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * Threads and signals
 * -------------------
 * eventsource_close() may be called from any thread but is not
 * async-signal-safe, so it must never be called from a signal handler. The
 * design is:
 *
 *  1. Once the command line is parsed, and before the source exists, main()
 *     blocks SIGINT, SIGTERM and SIGUSR1 with pthread_sigmask(). Every
 *     thread created afterwards (by us, by the library, by libcurl's
 *     resolver) inherits that mask, so these signals
 *     are never delivered asynchronously to any thread: they stay pending
 *     until a sigwait() takes them. No signal handler exists at all.
 *  2. A dedicated signal thread sits in sigwait(). On SIGINT or SIGTERM it
 *     records the signal and calls eventsource_close(es) -- an ordinary call
 *     from an ordinary thread, which the API allows while another thread runs
 *     the source. A second SIGINT/SIGTERM (close did not finish, or the user
 *     is impatient) ends the process at once with _exit(128 + signal).
 *  3. The main thread runs the source with eventsource_run(). Listeners run
 *     on the main thread; --max-events and write errors close the source from
 *     the listener (allowed: "callback: yes"). eventsource_run() returns when
 *     the source is CLOSED for whatever reason -- our close, a signal's close
 *     or a fatal error -- and its return value says which, so no extra
 *     "done" notification is needed. (The alternative, eventsource_start()
 *     plus sigwait() in main for a "done" signal raised by a listener, would
 *     hang if the source ever closed without a final notification; here the
 *     end of eventsource_run() is the notification.)
 *  4. Main then stops the signal thread: it sets an atomic flag and sends
 *     the thread SIGUSR1 with pthread_kill(); the thread ignores a SIGUSR1
 *     while the flag is unset (an outside SIGUSR1 does nothing). Main joins
 *     it, and only then frees the source, so the signal thread never touches
 *     a freed handle (closing an already closed source is a no-op).
 *
 * SIGPIPE is ignored so that a closed stdout is an ordinary write error: the
 * source is closed cleanly and sse-cat exits with status 1.
 *
 * --file PATH replays a recorded stream instead: main() feeds it to the
 * library's public parser (eventsource_parser.h) and prints with the same
 * functions as the listeners; no source, no thread, no signal is blocked.
 *
 * Terminal safety
 * ---------------
 * The server chooses ids, types, data, comments and parts of the error
 * messages. Every byte of the readable output and of stderr goes through
 * write_escaped() (stderr lines through note()), which turns the control
 * characters a terminal would obey into visible escapes (docs/sse-cat.md,
 * "Control characters are escaped"). --json is escaped by JSON's rules.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <curl/curl.h>

#include "eventsource.h"
#include "eventsource_curl.h"
#include "eventsource_parser.h"

#define PROG "sse-cat"

enum { EXIT_USAGE = 2 };

/* Long options without a short form. */
enum {
  OPT_LAST_EVENT_ID = 256,
  OPT_RETRY,
  OPT_MAX_RETRY,
  OPT_READ_TIMEOUT,
  OPT_NO_RECONNECT_ON_END,
  OPT_MAX_EVENTS,
  OPT_TYPE,
  OPT_COMMENTS,
  OPT_JSON,
  OPT_CACERT,
  OPT_HTTP1_1,
  OPT_HTTP2,
  OPT_HTTP2_PK,
  OPT_INSECURE,
  OPT_COMPRESSED,
  OPT_LOCATION_TRUSTED,
  OPT_ALLOW_HTTP_REDIRECT,
  OPT_MAX_LAST_EVENT_ID,
  OPT_FILE,
  OPT_STATS,
  OPT_HELP,
  OPT_VERSION
};

typedef struct header_opt {
  char *name;  /* owned */
  char *value; /* points into name's allocation */
} header_opt;

typedef struct config {
  const char *url;
  header_opt *headers;
  size_t nheaders;
  const char *method;
  char *body; /* owned; may contain NUL */
  size_t body_len;
  int have_body;
  const char *last_event_id;
  long retry_ms, max_retry_ms, read_timeout_ms; /* -1: not given */
  long max_events;                              /* 0: unlimited */
  long max_last_event_id;                       /* -1: not given */
  int compressed, location_trusted, allow_http_redirect;
  int no_reconnect_on_end; /* a clean end of the stream ends sse-cat */
  const char **types;
  size_t ntypes;
  int comments, json, insecure, verbose;
  int stats; /* --stats: the source's statistics on stderr at exit */
  eventsource_http_version_t http_version; /* --http1.1, --http2, ... */
  const char *http_flag;                   /* the flag that set it */
  const char *cacert;
  const char *file; /* --file: a recorded stream ("-": stdin), no URL */
} config;

typedef struct app {
  const config *cfg;
  long events;        /* message-kind events printed (after --type) */
  int max_reached;    /* closed because of --max-events */
  int write_error;    /* errno of a failed write to stdout, or -1 */
  int end_204;        /* the server ended the stream with 204 */
  int end_eof;        /* it ended the stream, with --no-reconnect-on-end */
  int final_reported; /* the fatal error was already shown on stderr */
} app;

/* Shared between the main thread and the signal thread. */
static atomic_int g_signal_received; /* SIGINT/SIGTERM number, 0 if none */
static atomic_int g_sigthread_quit;

/* ------------------------------------------------------------------------ */
/* Escaping: every human-readable line goes through write_escaped()          */
/* ------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s[0..n), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  size_t len;
  unsigned lo = 0x80, hi = 0xbf;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0)
      lo = 0xa0;
    else if (c == 0xed)
      hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0)
      lo = 0x90;
    else if (c == 0xf4)
      hi = 0x8f;
  } else
    return 0;
  if (n < len)
    return 0;
  if (s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < len; i++)
    if (s[i] < 0x80 || s[i] > 0xbf)
      return 0;
  return len;
}

/* Writes str[0..len) to f so that no byte can control the terminal (the
 * server chooses ids, types, data and comments, and parts of the error
 * messages): a C0 control other than TAB (LF included, U+0000 included) and
 * DEL become \xHH (two lower-case hex digits), a C1 control U+0080-U+009F
 * (UTF-8 C2 80..C2 9F) becomes \u00HH, and a byte that is not part of valid
 * UTF-8 (the library never hands one out) \xHH. TAB, printable ASCII and
 * every other UTF-8 character are written as they are; a backslash is not
 * doubled (the readable form is for people; --json is exact). */
static void write_escaped(FILE *f, const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t run = 0, i = 0; /* s[run..i) is waiting to be written as is */
  while (i < len) {
    unsigned char c = s[i];
    size_t n = 1;
    if (c >= 0x20 && c != 0x7f && c < 0x80) {
      i++;
      continue;
    }
    if (c == '\t') {
      i++;
      continue;
    }
    if (c >= 0x80) {
      n = utf8_seq_len(s + i, len - i);
      if (n > 0 && !(c == 0xc2 && s[i + 1] <= 0x9f)) {
        i += n;
        continue;
      }
    }
    fwrite(s + run, 1, i - run, f);
    if (n == 2) { /* C2 80..C2 9F */
      fprintf(f, "\\u00%02x", (unsigned)s[i + 1]);
      i += 2;
    } else {
      fprintf(f, "\\x%02x", (unsigned)c);
      i++;
    }
    run = i;
  }
  fwrite(s + run, 1, i - run, f);
}

/* One line on stderr: "sse-cat: " and the formatted text, escaped, and LF.
 * The line is built first and written at once (stderr is unbuffered). */
static void vnote(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

static void vnote(const char *fmt, va_list ap) {
  char *text = NULL, *line = NULL;
  size_t linelen = 0;
  int n = vasprintf(&text, fmt, ap);
  FILE *m;
  if (n < 0) {
    fputs(PROG ": out of memory\n", stderr);
    return;
  }
  m = open_memstream(&line, &linelen);
  fputs(PROG ": ", m ? m : stderr);
  write_escaped(m ? m : stderr, text, (size_t)n);
  putc('\n', m ? m : stderr);
  if (m != NULL) {
    if (fclose(m) == 0)
      fwrite(line, 1, linelen, stderr);
    else
      fputs(PROG ": out of memory\n", stderr);
    free(line);
  }
  free(text);
}

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(fmt, ap);
  va_end(ap);
}

/* ------------------------------------------------------------------------ */
/* Usage                                                                    */
/* ------------------------------------------------------------------------ */

static void usage(FILE *f) {
  fprintf(
      f,
      "Usage: " PROG " [options] URL\n"
      "       " PROG " [options] --file PATH\n"
      "Prints every event of the EventSource (Server-Sent Events) stream at URL,\n"
      "or of a recorded text/event-stream in PATH ('-': standard input).\n"
      "\n"
      "Request:\n"
      "  -H, --header 'Name: value'  add a request header (repeatable)\n"
      "  -X, --request METHOD        request method (default GET, POST with -d)\n"
      "  -d, --data BODY             request body; @FILE reads FILE, @- stdin\n"
      "      --last-event-id ID      Last-Event-ID of the first request\n"
      "      --max-last-event-id N   longest last event ID in bytes (default %lu;\n"
      "                              0: no limit)\n"
      "      --compressed            ask for a compressed response (Accept-Encoding)\n"
      "      --location-trusted      send the -H headers to other origins after a\n"
      "                              redirect too\n"
      "      --allow-http-redirect   follow redirects from https to http\n"
      "      --http1.1               use HTTP/1.1 only\n"
      "      --http2                 HTTP/2 over TLS, negotiated (the default on\n"
      "                              https: URLs; HTTP/1.1 on http: ones)\n"
      "      --http2-prior-knowledge HTTP/2 without negotiation (h2c on http:)\n"
      "      --cacert FILE           CA certificates to verify the server with\n"
      "      --insecure              do not verify the server's certificate\n"
      "Reconnection:\n"
      "      --retry MS              initial reconnection time (default %ld)\n"
      "      --max-retry MS          longest backoff delay (default %ld; a\n"
      "                              server's retry: may be longer)\n"
      "      --read-timeout MS       reconnect after MS without data (default %ld\n"
      "                              (%ld min); 0 waits for ever)\n"
      "      --no-reconnect-on-end   exit (status 0) when the server ends the\n"
      "                              stream instead of reconnecting\n"
      "Output:\n"
      "      --max-events N          exit (status 0) after N events\n"
      "      --type NAME             only print and count events of type NAME\n"
      "                              (repeatable)\n"
      "      --comments              print comment lines too\n"
      "      --json                  one JSON object per line\n"
      "      --file PATH             parse the recorded stream in PATH ('-': stdin)\n"
      "                              instead of connecting; no URL, no request or\n"
      "                              reconnection options\n"
      "  -v, --verbose               connection notices on stderr\n"
      "      --stats                 print the statistics on stderr at exit, one\n"
      "                              name=value per line\n"
      "      --help                  print this help and exit\n"
      "      --version               print the version and exit\n"
      "\n"
      "Options taking a value also accept the --option=value form.\n"
      "Control characters from the server are shown escaped (\\x1b), except in --json.\n"
      "Exit status: 0 after --max-events N events, a 204 answer, the end of the\n"
      "stream with --no-reconnect-on-end, or SIGINT/SIGTERM;\n"
      "1 on a fatal error; 2 on bad usage.\n",
      (unsigned long)EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID, (long)EVENTSOURCE_DEFAULT_RETRY_MS,
      (long)EVENTSOURCE_DEFAULT_MAX_RETRY_MS, (long)EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS,
      (long)EVENTSOURCE_DEFAULT_READ_TIMEOUT_MS / 60000);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vnote(fmt, ap);
  va_end(ap);
  fputs("Try '" PROG " --help' for more information.\n", stderr);
  exit(EXIT_USAGE);
}

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (q == NULL) {
    fputs(PROG ": out of memory\n", stderr);
    exit(EXIT_FAILURE);
  }
  return q;
}

/* ------------------------------------------------------------------------ */
/* Option parsing                                                           */
/* ------------------------------------------------------------------------ */

/* A decimal number in [min, max], the whole string, nothing else. */
static long parse_number(const char *opt, const char *s, long min, long max) {
  char *end = NULL;
  long v;
  if (*s == '\0' || !(*s == '-' || *s == '+' || (*s >= '0' && *s <= '9')))
    die_usage("%s: '%s' is not a number", opt, s);
  errno = 0;
  v = strtol(s, &end, 10);
  if (end == s || *end != '\0')
    die_usage("%s: '%s' is not a number", opt, s);
  if (errno == ERANGE || v < min || v > max)
    die_usage("%s: %s is out of range (%ld to %ld)", opt, s, min, max);
  return v;
}

static void add_header_opt(config *cfg, const char *arg) {
  const char *colon = strchr(arg, ':');
  size_t namelen;
  char *copy;
  const char *v;
  if (colon == NULL)
    die_usage("-H: '%s' is not 'Name: value'", arg);
  namelen = (size_t)(colon - arg);
  if (namelen == 0)
    die_usage("-H: '%s' has an empty header name", arg);
  for (size_t i = 0; i < namelen; i++) {
    unsigned char c = (unsigned char)arg[i];
    if (c <= ' ' || c >= 0x7f)
      die_usage("-H: '%s': invalid character in the header name", arg);
  }
  v = colon + 1;
  while (*v == ' ' || *v == '\t')
    v++;
  copy = xrealloc(NULL, namelen + 1 + strlen(v) + 1);
  memcpy(copy, arg, namelen);
  copy[namelen] = '\0';
  strcpy(copy + namelen + 1, v);
  cfg->headers = xrealloc(cfg->headers, (cfg->nheaders + 1) * sizeof *cfg->headers);
  cfg->headers[cfg->nheaders].name = copy;
  cfg->headers[cfg->nheaders].value = copy + namelen + 1;
  cfg->nheaders++;
}

/* Reads all of f (binary-safe). 0, or -1 with errno set. */
static int read_stream(FILE *f, char **out, size_t *outlen) {
  char *buf = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    size_t n;
    if (cap - len < 4096) {
      cap = cap ? cap * 2 : 8192;
      buf = xrealloc(buf, cap);
    }
    n = fread(buf + len, 1, cap - len, f);
    len += n;
    if (n == 0) {
      if (ferror(f)) {
        int e = errno ? errno : EIO;
        free(buf);
        errno = e;
        return -1;
      }
      break;
    }
  }
  *out = buf;
  *outlen = len;
  return 0;
}

static void set_body_opt(config *cfg, const char *arg) {
  free(cfg->body);
  cfg->body = NULL;
  cfg->body_len = 0;
  cfg->have_body = 1;
  if (arg[0] == '@') {
    const char *path = arg + 1;
    FILE *f;
    int rc;
    if (strcmp(path, "-") == 0) {
      rc = read_stream(stdin, &cfg->body, &cfg->body_len);
      if (rc != 0)
        die_usage("-d: cannot read standard input: %s", strerror(errno));
      return;
    }
    f = fopen(path, "rb");
    if (f == NULL)
      die_usage("-d: cannot open '%s': %s", path, strerror(errno));
    rc = read_stream(f, &cfg->body, &cfg->body_len);
    if (rc != 0) {
      int e = errno;
      fclose(f);
      die_usage("-d: cannot read '%s': %s", path, strerror(e));
    }
    fclose(f);
  } else {
    cfg->body_len = strlen(arg);
    cfg->body = xrealloc(NULL, cfg->body_len + 1);
    memcpy(cfg->body, arg, cfg->body_len + 1);
  }
}

/* getopt_long returned '?' (an unknown or ambiguous option, or a value
 * given to an option that takes none) or ':' (a missing value). */
static void bad_option(const struct option *longopts, int c, int argc, char **argv)
    __attribute__((noreturn));

static void bad_option(const struct option *longopts, int c, int argc, char **argv) {
  const char *arg = optind >= 1 && optind <= argc ? argv[optind - 1] : "";
  const char *name = NULL;
  int is_long = strncmp(arg, "--", 2) == 0;
  for (const struct option *o = longopts; o->name != NULL && optopt != 0; o++)
    if (o->val == optopt) {
      name = o->name;
      break;
    }
  if (c == ':') {
    if (is_long && name != NULL)
      die_usage("option '--%s' requires a value", name);
    die_usage("option '-%c' requires a value", optopt);
  }
  if (optopt == 0 || (is_long && name == NULL))
    die_usage("unknown or ambiguous option '%s'", arg);
  if (is_long && name != NULL)
    die_usage("option '--%s' takes no value", name);
  die_usage("unknown option '-%c'", optopt);
}

/* The first option given that only means something for a connection (not
 * for --file), or NULL. */
static const char *connection_option(const config *cfg) {
  if (cfg->nheaders > 0)
    return "-H";
  if (cfg->method != NULL)
    return "-X";
  if (cfg->have_body)
    return "-d";
  if (cfg->retry_ms >= 0)
    return "--retry";
  if (cfg->max_retry_ms >= 0)
    return "--max-retry";
  if (cfg->read_timeout_ms >= 0)
    return "--read-timeout";
  if (cfg->no_reconnect_on_end)
    return "--no-reconnect-on-end";
  if (cfg->http_flag != NULL)
    return cfg->http_flag;
  if (cfg->cacert != NULL)
    return "--cacert";
  if (cfg->insecure)
    return "--insecure";
  if (cfg->compressed)
    return "--compressed";
  if (cfg->location_trusted)
    return "--location-trusted";
  if (cfg->allow_http_redirect)
    return "--allow-http-redirect";
  if (cfg->stats)
    return "--stats"; /* the statistics are a source's */
  return NULL;
}

static void parse_args(config *cfg, int argc, char **argv) {
  static const struct option longopts[] = {
      {"header", required_argument, NULL, 'H'},
      {"request", required_argument, NULL, 'X'},
      {"data", required_argument, NULL, 'd'},
      {"verbose", no_argument, NULL, 'v'},
      {"last-event-id", required_argument, NULL, OPT_LAST_EVENT_ID},
      {"retry", required_argument, NULL, OPT_RETRY},
      {"max-retry", required_argument, NULL, OPT_MAX_RETRY},
      {"read-timeout", required_argument, NULL, OPT_READ_TIMEOUT},
      {"no-reconnect-on-end", no_argument, NULL, OPT_NO_RECONNECT_ON_END},
      {"max-events", required_argument, NULL, OPT_MAX_EVENTS},
      {"type", required_argument, NULL, OPT_TYPE},
      {"comments", no_argument, NULL, OPT_COMMENTS},
      {"json", no_argument, NULL, OPT_JSON},
      {"cacert", required_argument, NULL, OPT_CACERT},
      {"http1.1", no_argument, NULL, OPT_HTTP1_1},
      {"http2", no_argument, NULL, OPT_HTTP2},
      {"http2-prior-knowledge", no_argument, NULL, OPT_HTTP2_PK},
      {"insecure", no_argument, NULL, OPT_INSECURE},
      {"compressed", no_argument, NULL, OPT_COMPRESSED},
      {"location-trusted", no_argument, NULL, OPT_LOCATION_TRUSTED},
      {"allow-http-redirect", no_argument, NULL, OPT_ALLOW_HTTP_REDIRECT},
      {"max-last-event-id", required_argument, NULL, OPT_MAX_LAST_EVENT_ID},
      {"file", required_argument, NULL, OPT_FILE},
      {"stats", no_argument, NULL, OPT_STATS},
      {"help", no_argument, NULL, OPT_HELP},
      {"version", no_argument, NULL, OPT_VERSION},
      {NULL, 0, NULL, 0}};
  int c;

  memset(cfg, 0, sizeof *cfg);
  cfg->retry_ms = cfg->max_retry_ms = cfg->read_timeout_ms = cfg->max_last_event_id = -1;

  /* getopt_long's own messages would print the arguments raw: it stays
   * quiet (opterr 0, ':' first) and bad_option() says what went wrong. */
  opterr = 0;
  while ((c = getopt_long(argc, argv, ":H:X:d:v", longopts, NULL)) != -1) {
    switch (c) {
    case 'H':
      add_header_opt(cfg, optarg);
      break;
    case 'X':
      if (*optarg == '\0')
        die_usage("-X: empty method");
      cfg->method = optarg;
      break;
    case 'd':
      set_body_opt(cfg, optarg);
      break;
    case 'v':
      cfg->verbose = 1;
      break;
    case OPT_LAST_EVENT_ID:
      cfg->last_event_id = optarg;
      break;
    case OPT_RETRY:
      cfg->retry_ms = parse_number("--retry", optarg, 0, LONG_MAX);
      break;
    case OPT_MAX_RETRY:
      cfg->max_retry_ms = parse_number("--max-retry", optarg, 0, LONG_MAX);
      break;
    case OPT_READ_TIMEOUT:
      cfg->read_timeout_ms = parse_number("--read-timeout", optarg, 0, LONG_MAX);
      break;
    case OPT_NO_RECONNECT_ON_END:
      cfg->no_reconnect_on_end = 1;
      break;
    case OPT_MAX_EVENTS:
      cfg->max_events = parse_number("--max-events", optarg, 1, LONG_MAX);
      break;
    case OPT_TYPE:
      cfg->types = xrealloc(cfg->types, (cfg->ntypes + 1) * sizeof *cfg->types);
      cfg->types[cfg->ntypes++] = optarg;
      break;
    case OPT_COMMENTS:
      cfg->comments = 1;
      break;
    case OPT_JSON:
      cfg->json = 1;
      break;
    case OPT_CACERT:
      if (*optarg == '\0')
        die_usage("--cacert: empty file name");
      if (access(optarg, R_OK) != 0)
        die_usage("--cacert: cannot read '%s': %s", optarg, strerror(errno));
      cfg->cacert = optarg;
      break;
    case OPT_INSECURE:
      cfg->insecure = 1;
      break;
    case OPT_HTTP1_1:
    case OPT_HTTP2:
    case OPT_HTTP2_PK:
      cfg->http_version = c == OPT_HTTP1_1 ? EVENTSOURCE_HTTP_VERSION_1_1
                          : c == OPT_HTTP2 ? EVENTSOURCE_HTTP_VERSION_2
                                           : EVENTSOURCE_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
      cfg->http_flag = c == OPT_HTTP1_1 ? "--http1.1"
                       : c == OPT_HTTP2 ? "--http2"
                                        : "--http2-prior-knowledge";
      break;
    case OPT_COMPRESSED:
      cfg->compressed = 1;
      break;
    case OPT_LOCATION_TRUSTED:
      cfg->location_trusted = 1;
      break;
    case OPT_ALLOW_HTTP_REDIRECT:
      cfg->allow_http_redirect = 1;
      break;
    case OPT_MAX_LAST_EVENT_ID:
      cfg->max_last_event_id = parse_number("--max-last-event-id", optarg, 0, LONG_MAX);
      break;
    case OPT_FILE:
      if (*optarg == '\0')
        die_usage("--file: empty file name");
      cfg->file = optarg;
      break;
    case OPT_STATS:
      cfg->stats = 1;
      break;
    case OPT_HELP:
      usage(stdout);
      exit(fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
    case OPT_VERSION:
      printf(PROG " (libeventsource) %s\n", eventsource_version());
      exit(fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
    default: /* '?' or ':' */
      bad_option(longopts, c, argc, argv);
    }
  }
  if (cfg->file != NULL) {
    const char *conn = connection_option(cfg);
    if (optind < argc)
      die_usage("--file: no URL with a recorded stream ('%s' is extra)", argv[optind]);
    if (conn != NULL)
      die_usage("--file: %s applies to a connection only", conn);
    return;
  }
  if (optind >= argc)
    die_usage("no URL given");
  if (optind + 1 < argc)
    die_usage("one URL only ('%s' is extra)", argv[optind + 1]);
  cfg->url = argv[optind];
}

static void free_config(config *cfg) {
  for (size_t i = 0; i < cfg->nheaders; i++)
    free(cfg->headers[i].name);
  free(cfg->headers);
  free(cfg->types);
  free(cfg->body);
}

/* ------------------------------------------------------------------------ */
/* Output                                                                   */
/* ------------------------------------------------------------------------ */

/* A JSON string literal. Control characters are escaped (\n, \r, \t short,
 * the others as \u00XX, U+0000 included); valid UTF-8 is copied as is. The
 * library promises valid UTF-8; should a byte not be, it becomes \ufffd so
 * the output stays valid JSON. */
static void json_string(FILE *f, const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;
  putc('"', f);
  while (i < len) {
    unsigned char c = s[i];
    if (c == '"' || c == '\\') {
      putc('\\', f);
      putc(c, f);
      i++;
    } else if (c == '\n') {
      fputs("\\n", f);
      i++;
    } else if (c == '\r') {
      fputs("\\r", f);
      i++;
    } else if (c == '\t') {
      fputs("\\t", f);
      i++;
    } else if (c < 0x20) {
      fprintf(f, "\\u%04x", (unsigned)c);
      i++;
    } else if (c < 0x80) {
      putc(c, f);
      i++;
    } else {
      size_t n = utf8_seq_len(s + i, len - i);
      if (n == 0) {
        fputs("\\ufffd", f);
        i++;
      } else {
        fwrite(s + i, 1, n, f);
        i += n;
      }
    }
  }
  putc('"', f);
}

/* Ends an output record: flushes stdout. 1 when that failed (the errno is
 * kept in a->write_error): sse-cat must stop and exit with 1. */
static int flush_record(app *a) {
  if (fflush(stdout) != 0 || ferror(stdout)) {
    if (a->write_error < 0)
      a->write_error = errno ? errno : EIO;
    return 1;
  }
  return 0;
}

/* flush_record(), closing the source (from its own listener: allowed) when
 * stdout failed. */
static void end_record(eventsource_t *es, app *a) {
  if (flush_record(a))
    eventsource_close(es);
}

static int type_selected(const config *cfg, const char *type, size_t len) {
  if (cfg->ntypes == 0)
    return 1;
  for (size_t i = 0; i < cfg->ntypes; i++)
    if (strlen(cfg->types[i]) == len && memcmp(cfg->types[i], type, len) == 0)
      return 1;
  return 0;
}

/* data as "data: LINE" lines, one per LF, each line escaped. */
static void print_data_lines(const char *data, size_t len) {
  size_t start = 0;
  for (;;) {
    const char *nl = memchr(data + start, '\n', len - start);
    size_t end = nl ? (size_t)(nl - data) : len;
    if (end > start) {
      fputs("data: ", stdout);
      write_escaped(stdout, data + start, end - start);
      putc('\n', stdout);
    } else {
      fputs("data:\n", stdout);
    }
    if (nl == NULL)
      break;
    start = end + 1;
  }
}

/* Prints one server event (after --type), for a live stream and --file
 * alike. 1 when sse-cat must stop: --max-events reached, or stdout failed. */
static int print_event(app *a, const char *type, size_t tlen, const char *data, size_t dlen,
                       const char *id, size_t ilen) {
  const config *cfg = a->cfg;
  int stop;

  if (cfg->max_events > 0 && a->events >= cfg->max_events)
    return 1; /* closing already; never print more than N */
  if (!type_selected(cfg, type, tlen))
    return 0;

  if (cfg->json) {
    fputs("{\"kind\":\"event\",\"type\":", stdout);
    json_string(stdout, type, tlen);
    fputs(",\"data\":", stdout);
    json_string(stdout, data, dlen);
    fputs(",\"id\":", stdout);
    json_string(stdout, id, ilen);
    fputs("}\n", stdout);
  } else {
    fputs("event: ", stdout);
    write_escaped(stdout, type, tlen);
    putc('\n', stdout);
    if (ilen > 0) {
      fputs("id: ", stdout);
      write_escaped(stdout, id, ilen);
      putc('\n', stdout);
    }
    print_data_lines(data, dlen);
    putc('\n', stdout);
  }
  stop = flush_record(a);

  a->events++;
  if (cfg->max_events > 0 && a->events >= cfg->max_events) {
    a->max_reached = 1;
    if (cfg->verbose)
      note("closing after %ld event%s", a->events, a->events == 1 ? "" : "s");
    stop = 1;
  }
  return stop;
}

static void on_message(eventsource_t *es, const eventsource_event_t *ev, app *a) {
  size_t tlen, dlen, ilen;
  const char *type = eventsource_event_type(ev, &tlen);
  const char *data = eventsource_event_data(ev, &dlen);
  const char *id = eventsource_event_last_event_id(ev, &ilen);
  if (print_event(a, type, tlen, data, dlen, id, ilen))
    eventsource_close(es);
}

/* "HTTP/1.1", "HTTP/2" for eventsource_event_http_version()'s numbers. */
static const char *http_name(long v) {
  switch (v) {
  case 10:
    return "HTTP/1.0";
  case 11:
    return "HTTP/1.1";
  case 20:
    return "HTTP/2";
  case 30:
    return "HTTP/3";
  default:
    return "HTTP";
  }
}

static void on_open(eventsource_t *es, const eventsource_event_t *ev, app *a) {
  long v = eventsource_event_http_version(ev);
  int reused = eventsource_event_connection_reused(ev);
  if (a->cfg->json) {
    printf("{\"kind\":\"open\",\"http_version\":%ld,\"reused\":%s}\n", v,
           reused ? "true" : "false");
    end_record(es, a);
  } else {
    note("connected to %s (%s%s)", eventsource_url(es), http_name(v),
         reused ? ", connection reused" : "");
  }
}

/* The reason for a failure on stderr: "error NAME (HTTP n): DESCRIPTION:
 * MESSAGE" and suffix, with eventsource_strerror()'s description; the
 * status when there is one, the message when it says more. */
static void report_failure(eventsource_error_t code, long status, const char *msg,
                           const char *suffix) {
  char http[32] = "";
  const char *desc = eventsource_strerror(code);
  if (status != 0)
    snprintf(http, sizeof http, " (HTTP %ld)", status);
  if (msg == NULL || msg[0] == '\0' || strcmp(msg, desc) == 0)
    note("error %s%s: %s%s", eventsource_error_name(code), http, desc, suffix);
  else
    note("error %s%s: %s: %s%s", eventsource_error_name(code), http, desc, msg, suffix);
}

/* The body of a refused response (eventsource_event_body(): an explanation,
 * often JSON) on stderr, one "HTTP n body: " line per line of it, escaped
 * like every stderr line (U+0000 too); a CR before the LF and the last LF
 * are dropped. */
static void report_body(const eventsource_event_t *ev, long status) {
  size_t len;
  const char *body = eventsource_event_body(ev, &len);
  char *line = len ? malloc(4 * len + 1) : NULL;
  if (len && !line) {
    note("HTTP %ld body: (%zu bytes, out of memory to show them)", status, len);
    return;
  }
  while (len > 0) {
    const char *lf = memchr(body, '\n', len);
    size_t n = lf ? (size_t)(lf - body) : len, k = 0;
    size_t shown = n > 0 && body[n - 1] == '\r' ? n - 1 : n;
    for (size_t i = 0; i < shown; i++) {
      if (body[i] == '\0') { /* as write_escaped() shows it */
        memcpy(line + k, "\\x00", 4);
        k += 4;
      } else {
        line[k++] = body[i];
      }
    }
    line[k] = '\0';
    note("HTTP %ld body: %s", status, line);
    body += lf ? n + 1 : n;
    len -= lf ? n + 1 : n;
  }
  free(line);
}

static void on_error(eventsource_t *es, const eventsource_event_t *ev, app *a) {
  eventsource_error_t code = eventsource_event_error(ev);
  long status = eventsource_event_http_status(ev);
  const char *msg = eventsource_event_message(ev);
  int reconnect = eventsource_event_will_reconnect(ev);
  long delay = eventsource_event_reconnect_ms(ev);
  /* Not retried: the source is CLOSED and eventsource_run() returns. */
  int fatal = !reconnect && eventsource_ready_state(es) == EVENTSOURCE_CLOSED;
  char http[32] = "";

  if (code == EVENTSOURCE_ERR_HTTP_STATUS && status == 204 && fatal)
    a->end_204 = 1;
  if (code == EVENTSOURCE_ERR_EOF && fatal && a->cfg->no_reconnect_on_end)
    a->end_eof = 1;

  if (a->cfg->json) {
    printf("{\"kind\":\"error\",\"code\":");
    json_string(stdout, eventsource_error_name(code), strlen(eventsource_error_name(code)));
    printf(",\"status\":%ld,\"message\":", status);
    json_string(stdout, msg, strlen(msg));
    printf(",\"reconnect\":%s,\"delay_ms\":%ld}\n", reconnect ? "true" : "false", delay);
    end_record(es, a);
    if (!fatal || a->end_204 || a->end_eof)
      return; /* the stderr line of a fatal error follows, as in the readable mode */
  }
  if (a->end_eof) {
    if (a->cfg->verbose)
      note("the server ended the stream (--no-reconnect-on-end)");
    return;
  }
  if (a->end_204) {
    if (a->cfg->verbose)
      note("the server ended the stream (204 No Content)");
    return;
  }
  if (fatal) {
    report_failure(code, status, msg, "; giving up");
    report_body(ev, status);
    a->final_reported = 1;
    return;
  }
  if (status != 0)
    snprintf(http, sizeof http, " (HTTP %ld)", status);
  if (reconnect) {
    note("error %s%s: %s; reconnecting in %ld ms", eventsource_error_name(code), http, msg,
         delay);
    report_body(ev, status);
  } else /* TOO_LARGE: an event or an id was dropped, the connection stays open */
    note("error %s%s: %s; the stream goes on", eventsource_error_name(code), http, msg);
}

/* Prints a comment (--comments), live and --file alike. 1 when stdout
 * failed. */
static int print_comment(app *a, const char *text, size_t len) {
  if (a->cfg->max_events > 0 && a->events >= a->cfg->max_events)
    return 0;
  if (a->cfg->json) {
    fputs("{\"kind\":\"comment\",\"comment\":", stdout);
    json_string(stdout, text, len);
    fputs("}\n", stdout);
  } else {
    putc(':', stdout);
    write_escaped(stdout, text, len);
    putc('\n', stdout);
  }
  return flush_record(a);
}

static void on_comment(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  app *a = ud;
  size_t len;
  const char *text = eventsource_event_data(ev, &len);
  if (print_comment(a, text, len))
    eventsource_close(es);
}

static void on_any(eventsource_t *es, const eventsource_event_t *ev, void *ud) {
  app *a = ud;
  switch (eventsource_event_kind(ev)) {
  case EVENTSOURCE_KIND_MESSAGE:
    on_message(es, ev, a);
    break;
  case EVENTSOURCE_KIND_OPEN:
    on_open(es, ev, a);
    break;
  case EVENTSOURCE_KIND_ERROR:
    on_error(es, ev, a);
    break;
  case EVENTSOURCE_KIND_COMMENT:
    break;
  }
}

static int on_prepare(eventsource_t *es, unsigned attempt, void *ud) {
  size_t len;
  const char *id = eventsource_last_event_id(es, &len);
  (void)ud;
  note("connecting to %s (attempt %u%s%s)", eventsource_url(es), attempt,
       len > 0 ? ", Last-Event-ID " : "", len > 0 ? id : "");
  return 0;
}

static CURLcode on_curl(eventsource_t *es, CURL *easy, void *ud) {
  const config *cfg = ud;
  CURLcode rc = CURLE_OK;
  (void)es;
  if (cfg->cacert != NULL)
    rc = curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->cacert);
  if (rc == CURLE_OK && cfg->insecure) {
    rc = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    if (rc == CURLE_OK)
      rc = curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  return rc;
}

/* ------------------------------------------------------------------------ */
/* Setting up the source                                                    */
/* ------------------------------------------------------------------------ */

/* A setter failed: INVALID_ARGUMENT and HEADER mean a bad command line. */
static void check_setter(eventsource_error_t rc, const char *what, const char *arg,
                         int *status) {
  if (rc == EVENTSOURCE_OK || *status != 0)
    return;
  if (rc == EVENTSOURCE_ERR_INVALID_ARGUMENT || rc == EVENTSOURCE_ERR_HEADER) {
    note("%s%s%s: %s", what, arg ? " " : "", arg ? arg : "", eventsource_strerror(rc));
    fputs("Try '" PROG " --help' for more information.\n", stderr);
    *status = EXIT_USAGE;
  } else {
    note("%s: %s", what, eventsource_strerror(rc));
    *status = EXIT_FAILURE;
  }
}

/* 0, or the exit status. */
static int configure(eventsource_t *es, const config *cfg, app *a) {
  int st = 0;
  const char *method = cfg->method;

  for (size_t i = 0; i < cfg->nheaders && st == 0; i++) {
    const header_opt *h = &cfg->headers[i];
    int seen = 0;
    eventsource_error_t rc;
    if (strcasecmp(h->name, "Last-Event-ID") == 0) {
      note("-H: use --last-event-id to set Last-Event-ID");
      return EXIT_USAGE;
    }
    for (size_t j = 0; j < i && !seen; j++)
      seen = strcasecmp(cfg->headers[j].name, h->name) == 0;
    /* The first -H of a name replaces the library's default (Accept,
     * Cache-Control); further ones of the same name are added. */
    if (seen)
      rc = eventsource_add_header(es, h->name, h->value);
    else
      rc = eventsource_set_header(es, h->name, h->value);
    check_setter(rc, "-H", h->name, &st);
  }
  if (method == NULL && cfg->have_body)
    method = "POST";
  if (method != NULL && st == 0)
    check_setter(eventsource_set_method(es, method), "-X", method, &st);
  if (cfg->have_body && st == 0)
    check_setter(eventsource_set_body(es, cfg->body, cfg->body_len), "-d", NULL, &st);
  /* The limit first: it applies to --last-event-id. */
  if (cfg->max_last_event_id >= 0 && st == 0)
    check_setter(eventsource_set_max_last_event_id(es, (size_t)cfg->max_last_event_id),
                 "--max-last-event-id", NULL, &st);
  if (cfg->last_event_id != NULL && st == 0) {
    eventsource_error_t rc = eventsource_set_last_event_id(es, cfg->last_event_id);
    if (rc == EVENTSOURCE_ERR_REQUEST_TOO_LARGE) {
      note("--last-event-id: %zu bytes, longer than the limit (--max-last-event-id %lu)",
           strlen(cfg->last_event_id),
           cfg->max_last_event_id >= 0 ? (unsigned long)cfg->max_last_event_id
                                       : (unsigned long)EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID);
      fputs("Try '" PROG " --help' for more information.\n", stderr);
      return EXIT_USAGE;
    }
    check_setter(rc, "--last-event-id", NULL, &st);
  }
  if (cfg->compressed && st == 0)
    check_setter(eventsource_set_compression(es, 1), "--compressed", NULL, &st);
  if (cfg->http_flag != NULL && st == 0)
    check_setter(eventsource_set_http_version(es, cfg->http_version), cfg->http_flag, NULL,
                 &st);
  if (cfg->location_trusted && st == 0)
    check_setter(eventsource_set_redirect_headers(es, 1), "--location-trusted", NULL, &st);
  if (cfg->allow_http_redirect && st == 0)
    check_setter(eventsource_set_redirect_downgrade(es, 1), "--allow-http-redirect", NULL,
                 &st);
  if (cfg->retry_ms >= 0 && st == 0)
    check_setter(eventsource_set_retry(es, cfg->retry_ms), "--retry", NULL, &st);
  if (cfg->max_retry_ms >= 0 && st == 0)
    check_setter(eventsource_set_max_retry(es, cfg->max_retry_ms), "--max-retry", NULL, &st);
  if (cfg->read_timeout_ms >= 0 && st == 0)
    check_setter(eventsource_set_read_timeout(es, cfg->read_timeout_ms), "--read-timeout",
                 NULL, &st);
  if (cfg->no_reconnect_on_end && st == 0)
    check_setter(eventsource_set_reconnect_on_end(es, 0), "--no-reconnect-on-end", NULL, &st);
  if ((cfg->cacert != NULL || cfg->insecure) && st == 0)
    check_setter(eventsource_set_curl_callback(es, on_curl, (void *)cfg), "--cacert/--insecure",
                 NULL, &st);
  if (cfg->verbose && st == 0)
    check_setter(eventsource_set_prepare_callback(es, on_prepare, NULL), "-v", NULL, &st);
  if (st == 0)
    check_setter(eventsource_add_any_listener(es, on_any, a, NULL), "listener", NULL, &st);
  if (cfg->comments && st == 0)
    check_setter(eventsource_add_comment_listener(es, on_comment, a, NULL), "listener", NULL,
                 &st);
  return st;
}

/* ------------------------------------------------------------------------ */
/* --file: a recorded stream, through the library's public parser           */
/* ------------------------------------------------------------------------ */

/* The parser's callbacks print with the same functions as the listeners,
 * so a replay looks like the live stream (without the open notification:
 * there is no connection). Returning 1 stops the parser. */
static int file_event(eventsource_parser_t *p, const char *type, size_t tlen, const char *data,
                      size_t dlen, const char *id, size_t ilen, void *ud) {
  (void)p;
  return print_event(ud, type, tlen, data, dlen, id, ilen);
}

static int file_comment(eventsource_parser_t *p, const char *text, size_t len, void *ud) {
  (void)p;
  return print_comment(ud, text, len);
}

/* TOO_LARGE (an event or an id: over a limit): as on_error shows it for a
 * live stream, where it also leaves the connection open. */
static int file_error(eventsource_parser_t *p, eventsource_error_t code, const char *msg,
                      void *ud) {
  app *a = ud;
  const char *name = eventsource_error_name(code);
  (void)p;
  if (a->cfg->json) {
    fputs("{\"kind\":\"error\",\"code\":", stdout);
    json_string(stdout, name, strlen(name));
    fputs(",\"status\":0,\"message\":", stdout);
    json_string(stdout, msg, strlen(msg));
    fputs(",\"reconnect\":false,\"delay_ms\":-1}\n", stdout);
    return flush_record(a);
  }
  note("error %s: %s; the stream goes on", name, msg);
  return 0;
}

/* The parser with cfg's limits, initial ID and callbacks. 0, or the exit
 * status. */
static int file_parser(const config *cfg, app *a, eventsource_parser_t **out) {
  eventsource_parser_t *p = NULL;
  eventsource_error_t rc = eventsource_parser_new(&p);
  if (rc != EVENTSOURCE_OK) {
    note("%s", eventsource_strerror(rc));
    return EXIT_FAILURE;
  }
  eventsource_parser_set_event_callback(p, file_event, a);
  eventsource_parser_set_error_callback(p, file_error, a);
  if (cfg->comments)
    eventsource_parser_set_comment_callback(p, file_comment, a);
  if (cfg->max_last_event_id >= 0)
    eventsource_parser_set_max_last_event_id(p, (size_t)cfg->max_last_event_id);
  if (cfg->last_event_id != NULL) {
    rc = eventsource_parser_set_last_event_id(p, cfg->last_event_id);
    if (rc != EVENTSOURCE_OK) {
      eventsource_parser_free(p);
      if (rc == EVENTSOURCE_ERR_NOMEM) {
        note("--last-event-id: %s", eventsource_strerror(rc));
        return EXIT_FAILURE;
      }
      if (rc == EVENTSOURCE_ERR_TOO_LARGE)
        note("--last-event-id: %zu bytes, longer than the limit (--max-last-event-id %lu)",
             strlen(cfg->last_event_id),
             cfg->max_last_event_id >= 0 ? (unsigned long)cfg->max_last_event_id
                                         : (unsigned long)EVENTSOURCE_DEFAULT_MAX_LAST_EVENT_ID);
      else
        note("--last-event-id: %s", eventsource_strerror(rc));
      fputs("Try '" PROG " --help' for more information.\n", stderr);
      return EXIT_USAGE;
    }
  }
  *out = p;
  return 0;
}

/* Reads the file (or stdin) in chunks as they come, so that a pipe is
 * printed as it is written, and feeds the parser; at the end of the file
 * an incomplete last event is discarded, as the spec says. The exit status:
 * 0 at the end of the file or after --max-events, 1 when reading, writing
 * or an allocation failed, 2 when the file cannot be opened. */
static int replay_file(const config *cfg) {
  static char chunk[65536];
  eventsource_parser_t *p = NULL;
  app a;
  int fd = 0, status;
  int from_stdin = strcmp(cfg->file, "-") == 0;
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN; /* a closed stdout is a write error, as when live */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);

  memset(&a, 0, sizeof a);
  a.cfg = cfg;
  a.write_error = -1;
  status = file_parser(cfg, &a, &p);
  if (status != 0)
    return status;
  if (!from_stdin) {
    fd = open(cfg->file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      int e = errno;
      eventsource_parser_free(p);
      die_usage("--file: cannot open '%s': %s", cfg->file, strerror(e));
    }
  }
  if (cfg->verbose)
    note("reading %s", from_stdin ? "standard input" : cfg->file);
  for (;;) {
    ssize_t n = read(fd, chunk, sizeof chunk);
    eventsource_error_t rc;
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      note("--file: cannot read '%s': %s", cfg->file, strerror(errno));
      status = EXIT_FAILURE;
      break;
    }
    if (n == 0) {
      eventsource_parser_finish(p);
      if (cfg->verbose)
        note("end of %s", from_stdin ? "standard input" : cfg->file);
      break;
    }
    rc = eventsource_parser_feed(p, chunk, (size_t)n);
    if (rc == EVENTSOURCE_ERR_CALLBACK)
      break; /* --max-events, or a write error (below) */
    if (rc != EVENTSOURCE_OK) {
      note("error %s: %s", eventsource_error_name(rc), eventsource_strerror(rc));
      status = EXIT_FAILURE;
      break;
    }
  }
  if (!from_stdin)
    close(fd);
  eventsource_parser_free(p);
  if (a.write_error >= 0) {
    if (a.write_error != EPIPE)
      note("write error: %s", strerror(a.write_error));
    status = EXIT_FAILURE;
  }
  return status;
}

/* ------------------------------------------------------------------------ */
/* --stats                                                                  */
/* ------------------------------------------------------------------------ */

/* The statistics --stats prints, in this order, named as in the header
 * without EVENTSOURCE_STAT_ and in lower case (docs/sse-cat.md). */
static const struct {
  eventsource_stat_t which;
  const char *name;
} STATS[] = {
    {EVENTSOURCE_STAT_ATTEMPTS, "attempts"},
    {EVENTSOURCE_STAT_REQUESTS, "requests"},
    {EVENTSOURCE_STAT_OPENS, "opens"},
    {EVENTSOURCE_STAT_RECONNECTS, "reconnects"},
    {EVENTSOURCE_STAT_EVENTS, "events"},
    {EVENTSOURCE_STAT_BYTES, "bytes"},
    {EVENTSOURCE_STAT_COMMENTS, "comments"},
    {EVENTSOURCE_STAT_DROPPED, "dropped"},
    {EVENTSOURCE_STAT_TTFB_MS, "ttfb_ms"},
    {EVENTSOURCE_STAT_FIRST_EVENT_MS, "first_event_ms"},
    {EVENTSOURCE_STAT_HTTP_VERSION, "http_version"},
    {EVENTSOURCE_STAT_CONNECTION_REUSED, "connection_reused"},
};

/* One "name=value" line each, on stderr, built first and written at once. */
static void print_stats(const eventsource_t *es) {
  char text[1024];
  size_t len = 0;
  for (size_t i = 0; i < sizeof STATS / sizeof STATS[0]; i++) {
    int n = snprintf(text + len, sizeof text - len, "%s=%llu\n", STATS[i].name,
                     (unsigned long long)eventsource_stat(es, STATS[i].which));
    if (n < 0 || (size_t)n >= sizeof text - len)
      break;
    len += (size_t)n;
  }
  fwrite(text, 1, len, stderr);
}

/* ------------------------------------------------------------------------ */
/* The signal thread                                                        */
/* ------------------------------------------------------------------------ */

typedef struct sigthread_arg {
  eventsource_t *es;
  sigset_t set;
} sigthread_arg;

static void *signal_thread(void *p) {
  sigthread_arg *arg = p;
  for (;;) {
    int sig = 0;
    if (sigwait(&arg->set, &sig) != 0)
      continue;
    if (sig == SIGUSR1) {
      if (atomic_load(&g_sigthread_quit))
        return NULL;
      continue; /* not from main: ignore */
    }
    if (atomic_load(&g_signal_received) != 0)
      _exit(128 + sig); /* second signal: give up on a clean close */
    atomic_store(&g_signal_received, sig);
    eventsource_close(arg->es);
  }
}

/* ------------------------------------------------------------------------ */

int main(int argc, char **argv) {
  config cfg;
  app a;
  sigthread_arg sarg;
  pthread_t sigthr;
  struct sigaction sa;
  eventsource_t *es = NULL;
  eventsource_error_t rc;
  int status, err;

  /* No thread exists yet, and the defaults for SIGINT and SIGTERM are right
   * while the command line is read (-d @- may wait on stdin). */
  parse_args(&cfg, argc, argv);
  if (cfg.file != NULL) {
    /* No connection, no threads: the default signal actions are right. */
    status = replay_file(&cfg);
    free_config(&cfg);
    if (fclose(stdout) != 0 && status == EXIT_SUCCESS) {
      if (errno != EPIPE)
        note("write error: %s", strerror(errno));
      status = EXIT_FAILURE;
    }
    return status;
  }

  /* Before any thread exists: see the comment at the top. */
  sigemptyset(&sarg.set);
  sigaddset(&sarg.set, SIGINT);
  sigaddset(&sarg.set, SIGTERM);
  sigaddset(&sarg.set, SIGUSR1);
  err = pthread_sigmask(SIG_BLOCK, &sarg.set, NULL);
  if (err != 0) {
    note("pthread_sigmask: %s", strerror(err));
    free_config(&cfg);
    return EXIT_FAILURE;
  }
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, NULL);

  rc = eventsource_new(&es, cfg.url);
  if (rc != EVENTSOURCE_OK) {
    note("%s: %s", cfg.url, eventsource_strerror(rc));
    free_config(&cfg);
    return rc == EVENTSOURCE_ERR_URL || rc == EVENTSOURCE_ERR_INVALID_ARGUMENT ? EXIT_USAGE
                                                                                 : EXIT_FAILURE;
  }

  memset(&a, 0, sizeof a);
  a.cfg = &cfg;
  a.write_error = -1;
  status = configure(es, &cfg, &a);
  if (status != 0) {
    eventsource_free(es);
    free_config(&cfg);
    return status;
  }

  sarg.es = es;
  err = pthread_create(&sigthr, NULL, signal_thread, &sarg);
  if (err != 0) {
    note("pthread_create: %s", strerror(err));
    eventsource_free(es);
    free_config(&cfg);
    return EXIT_FAILURE;
  }

  rc = eventsource_run(es);

  atomic_store(&g_sigthread_quit, 1);
  pthread_kill(sigthr, SIGUSR1);
  pthread_join(sigthr, NULL);

  if (a.write_error >= 0) {
    if (a.write_error != EPIPE)
      note("write error: %s", strerror(a.write_error));
    status = EXIT_FAILURE;
  } else if (a.max_reached) {
    status = EXIT_SUCCESS;
  } else if (atomic_load(&g_signal_received) != 0) {
    if (cfg.verbose)
      note("%s, closed", strsignal(atomic_load(&g_signal_received)));
    status = EXIT_SUCCESS;
  } else if (rc == EVENTSOURCE_OK) {
    status = EXIT_SUCCESS;
  } else if (rc == EVENTSOURCE_ERR_HTTP_STATUS &&
             (a.end_204 || eventsource_last_http_status(es) == 204)) {
    status = EXIT_SUCCESS;
  } else if (rc == EVENTSOURCE_ERR_EOF && a.end_eof) {
    status = EXIT_SUCCESS; /* --no-reconnect-on-end: the stream is complete */
  } else if (a.final_reported && rc == eventsource_last_error(es)) {
    status = EXIT_FAILURE; /* the error notice said it all */
  } else {
    /* No error notification said it (the run itself failed: CURL, NOMEM,
     * SYSTEM, ...), or it named another code. */
    int same = eventsource_last_error(es) == rc;
    report_failure(rc, same ? eventsource_last_http_status(es) : 0,
                   same ? eventsource_last_error_message(es) : NULL, "");
    status = EXIT_FAILURE;
  }

  if (cfg.stats)
    print_stats(es);
  eventsource_free(es);
  free_config(&cfg);
  if (fclose(stdout) != 0 && status == EXIT_SUCCESS) {
    if (errno != EPIPE)
      note("write error: %s", strerror(errno));
    status = EXIT_FAILURE;
  }
  return status;
}
