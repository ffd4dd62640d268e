/*
 * example-resume.c - a POST whose answer is a resumable stream: the first
 * request is a POST with a JSON body, every reconnection a GET with
 * Last-Event-ID. This is how MCP's "Streamable HTTP" transport resumes a
 * tool call (SEP-1699), and how other servers that stream the answer to a
 * request work.
 *
 *   example-resume URL        e.g. http://127.0.0.1:PORT/mcp
 *
 * - The server answers the POST with "retry: N", a priming event (an id and
 *   empty data) and a few events, then closes the connection on purpose.
 *   The spec's reconnection rules do the rest: the library reconnects after
 *   the server's reconnection time, as sent, and sends the last event ID.
 *   A connection that delivered an event is a success, so closing on
 *   purpose never makes the delay grow.
 * - The prepare callback runs before every request and switches it: POST
 *   with the body and its Content-Type on attempt 1, GET without either on
 *   the others. Attempt 1 is the first connection only (the attempt number
 *   counts consecutive failures from there, so it is 2 again on every
 *   reconnection after a success; eventsource_restart() would start over at
 *   1), and a redirect of the POST keeps its attempt number, so the
 *   redirected POST stays a POST. The Last-Event-ID header is the library's
 *   business: it is sent by itself.
 * - reconnect-on-end stays on (the default): here the end of a stream is
 *   not the end of the answer. The JSON-RPC result is: its listener closes
 *   the source, which makes eventsource_run() return EVENTSOURCE_OK.
 *
 * Exits 0 when the result was received, 1 otherwise.
 */
#include <stdio.h>
#include <string.h>

#include <eventsource.h>

static const char call_body[] =
    "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
    "\"params\":{\"name\":\"count\",\"arguments\":{}}}";

struct call {
  unsigned requests;
  long progress;
  int done;
};

/* Before every connection attempt: POST the call first, then resume it
 * with GET. Returning non-zero would fail the source (CALLBACK). */
static int prepare(eventsource_t *es, unsigned attempt, void *userdata) {
  struct call *call = userdata;
  eventsource_error_t err;
  size_t id_len;
  const char *id = eventsource_last_event_id(es, &id_len);
  call->requests++;
  if (attempt == 1) {
    printf("request %u: POST %s\n", call->requests, eventsource_request_url(es));
    if ((err = eventsource_set_method(es, "POST")) != EVENTSOURCE_OK ||
        (err = eventsource_set_body(es, call_body, strlen(call_body))) != EVENTSOURCE_OK ||
        (err = eventsource_set_header(es, "Content-Type", "application/json")) !=
            EVENTSOURCE_OK) {
      fprintf(stderr, "prepare: %s\n", eventsource_strerror(err));
      return -1;
    }
  } else {
    printf("request %u: GET %s, Last-Event-ID %.*s\n", call->requests,
           eventsource_request_url(es), (int)id_len, id);
    if ((err = eventsource_set_method(es, "GET")) != EVENTSOURCE_OK ||
        (err = eventsource_set_body(es, NULL, 0)) != EVENTSOURCE_OK) {
      fprintf(stderr, "prepare: %s\n", eventsource_strerror(err));
      return -1;
    }
    err = eventsource_remove_header(es, "Content-Type");
    if (err != EVENTSOURCE_OK && err != EVENTSOURCE_ERR_NOT_FOUND) {
      fprintf(stderr, "eventsource_remove_header: %s\n", eventsource_strerror(err));
      return -1;
    }
  }
  fflush(stdout);
  return 0;
}

/* Every server event has type "message" (MCP sends JSON-RPC messages):
 * the priming event has empty data, progress notifications carry
 * "method", the result "result". */
static void on_message(eventsource_t *es, const eventsource_event_t *ev, void *userdata) {
  struct call *call = userdata;
  size_t len, id_len;
  const char *data = eventsource_event_data(ev, &len);
  const char *id = eventsource_event_last_event_id(ev, &id_len);
  if (len == 0) {
    printf("primed: id %.*s\n", (int)id_len, id);
  } else if (strstr(data, "\"result\"") != NULL) {
    printf("result: id %.*s: %.*s\n", (int)id_len, id, (int)len, data);
    call->done = 1;
    eventsource_close(es);
  } else {
    printf("progress: id %.*s: %.*s\n", (int)id_len, id, (int)len, data);
    call->progress++;
  }
  fflush(stdout);
}

static void on_error(eventsource_t *es, const eventsource_event_t *ev, void *userdata) {
  (void)es;
  (void)userdata;
  if (eventsource_event_will_reconnect(ev))
    printf("stream ended (%s); resuming in %ld ms\n",
           eventsource_error_name(eventsource_event_error(ev)),
           eventsource_event_reconnect_ms(ev));
  else
    fprintf(stderr, "error: %s (%s)\n", eventsource_error_name(eventsource_event_error(ev)),
            eventsource_event_message(ev));
  fflush(stdout);
}

int main(int argc, char **argv) {
  struct call call;
  eventsource_t *es = NULL;
  eventsource_error_t err;
  const char *step = "";

  if (argc != 2) {
    fprintf(stderr, "usage: %s URL\n", argv[0]);
    return 2;
  }
  memset(&call, 0, sizeof call);

  err = eventsource_new(&es, argv[1]);
  if (err != EVENTSOURCE_OK) {
    fprintf(stderr, "eventsource_new: %s\n", eventsource_strerror(err));
    return 1;
  }
  if ((err = eventsource_set_prepare_callback(es, prepare, &call)) != EVENTSOURCE_OK)
    step = "eventsource_set_prepare_callback";
  else if ((err = eventsource_add_listener(es, "message", on_message, &call, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(message)";
  else if ((err = eventsource_add_listener(es, "error", on_error, &call, NULL)) !=
           EVENTSOURCE_OK)
    step = "eventsource_add_listener(error)";
  else if ((err = eventsource_run(es)) != EVENTSOURCE_OK)
    step = "eventsource_run";

  if (err != EVENTSOURCE_OK)
    fprintf(stderr, "%s: %s: %s\n", step, eventsource_strerror(err),
            eventsource_last_error_message(es));
  else if (!call.done)
    fprintf(stderr, "the source closed without a result\n");
  else
    printf("%ld progress notifications in %u requests\n", call.progress, call.requests);

  eventsource_free(es);
  return err == EVENTSOURCE_OK && call.done ? 0 : 1;
}
