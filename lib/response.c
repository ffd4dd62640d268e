/*
 * response.c - the final response's header fields, a refused response's
 * body and Retry-After (response.h), and the notification accessors that
 * read them (eventsource_event_header(), eventsource_event_body()).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <curl/curl.h>

#include "alloc.h"
#include "event.h"
#include "response.h"

/* Header storage up to this size is kept for the next response; a larger
 * one (a response with unusually many headers) is given back. */
#define KEEP_HDR_CAP 4096u

void es_response_free(es_response *r) {
  es_free(r->hdr);
  es_free(r->body);
  memset(r, 0, sizeof *r);
}

void es_response_reset(es_response *r) {
  if (r->hdr_cap > KEEP_HDR_CAP) {
    es_free(r->hdr);
    r->hdr = NULL;
    r->hdr_cap = 0;
  }
  r->hdr_len = 0;
  r->complete = 0;
  r->dropped = 0;
  /* A body is kept only after a refusal: give it back. */
  es_free(r->body);
  r->body = NULL;
  r->body_len = r->body_cap = 0;
  r->body_truncated = 0;
}

void es_response_begin(es_response *r) {
  r->hdr_len = 0;
  r->complete = 0;
  r->dropped = 0;
}

void es_response_complete(es_response *r) { r->complete = 1; }

/* Room for n bytes of fields (n <= ES_RESPONSE_MAX_HEADERS). */
static int hdr_reserve(es_response *r, size_t n) {
  if (n <= r->hdr_cap)
    return 0;
  size_t cap = r->hdr_cap ? r->hdr_cap : 512;
  while (cap < n)
    cap *= 2;
  if (cap > ES_RESPONSE_MAX_HEADERS)
    cap = ES_RESPONSE_MAX_HEADERS;
  char *p = es_realloc(r->hdr, cap);
  if (!p)
    return -1;
  r->hdr = p;
  r->hdr_cap = cap;
  return 0;
}

/* The entry named name (nl bytes, any case): its offset, or -1. *val_end
 * gets the offset of the NUL that ends its value. */
static long find_entry(const es_response *r, const char *name, size_t nl,
                       size_t *val_end) {
  size_t off = 0;
  while (off < r->hdr_len) {
    const char *n = r->hdr + off;
    size_t len = strlen(n);
    size_t vend = off + len + 1 + strlen(n + len + 1);
    if (len == nl && strncasecmp(n, name, nl) == 0) {
      *val_end = vend;
      return (long)off;
    }
    off = vend + 1;
  }
  return -1;
}

int es_response_field(es_response *r, const char *line, size_t len) {
  if (r->complete || !len || line[0] == ' ' || line[0] == '\t')
    return 0;
  const char *colon = memchr(line, ':', len);
  /* A value holding U+0000 could not be handed out as a C string. */
  if (!colon || colon == line || memchr(line, '\0', len))
    return 0;
  size_t nl = (size_t)(colon - line);
  const char *v = colon + 1, *end = line + len;
  while (v < end && (*v == ' ' || *v == '\t'))
    v++;
  while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                     end[-1] == '\n'))
    end--;
  size_t vl = (size_t)(end - v);
  size_t vend;
  long at = find_entry(r, line, nl, &vend);
  if (at < 0) {
    size_t need = nl + vl + 2;
    if (need > ES_RESPONSE_MAX_HEADERS - r->hdr_len) {
      r->dropped = 1;
      return 0;
    }
    if (hdr_reserve(r, r->hdr_len + need) != 0)
      return -1;
    char *p = r->hdr + r->hdr_len;
    memcpy(p, line, nl);
    p[nl] = '\0';
    memcpy(p + nl + 1, v, vl);
    p[nl + 1 + vl] = '\0';
    r->hdr_len += need;
    return 0;
  }
  if (!vl)
    return 0; /* an empty list element adds nothing */
  /* Joined as HTTP does (RFC 9110 5.3), but Set-Cookie values may hold
   * commas themselves: they are joined with LF, which no value holds. */
  const char *sep = nl == 10 && strncasecmp(line, "set-cookie", 10) == 0 ? "\n" : ", ";
  size_t sl = vend == (size_t)at + nl + 1 ? 0 : strlen(sep); /* first value empty */
  size_t need = sl + vl;
  if (need > ES_RESPONSE_MAX_HEADERS - r->hdr_len) {
    r->dropped = 1;
    return 0;
  }
  if (hdr_reserve(r, r->hdr_len + need) != 0)
    return -1;
  memmove(r->hdr + vend + need, r->hdr + vend, r->hdr_len - vend);
  memcpy(r->hdr + vend, sep, sl);
  memcpy(r->hdr + vend + sl, v, vl);
  r->hdr_len += need;
  return 0;
}

int es_response_body(es_response *r, const char *buf, size_t len, size_t max) {
  size_t room = max > r->body_len ? max - r->body_len : 0;
  size_t take = len < room ? len : room;
  if (take) {
    size_t n = r->body_len + take + 1;
    if (n > r->body_cap) {
      size_t cap = r->body_cap ? r->body_cap : 1024;
      while (cap < n)
        cap *= 2;
      if (cap > max + 1)
        cap = max + 1;
      char *p = es_realloc(r->body, cap);
      if (!p)
        return -1;
      r->body = p;
      r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, buf, take);
    r->body_len += take;
    r->body[r->body_len] = '\0';
  }
  if (take < len) {
    r->body_truncated = 1;
    return 1;
  }
  return 0;
}

void es_response_note_cut(es_error *err, size_t max) {
  size_t n = strlen(err->msg);
  snprintf(err->msg + n, sizeof err->msg - n, "; its body was cut at %zu bytes", max);
}

int es_response_note_late(es_error *err) {
  size_t n = strlen(err->msg);
  snprintf(err->msg + n, sizeof err->msg - n, "; its body was cut: it took too long");
  return 1;
}

const char *es_response_header(const es_response *r, const char *name) {
  size_t vend;
  if (!r || !r->complete || !name)
    return NULL;
  long at = find_entry(r, name, strlen(name), &vend);
  return at < 0 ? NULL : r->hdr + at + strlen(name) + 1;
}

long es_retry_after_ms(const char *v, int64_t wall_ms, long ceiling) {
  if (!v || !*v || ceiling < 0)
    return -1;
  if (isdigit((unsigned char)*v)) {
    /* delta-seconds; saturates well past any ceiling (at most 24 h) */
    uint64_t s = 0;
    const char *p = v;
    for (; isdigit((unsigned char)*p); p++)
      if (s < 1000000000000ull)
        s = s * 10 + (uint64_t)(*p - '0');
    if (*p)
      return -1; /* "1.5", "10s", "12 13" */
    uint64_t ms = s * 1000;
    return ms > (uint64_t)ceiling ? ceiling : (long)ms;
  }
  /* An HTTP-date names its day and month: anything without a letter, a
   * sign first ("-5") included, is garbage, whatever curl_getdate() would
   * make of it. */
  int alpha = 0;
  for (const char *p = v; *p; p++)
    alpha |= isalpha((unsigned char)*p) != 0;
  if (!alpha || *v == '-' || *v == '+')
    return -1;
  time_t t = curl_getdate(v, NULL);
  if (t == (time_t)-1)
    return -1;
  int64_t ms = (int64_t)t * 1000 - wall_ms;
  if (ms <= 0)
    return -1; /* not in the future */
  return ms > ceiling ? ceiling : (long)ms;
}

/* ------------------------------------------------------------------------ */
/* The accessors                                                            */
/* ------------------------------------------------------------------------ */

const char *eventsource_event_header(const eventsource_event_t *ev, const char *name) {
  if (!ev || (ev->kind != EVENTSOURCE_KIND_OPEN && ev->kind != EVENTSOURCE_KIND_ERROR))
    return NULL;
  return es_response_header(ev->resp, name);
}

const char *eventsource_event_body(const eventsource_event_t *ev, size_t *len) {
  const es_response *r = ev && ev->kind == EVENTSOURCE_KIND_ERROR ? ev->resp : NULL;
  int has = r && r->body_len;
  if (len)
    *len = has ? r->body_len : 0;
  return has ? r->body : "";
}

_Static_assert(EVENTSOURCE_MAX_RESPONSE_HEADERS == ES_RESPONSE_MAX_HEADERS,
               "the header documents the bound");
