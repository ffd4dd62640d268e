/*
 * example-llm.c - a POST request with a JSON body, in the style of LLM
 * streaming APIs.
 *
 *   example-llm URL [TOKEN]        e.g. http://127.0.0.1:PORT/llm
 *
 * - The method, the body and Content-Type are set once; the library sends
 *   them again on every connection attempt.
 * - The Authorization header is set by the prepare callback, which runs
 *   before every attempt, so each attempt could carry a fresh token.
 * - A completion must not be requested twice. The spec reconnects when a
 *   stream ends; eventsource_set_reconnect_on_end(es, 0) makes the end of
 *   the answer final instead (the source closes, the error notification
 *   says EOF with will_reconnect 0). A failure mid-answer (a broken
 *   connection, a read timeout) would still be retried, and the prompt sent
 *   again, so the policy callback turns those reconnections off too.
 * - The stream ends with an "event: done"; its listener closes the source,
 *   which makes eventsource_run() return EVENTSOURCE_OK.
 *
 * Exits 0 when "done" was received, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <eventsource.h>

static const char request_body[] =
    "{\"model\":\"demo\",\"stream\":true,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"Say hello.\"}]}";

struct llm {
  const char *token_base; /* the token the prepare callback builds on */
  unsigned attempts;
  long tokens;
  int done;
};

/* Before every connection attempt (attempt 1 is the first): a real program
 * would fetch or refresh its access token here. */
static int prepare(eventsource_t *es, unsigned attempt, void *userdata) {
  struct llm *llm = userdata;
  char value[256];
  eventsource_error_t err;
  int n = snprintf(value, sizeof value, "Bearer %s-%u", llm->token_base, attempt);
  if (n < 0 || (size_t)n >= sizeof value)
    return -1; /* fails the source with EVENTSOURCE_ERR_CALLBACK */
  err = eventsource_set_header(es, "Authorization", value);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_set_header: %s\n", eventsource_strerror(err));
    return -1;
  }
  llm->attempts = attempt;
  return 0;
}

/* A failure (a network error, a read timeout, a status other than 200...)
 * must not send the request again either: the answer would start over. */
static void no_reconnect(eventsource_t *es, eventsource_error_t why,
                         long http_status, unsigned attempt, int *reconnect,
                         long *delay_ms, void *userdata) {
  (void)es;
  (void)why;
  (void)http_status;
  (void)attempt;
  (void)delay_ms;
  (void)userdata;
  *reconnect = 0;
}

static void on_token(eventsource_t *es, const eventsource_event_t *ev, void *userdata) {
  struct llm *llm = userdata;
  size_t len;
  const char *data = eventsource_event_data(ev, &len);
  (void)es;
  printf("token: ");
  fwrite(data, 1, len, stdout);
  putchar('\n');
  fflush(stdout);
  llm->tokens++;
}

static void on_done(eventsource_t *es, const eventsource_event_t *ev, void *userdata) {
  struct llm *llm = userdata;
  size_t len;
  const char *data = eventsource_event_data(ev, &len);
  printf("done: ");
  fwrite(data, 1, len, stdout);
  putchar('\n');
  fflush(stdout);
  llm->done = 1;
  eventsource_close(es);
}

static void on_error(eventsource_t *es, const eventsource_event_t *ev, void *userdata) {
  (void)es;
  (void)userdata;
  if (eventsource_event_kind(ev) != EVENTSOURCE_KIND_ERROR)
    return;
  if (eventsource_event_http_status(ev) != 0)
    fprintf(stderr, "error: %s, HTTP status %ld\n",
            eventsource_error_name(eventsource_event_error(ev)),
            eventsource_event_http_status(ev));
  else
    fprintf(stderr, "error: %s (%s)\n",
            eventsource_error_name(eventsource_event_error(ev)),
            eventsource_event_message(ev));
}

int main(int argc, char **argv) {
  struct llm llm;
  eventsource_t *es = NULL;
  eventsource_error_t err;
  const char *step = "";

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s URL [TOKEN]\n", argv[0]);
    return 2;
  }
  memset(&llm, 0, sizeof llm);
  llm.token_base = argc == 3 ? argv[2] : "demo-token";

  err = eventsource_new(&es, argv[1]);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_new: %s\n", eventsource_strerror(err));
    return 1;
  }
  if ((err = eventsource_set_method(es, "POST")) != EVENTSOURCE_OK)
    step = "eventsource_set_method";
  else if ((err = eventsource_set_body(es, request_body, strlen(request_body))) !=
           EVENTSOURCE_OK)
    step = "eventsource_set_body";
  else if ((err = eventsource_set_header(es, "Content-Type", "application/json")) !=
           EVENTSOURCE_OK)
    step = "eventsource_set_header";
  else if ((err = eventsource_set_reconnect_on_end(es, 0)) != EVENTSOURCE_OK)
    step = "eventsource_set_reconnect_on_end";
  else if ((err = eventsource_set_prepare_callback(es, prepare, &llm)) != EVENTSOURCE_OK)
    step = "eventsource_set_prepare_callback";
  else if ((err = eventsource_set_policy_callback(es, no_reconnect, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_set_policy_callback";
  else if ((err = eventsource_add_listener(es, "message", on_token, &llm, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(message)";
  else if ((err = eventsource_add_listener(es, "done", on_done, &llm, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(done)";
  else if ((err = eventsource_add_listener(es, "error", on_error, &llm, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(error)";
  else if ((err = eventsource_run(es)) != EVENTSOURCE_OK)
    step = "eventsource_run";

  if (err != EVENTSOURCE_OK)
    fprintf(stderr, "%s: %s: %s\n", step, eventsource_strerror(err),
            eventsource_last_error_message(es));
  else if (!llm.done)
    fprintf(stderr, "the stream ended without \"done\"\n");
  else
    printf("%ld tokens in %u attempt(s)\n", llm.tokens, llm.attempts);

  eventsource_free(es);
  return err == EVENTSOURCE_OK && llm.done ? 0 : 1;
}
