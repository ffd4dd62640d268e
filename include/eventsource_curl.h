/*
 * eventsource_curl.h - the libcurl escape hatch of libeventsource.
 *
 * Copyright (c) 2026 the libeventsource developers. MIT licence, see COPYING.
 *
 * For what eventsource.h has no setter for (TLS files, client certificates,
 * proxies, interface binding, ...): a hook that gets the CURL easy handle of
 * each connection attempt after the library has set its own options, so it
 * may set more with curl_easy_setopt(). Including this header needs
 * <curl/curl.h>; eventsource.h alone does not.
 */
#ifndef EVENTSOURCE_CURL_H
#define EVENTSOURCE_CURL_H

#include <curl/curl.h>
#include "eventsource.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Called on the loop thread before every connection attempt and every
 * redirected request (see eventsource_request_url()), after the prepare
 * callback and after the library set its own options on easy. For a
 * request to another origin than the source's URL, the library then clears
 * CURLOPT_USERPWD, _USERNAME, _PASSWORD, _XOAUTH2_BEARER and _COOKIE unless
 * eventsource_set_redirect_headers(es, 1). The
 * handle is borrowed: do not keep it, perform it or clean it up. Changing the
 * options the library relies on (CURLOPT_WRITEFUNCTION, CURLOPT_HEADERFUNCTION,
 * CURLOPT_PRIVATE, CURLOPT_URL, CURLOPT_HTTPHEADER, CURLOPT_CUSTOMREQUEST,
 * CURLOPT_POSTFIELDS*, CURLOPT_FOLLOWLOCATION, CURLOPT_ACCEPT_ENCODING) breaks
 * the source. Return CURLE_OK; anything else fails the source (CLOSED,
 * error CURL with that code). */
typedef CURLcode (*eventsource_curl_fn)(eventsource_t *es, CURL *easy,
                                        void *userdata);

/* Installs (or with NULL removes) the hook. Errors: INVALID_ARGUMENT.
 * Loop thread; callback: yes. */
EVENTSOURCE_EXPORT eventsource_error_t
eventsource_set_curl_callback(eventsource_t *es, eventsource_curl_fn fn,
                              void *userdata);

#ifdef __cplusplus
}
#endif

#endif /* EVENTSOURCE_CURL_H */
