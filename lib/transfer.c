/*
 * transfer.c - one connection attempt's libcurl easy transfer: building the
 * request, the header and write callbacks, checking the response (HTML
 * 9.2.3), following redirects with fetch's rules, and telling what a failed
 * transfer means.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "os.h"
#include "parser.h"
#include "transfer.h"

/* Bytes came in: for the read timeout. The driver's step time saves a
 * clock read per piece of body (one HTTP chunk per event is common). */
static void touch(es_transfer *t) {
  if (t->opt->read_timeout_ms > 0)
    atomic_store_explicit(&t->last_activity, t->clock ? *t->clock : es_now_ms(),
                          memory_order_relaxed);
}

/* Is the MIME type of a Content-Type value text/event-stream? Parameters and
 * surrounding white space are ignored, the comparison is case-insensitive. */
static int is_event_stream(const char *v, size_t n) {
  while (n && (*v == ' ' || *v == '\t'))
    v++, n--;
  size_t m = 0;
  while (m < n && v[m] != ';' && v[m] != ' ' && v[m] != '\t' && v[m] != '\r' &&
         v[m] != '\n')
    m++;
  return m == 17 && strncasecmp(v, "text/event-stream", 17) == 0;
}


static int is_redirect_status(long status) {
  return status == 301 || status == 302 || status == 303 || status == 307 ||
         status == 308;
}

/* Fails the response being received with code (applied when the transfer
 * ends); always 0, the header callback's "abort". */
static int refuse(es_transfer *t, eventsource_error_t code, long status,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int refuse(es_transfer *t, eventsource_error_t code, long status,
                  const char *fmt, ...) {
  t->fail = code;
  va_list ap;
  va_start(ap, fmt);
  es_error_set_va(t->err, code, status, 0, fmt, ap);
  va_end(ap);
  return 0;
}

/* "scheme://host:port" of an absolute URL, lower case, the port explicit.
 * Returns 0, or -1 when it cannot be told (then it counts as foreign). */
static int url_origin(const char *url, char *out, size_t size) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;
  if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    int n = snprintf(out, size, "%s://%s:%s", scheme, host, port);
    if (n > 0 && (size_t)n < size) {
      for (char *c = out; *c; c++)
        *c = (char)tolower((unsigned char)*c);
      rc = 0;
    }
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

static int same_origin(const char *a, const char *b) {
  char oa[512], ob[512];
  return url_origin(a, oa, sizeof oa) == 0 && url_origin(b, ob, sizeof ob) == 0 &&
         strcmp(oa, ob) == 0;
}

/* The absolute URL of a Location value, relative to base (curl_free() it),
 * or NULL when it is not a URL. */
static char *resolve_location(const char *base, const char *location) {
  CURLU *u = curl_url();
  char *out = NULL;
  if (u && curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
      curl_url_set(u, CURLUPART_URL, location, CURLU_URLENCODE) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_URL, &out, 0) != CURLUE_OK)
    out = NULL;
  curl_url_cleanup(u);
  return out;
}

/* A redirect response (status 301, 302, 303, 307, 308): set up the next hop
 * (pending_redirect, req_url, hop_get, hop_foreign) or refuse it with
 * REDIRECT. The library follows redirects itself, so that it decides per
 * hop what goes to which origin. Always returns 0: this transfer ends. */
static int take_redirect(es_transfer *t, long status) {
  if (!t->resp_location)
    return refuse(t, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect without a Location", status);
  if (t->hops >= (unsigned long)t->opt->max_redirects)
    return refuse(t, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect not followed (max redirects %ld)", status,
                  t->opt->max_redirects);
  const char *from = es_transfer_url(t);
  char *target = resolve_location(from, t->resp_location);
  if (!target || es_check_url(target) != EVENTSOURCE_OK) {
    curl_free(target);
    return refuse(t, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect to a Location that is not a usable http(s) URL",
                  status);
  }
  if (strncasecmp(from, "https:", 6) == 0 && strncasecmp(target, "http:", 5) == 0 &&
      !t->opt->redirect_downgrade) {
    curl_free(target);
    return refuse(t, EVENTSOURCE_ERR_REDIRECT, status,
                  "HTTP %ld redirect from https to http refused "
                  "(eventsource_set_redirect_downgrade() allows it)",
                  status);
  }
  char *copy = es_strdup(target);
  curl_free(target);
  if (!copy)
    return refuse(t, EVENTSOURCE_ERR_NOMEM, 0, "out of memory following a redirect");
  es_free(t->req_url);
  t->req_url = copy;
  t->hops++;
  /* Fetch's rules: 303 becomes a GET (HEAD stays), 301 and 302 turn a POST
   * into a GET; 307 and 308 keep the method and the body. */
  const char *method = t->hop_get ? "GET" : t->opt->method;
  if ((status == 303 && strcmp(method, "HEAD") != 0) ||
      ((status == 301 || status == 302) && strcmp(method, "POST") == 0))
    t->hop_get = 1;
  t->hop_foreign = !same_origin(t->url, copy);
  t->pending_redirect = 1;
  return 0;
}

/* The content codings libcurl may decode, and the feature each needs. */
static const struct {
  const char *name;
  int feature;
} CODINGS[] = {{"gzip", CURL_VERSION_LIBZ},    {"x-gzip", CURL_VERSION_LIBZ},
               {"deflate", CURL_VERSION_LIBZ}, {"br", CURL_VERSION_BROTLI},
               {"zstd", CURL_VERSION_ZSTD}};

static int coding_decodable(const char *v, size_t m) {
  const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
  if (m == 8 && strncasecmp(v, "identity", 8) == 0)
    return 1;
  for (size_t i = 0; i < sizeof CODINGS / sizeof CODINGS[0]; i++)
    if (strlen(CODINGS[i].name) == m && strncasecmp(v, CODINGS[i].name, m) == 0)
      return (ci->features & CODINGS[i].feature) != 0;
  return 0;
}

/* The codings this libcurl decodes, for messages ("identity only" when none). */
static const char *decodable_codings(char *out, size_t size) {
  const curl_version_info_data *ci = curl_version_info(CURLVERSION_NOW);
  size_t len = 0;
  out[0] = '\0';
  for (size_t i = 0; i < sizeof CODINGS / sizeof CODINGS[0]; i++)
    if ((ci->features & CODINGS[i].feature) && CODINGS[i].name[0] != 'x')
      len += (size_t)snprintf(out + len, len < size ? size - len : 0, "%s%s",
                              len ? ", " : "", CODINGS[i].name);
  return len ? out : "identity only";
}

/* Is every coding of a Content-Encoding value one libcurl decodes here?
 * Otherwise the first that is not goes to t->resp_encoding. */
static int encoding_supported(es_transfer *t, const char *v, size_t n) {
  while (n) {
    while (n && (*v == ' ' || *v == '\t' || *v == ',' || *v == '\r' || *v == '\n'))
      v++, n--;
    size_t m = 0;
    while (m < n && v[m] != ',' && v[m] != ' ' && v[m] != '\t' && v[m] != '\r' &&
           v[m] != '\n')
      m++;
    if (!m)
      break;
    if (!coding_decodable(v, m)) {
      size_t k = m < sizeof t->resp_encoding - 1 ? m : sizeof t->resp_encoding - 1;
      memcpy(t->resp_encoding, v, k);
      t->resp_encoding[k] = '\0';
      return 0;
    }
    v += m, n -= m;
  }
  return 1;
}

/* The response headers are complete: validate them (HTML 9.2.3). Returns 0
 * to end the transfer (refused, or a redirect to follow). */
static int response_ready(es_transfer *t) {
  long status = t->resp_status;
  if (status >= 100 && status < 200)
    return 1; /* interim response; the real one follows */
  t->resp_headers_done = 1;
  es_response_complete(&t->resp);
  if (is_redirect_status(status))
    return take_redirect(t, status);
  /* Refused; its body (an explanation, often JSON) is kept, then it ends. */
  if (status != 200 || !t->resp_type_ok) {
    if (status != 200)
      refuse(t, EVENTSOURCE_ERR_HTTP_STATUS, status, "HTTP status %ld (expected 200)",
             status);
    else
      refuse(t, EVENTSOURCE_ERR_CONTENT_TYPE, status, "Content-Type is not text/event-stream");
    t->keep_body = t->opt->max_error_body > 0;
    if (t->keep_body) {
      /* read for a bounded time in all, not only per byte: a server that
       * drips its explanation must not hold the attempt */
      long rt = t->opt->read_timeout_ms;
      long limit = rt > 0 && rt < EVENTSOURCE_ERROR_BODY_TIMEOUT_MS ? rt
                                                                    : EVENTSOURCE_ERROR_BODY_TIMEOUT_MS;
      t->body_until = (t->clock ? *t->clock : es_now_ms()) + (uint64_t)limit;
    }
    return t->keep_body;
  }
  char names[64];
  if (t->resp_encoding_bad)
    return refuse(t, EVENTSOURCE_ERR_ENCODING, status,
                  "Content-Encoding \"%s\" cannot be decoded (libcurl decodes: %s)",
                  t->resp_encoding, decodable_codings(names, sizeof names));
  t->open = 1;
  return t->sink->opened(t->ctx);
}

static size_t header_cb(char *buf, size_t size, size_t n, void *ud) {
  es_transfer *t = ud;
  size_t len = size * n;
  touch(t);
  if (len >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
    /* A new response (the first, an interim one, or after a redirect). */
    t->resp_status = 0;
    t->resp_type_ok = 0;
    es_free(t->resp_location);
    t->resp_location = NULL;
    t->resp_encoding_bad = 0;
    es_response_begin(&t->resp);
    const char *sp = memchr(buf, ' ', len);
    if (sp) {
      long st = 0;
      for (const char *p = sp + 1; p < buf + len && *p >= '0' && *p <= '9'; p++)
        st = st * 10 + (*p - '0');
      t->resp_status = st;
    }
    return len;
  }
  if (len <= 2 && (buf[0] == '\r' || buf[0] == '\n')) {
    return response_ready(t) ? len : 0;
  }
  if (es_response_field(&t->resp, buf, len) != 0)
    return refuse(t, EVENTSOURCE_ERR_NOMEM, 0, "out of memory keeping a response header");
  const char *colon = memchr(buf, ':', len);
  if (!colon)
    return len;
  size_t nl = (size_t)(colon - buf);
  if (nl == 12 && strncasecmp(buf, "content-type", 12) == 0)
    t->resp_type_ok = is_event_stream(colon + 1, len - nl - 1);
  else if (nl == 16 && strncasecmp(buf, "content-encoding", 16) == 0) {
    if (!t->resp_encoding_bad && !encoding_supported(t, colon + 1, len - nl - 1))
      t->resp_encoding_bad = 1;
  }
  else if (nl == 8 && strncasecmp(buf, "location", 8) == 0) {
    const char *v = colon + 1, *end = buf + len;
    while (v < end && (*v == ' ' || *v == '\t'))
      v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r' ||
                       end[-1] == '\n'))
      end--;
    es_free(t->resp_location);
    t->resp_location = v < end ? es_memdup0(v, (size_t)(end - v)) : NULL;
    if (v < end && !t->resp_location)
      return refuse(t, EVENTSOURCE_ERR_NOMEM, 0, "out of memory reading a Location");
  }
  return len;
}

static size_t write_cb(char *buf, size_t size, size_t n, void *ud) {
  es_transfer *t = ud;
  size_t len = size * n;
  touch(t);
  if (!t->open) {
    /* the body of a refused response: kept up to the bound, then it ends */
    int rc = t->keep_body ? es_response_body(&t->resp, buf, len, t->opt->max_error_body) : 0;
    if (rc < 0)
      return refuse(t, EVENTSOURCE_ERR_NOMEM, 0, "out of memory keeping a response body");
    if (rc > 0)
      es_response_note_cut(t->err, t->opt->max_error_body);
    else if (t->keep_body && (t->clock ? *t->clock : es_now_ms()) >= t->body_until)
      rc = es_response_note_late(t->err);
    return rc ? 0 : len;
  }
  int rc = t->sink->bytes(t->ctx, buf, len);
  if (rc == ES_PARSER_OK)
    return len;
  if (rc == ES_PARSER_NOMEM && !t->fail) {
    t->fail = EVENTSOURCE_ERR_NOMEM;
    es_error_set(t->err, EVENTSOURCE_ERR_NOMEM, 0, 0, "out of memory while parsing the stream");
  }
  return 0; /* abort the transfer */
}

/* Appends "name: value" to *sl ("name;" for an empty value, libcurl's way of
 * sending a header with no value). Returns 0, or -1 when out of memory. */
static int slist_add_header(struct curl_slist **sl, const char *name,
                            size_t nl, const char *value, size_t vl) {
  char *h = es_malloc(nl + vl + 3);
  if (!h)
    return -1;
  memcpy(h, name, nl);
  if (vl) {
    memcpy(h + nl, ": ", 2);
    memcpy(h + nl + 2, value, vl);
    h[nl + 2 + vl] = '\0';
  } else {
    memcpy(h + nl, ";", 2);
  }
  struct curl_slist *t = curl_slist_append(*sl, h);
  es_free(h);
  if (!t)
    return -1;
  *sl = t;
  return 0;
}

/* libcurl 7.88 and later build the request line, the headers and a body
 * under 64 KiB in one buffer of at most 1 MiB, and fail with "Out of memory"
 * past it: a request over that can never be sent. */
#define ES_CURL_MAX_REQUEST (1024u * 1024u)
#define ES_CURL_INLINE_BODY (64u * 1024u)
/* Room for what libcurl adds (Host, Content-Length, Accept-Encoding, ...). */
#define ES_REQUEST_SLACK 4096u


/* Is user header i sent on this hop? All of them to the URL's own origin;
 * to another one only with eventsource_set_redirect_headers(), except the
 * Content-Type of a body that goes along. */
static int header_sent(const es_transfer *t, size_t i, int has_body) {
  if (!t->hop_foreign || t->opt->redirect_headers)
    return 1;
  return has_body && strcasecmp(t->opt->headers[i].name, "Content-Type") == 0;
}

static eventsource_error_t build_request(es_transfer *t, const char *id, size_t idlen) {
  CURL *e = t->easy;
  struct curl_slist *sl = NULL;
  const char *url = es_transfer_url(t);
  const char *method = t->hop_get ? "GET" : t->opt->method;
  const char *body = t->hop_get ? NULL : t->opt->body;
  size_t body_len = body ? t->opt->body_len : 0;
  size_t size = strlen(method) + strlen(url) + 16 + (idlen ? idlen + 17 : 0) +
                (body_len < ES_CURL_INLINE_BODY ? body_len : 0) + ES_REQUEST_SLACK;
  int has_accept = 0, has_cache = 0, has_ctype = 0, has_encoding = 0;
  for (size_t i = 0; i < t->opt->nheaders; i++) {
    if (!header_sent(t, i, body != NULL))
      continue;
    const char *n = t->opt->headers[i].name;
    has_accept |= strcasecmp(n, "Accept") == 0;
    has_cache |= strcasecmp(n, "Cache-Control") == 0;
    has_ctype |= strcasecmp(n, "Content-Type") == 0;
    has_encoding |= strcasecmp(n, "Accept-Encoding") == 0;
    size += strlen(n) + strlen(t->opt->headers[i].value) + 4;
  }
  if (size > ES_CURL_MAX_REQUEST) {
    es_error_set(t->err, EVENTSOURCE_ERR_REQUEST_TOO_LARGE, 0, 0,
              "the request would be about %zu bytes (URL %zu, Last-Event-ID %zu), "
              "over libcurl's limit of %u bytes",
              size, strlen(url), idlen, ES_CURL_MAX_REQUEST);
    return EVENTSOURCE_ERR_REQUEST_TOO_LARGE;
  }
  /* The defaults a user header does not replace; "Expect:" and an empty
   * "Content-Type:" remove libcurl's own (100-continue round trips, and the
   * form type: a body has no type unless the user sets one); an empty
   * "Accept-Encoding:" keeps libcurl from advertising the encodings it
   * decodes (it decodes them all the same) unless compression is asked for. */
  const char *fixed[5];
  size_t nfixed = 0;
  if (!has_accept)
    fixed[nfixed++] = "Accept: text/event-stream";
  if (!has_cache)
    fixed[nfixed++] = "Cache-Control: no-cache";
  fixed[nfixed++] = "Expect:";
  if (body && !has_ctype)
    fixed[nfixed++] = "Content-Type:";
  if (!t->opt->compression && !has_encoding)
    fixed[nfixed++] = "Accept-Encoding:";
  for (size_t i = 0; i < nfixed; i++) {
    struct curl_slist *more = curl_slist_append(sl, fixed[i]);
    if (!more)
      goto nomem;
    sl = more;
  }
  for (size_t i = 0; i < t->opt->nheaders; i++)
    if (header_sent(t, i, body != NULL) &&
        slist_add_header(&sl, t->opt->headers[i].name, strlen(t->opt->headers[i].name),
                         t->opt->headers[i].value, strlen(t->opt->headers[i].value)) != 0)
      goto nomem;
  if (idlen && slist_add_header(&sl, "Last-Event-ID", 13, id, idlen) != 0)
    goto nomem;
  curl_slist_free_all(t->slist);
  t->slist = sl;

  CURLcode rc = CURLE_OK;
#define SET(opt, val)                                                          \
  do {                                                                         \
    if (rc == CURLE_OK)                                                        \
      rc = curl_easy_setopt(e, opt, val);                                      \
  } while (0)
  SET(CURLOPT_URL, url);
  SET(CURLOPT_HTTPHEADER, t->slist);
  SET(CURLOPT_PRIVATE, t->ctx); /* how the multi finds its source */
  SET(CURLOPT_WRITEFUNCTION, write_cb);
  SET(CURLOPT_WRITEDATA, (void *)t);
  SET(CURLOPT_HEADERFUNCTION, header_cb);
  SET(CURLOPT_HEADERDATA, (void *)t);
  SET(CURLOPT_ERRORBUFFER, t->errbuf);
  SET(CURLOPT_NOSIGNAL, 1L);
  /* Redirects are followed here, one transfer per hop (take_redirect). */
  SET(CURLOPT_FOLLOWLOCATION, 0L);
  SET(CURLOPT_PROTOCOLS_STR, "http,https");
  SET(CURLOPT_TCP_KEEPALIVE, 1L);
  if (t->buffer_size)
    SET(CURLOPT_BUFFERSIZE, t->buffer_size);
  /* Decode every encoding libcurl knows ("": all of them). */
  SET(CURLOPT_ACCEPT_ENCODING, "");
  /* The headers of a proxy's CONNECT response are not the server's response. */
  SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
  SET(CURLOPT_CONNECTTIMEOUT_MS, t->opt->connect_timeout_ms);
  if (body) {
    /* libcurl keeps its own copy: the user may replace the body (from a
     * listener) while this transfer still sends it. */
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    SET(CURLOPT_COPYPOSTFIELDS, body);
  } else {
    SET(CURLOPT_HTTPGET, 1L);
    if (strcmp(method, "POST") == 0) {
      SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
      SET(CURLOPT_POSTFIELDS, "");
    }
  }
  /* libcurl's own verbs are GET without a body and POST with one (or the
   * empty one above); anything else, GET with a body included, is named. */
  int plain = strcmp(method, "POST") == 0 || (strcmp(method, "GET") == 0 && !body);
  SET(CURLOPT_CUSTOMREQUEST, plain ? NULL : method);
#undef SET
  if (rc != CURLE_OK) {
    es_error_set(t->err, EVENTSOURCE_ERR_CURL, 0, (int)rc, "libcurl: %s",
              curl_easy_strerror(rc));
    return EVENTSOURCE_ERR_CURL;
  }
  return EVENTSOURCE_OK;
nomem:
  curl_slist_free_all(sl);
  es_error_set(t->err, EVENTSOURCE_ERR_NOMEM, 0, 0, "out of memory building the request");
  return EVENTSOURCE_ERR_NOMEM;
}

/* The credentials a curl callback may have set travel with the handle:
 * cleared for a hop to another origin, as the user's headers are. */
static CURLcode drop_foreign_credentials(es_transfer *t) {
  if (!t->hop_foreign || t->opt->redirect_headers)
    return CURLE_OK;
  CURLcode rc = curl_easy_setopt(t->easy, CURLOPT_USERPWD, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(t->easy, CURLOPT_USERNAME, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(t->easy, CURLOPT_PASSWORD, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(t->easy, CURLOPT_XOAUTH2_BEARER, (char *)NULL);
  if (rc == CURLE_OK)
    rc = curl_easy_setopt(t->easy, CURLOPT_COOKIE, (char *)NULL);
  return rc;
}

/* A failed transfer: what it means, with the message the user sees. */
static eventsource_error_t classify(es_transfer *t, CURLcode result) {
  const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(result);
  eventsource_error_t why = EVENTSOURCE_ERR_NETWORK;
  switch (result) {
  case CURLE_URL_MALFORMAT:
  case CURLE_UNSUPPORTED_PROTOCOL:
    why = EVENTSOURCE_ERR_URL;
    es_error_set(t->err, why, 0, (int)result, "unusable URL: %s", detail);
    return why;
  /* Retrying the same handshake cannot heal these. */
  case CURLE_PEER_FAILED_VERIFICATION:
  case CURLE_SSL_CERTPROBLEM:
  case CURLE_SSL_CIPHER:
  case CURLE_SSL_CACERT_BADFILE:
  case CURLE_SSL_CRL_BADFILE:
  case CURLE_SSL_ISSUER_ERROR:
  case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
  case CURLE_SSL_INVALIDCERTSTATUS:
  case CURLE_SSL_ENGINE_NOTFOUND:
  case CURLE_SSL_ENGINE_SETFAILED:
  case CURLE_SSL_ENGINE_INITFAILED:
  case CURLE_SSL_CLIENTCERT:
  case CURLE_USE_SSL_FAILED:
    why = EVENTSOURCE_ERR_TLS;
    es_error_set(t->err, why, 0, (int)result, "TLS: %s", detail);
    return why;
  case CURLE_BAD_CONTENT_ENCODING:
    why = EVENTSOURCE_ERR_ENCODING;
    es_error_set(t->err, why, 0, (int)result, "the response body cannot be decoded: %s", detail);
    return why;
  case CURLE_NOT_BUILT_IN:
  case CURLE_BAD_FUNCTION_ARGUMENT:
  case CURLE_UNKNOWN_OPTION:
    why = EVENTSOURCE_ERR_CURL;
    es_error_set(t->err, why, 0, (int)result, "libcurl: %s", detail);
    return why;
  case CURLE_OUT_OF_MEMORY: {
    /* libcurl's word for a request over its 1 MiB buffer, and for a response
     * header line over CURL_MAX_HTTP_HEADER: tell them apart by what was sent. */
    long req_size = 0;
    curl_easy_getinfo(t->easy, CURLINFO_REQUEST_SIZE, &req_size);
    if (req_size == 0) {
      why = EVENTSOURCE_ERR_REQUEST_TOO_LARGE;
      es_error_set(t->err, why, 0, (int)result,
                "libcurl could not build the request: larger than its limit of %u "
                "bytes (or out of memory)", ES_CURL_MAX_REQUEST);
      return why;
    }
    if (!t->resp_headers_done) {
      why = EVENTSOURCE_ERR_RESPONSE_TOO_LARGE;
      es_error_set(t->err, why, t->resp_status, (int)result,
                "a response header line is longer than libcurl's limit of %d bytes "
                "(or out of memory)", CURL_MAX_HTTP_HEADER);
      return why;
    }
    break;
  }
  case CURLE_RECV_ERROR:
    if (!t->resp_headers_done &&
        strncmp(t->errbuf, "Too large response headers", 26) == 0) {
      why = EVENTSOURCE_ERR_RESPONSE_TOO_LARGE;
      es_error_set(t->err, why, t->resp_status, (int)result,
                "the response headers are larger than libcurl's limit: %s", detail);
      return why;
    }
    break;
  default:
    break;
  }
  es_error_set(t->err, why, 0, (int)result, "%s", detail);
  return why;
}

/* ------------------------------------------------------------------------ */
/* The interface                                                            */
/* ------------------------------------------------------------------------ */

void es_transfer_init(es_transfer *t, const char *url, const es_options *opt,
                      const es_transfer_sink *sink, void *ctx, es_error *err) {
  memset(t, 0, sizeof *t);
  t->url = url;
  t->opt = opt;
  t->sink = sink;
  t->ctx = ctx;
  t->err = err;
}

void es_transfer_cleanup(es_transfer *t) {
  if (t->easy)
    curl_easy_cleanup(t->easy);
  t->easy = NULL;
  curl_slist_free_all(t->slist);
  t->slist = NULL;
  es_free(t->req_url);
  t->req_url = NULL;
  es_free(t->resp_location);
  t->resp_location = NULL;
  es_response_free(&t->resp);
}

void es_transfer_new_attempt(es_transfer *t) {
  es_free(t->req_url);
  t->req_url = NULL;
  t->hops = 0;
  t->hop_get = 0;
  t->hop_foreign = 0;
}

const char *es_transfer_url(const es_transfer *t) {
  return t->req_url ? t->req_url : t->url;
}

eventsource_error_t es_transfer_prepare(es_transfer *t, const char *last_id,
                                        size_t id_len, uint64_t now) {
  t->fail = EVENTSOURCE_OK;
  t->pending_redirect = 0;
  t->resp_status = 0;
  t->resp_type_ok = 0;
  t->resp_headers_done = 0;
  t->resp_encoding_bad = 0;
  t->open = 0;
  t->keep_body = 0;
  es_response_reset(&t->resp);
  t->errbuf[0] = '\0';
  if (!t->easy) {
    t->easy = curl_easy_init();
    if (!t->easy) {
      es_error_set(t->err, EVENTSOURCE_ERR_CURL, 0, 0, "curl_easy_init failed");
      return EVENTSOURCE_ERR_CURL;
    }
  }
  atomic_store(&t->last_activity, now);
  return build_request(t, last_id, id_len);
}

eventsource_error_t es_transfer_finish_setup(es_transfer *t) {
  CURLcode cc = drop_foreign_credentials(t);
  if (cc == CURLE_OK)
    return EVENTSOURCE_OK;
  es_error_set(t->err, EVENTSOURCE_ERR_CURL, 0, (int)cc, "libcurl: %s",
               curl_easy_strerror(cc));
  return EVENTSOURCE_ERR_CURL;
}

es_transfer_end_t es_transfer_end(es_transfer *t, CURLcode result,
                                  eventsource_error_t *why) {
  if (t->pending_redirect)
    return ES_TRANSFER_REDIRECT;
  if (t->fail) {
    *why = t->fail;
  } else if (result == CURLE_OK) {
    if (t->open) {
      *why = EVENTSOURCE_ERR_EOF;
      es_error_set(t->err, *why, 0, 0, "the server ended the stream");
    } else {
      /* Finished without a response we could validate. */
      *why = EVENTSOURCE_ERR_HTTP_STATUS;
      es_error_set(t->err, *why, t->resp_status, 0, "HTTP status %ld (expected 200)",
                   t->resp_status);
    }
  } else {
    *why = classify(t, result);
  }
  return ES_TRANSFER_FAILED;
}
