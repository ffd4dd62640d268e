/*
 * loop.h - the built-in loop's descriptor watching, one backend per build
 * (internal).
 *
 * eventsource_multi_poll()/run() wait here; lib/multi.c knows nothing of the
 * system calls behind it. Exactly one backend is compiled in, chosen by the
 * Makefile (LOOP=epoll or LOOP=poll):
 *   lib/loop_epoll.c   epoll and an eventfd (Linux)
 *   lib/loop_poll.c    POSIX poll() and a self-pipe (anywhere else)
 *
 * A loop has a wakeup descriptor, always watched for input: es_loop_wakeup()
 * (any thread) makes it readable, es_loop_drain() reads it empty. It is also
 * the descriptor the multi gives an application's loop through the socket
 * callback (es_loop_wakeup_fd()).
 *
 * Errors are errno values (0: success); the loop never prints or aborts.
 * Everything but es_loop_wakeup() is for the thread that runs the loop.
 */
#ifndef EVENTSOURCE_LOOP_H
#define EVENTSOURCE_LOOP_H

typedef struct es_loop es_loop;

/* Interest (es_loop_watch) and readiness (es_loop_wait) flags. */
#define ES_LOOP_IN 1u
#define ES_LOOP_OUT 2u
#define ES_LOOP_ERR 4u /* readiness only: an error condition on the descriptor */

/* Called by es_loop_wait() for each ready descriptor, the wakeup descriptor
 * included. It may watch and unwatch descriptors (those it unwatches are not
 * reported afterwards in the same wait). */
typedef void (*es_loop_ready_fn)(int fd, unsigned ready, void *userdata);

/* "epoll" or "poll": the backend compiled in. */
const char *es_loop_backend_name(void);

/* A new loop in *out: 0, ENOMEM, or the errno of the failed system call. */
int es_loop_new(es_loop **out);
/* Closes the loop's own descriptors (not the watched ones) and frees it. */
void es_loop_free(es_loop *l);

/* The wakeup descriptor (open as long as the loop). */
int es_loop_wakeup_fd(const es_loop *l);
/* Makes the wakeup descriptor readable; from any thread. 0 or an errno
 * value; a wakeup already pending is success. */
int es_loop_wakeup(es_loop *l);
/* Reads the wakeup descriptor empty (does not block). */
void es_loop_drain(es_loop *l);

/* Watches fd for events (ES_LOOP_IN | ES_LOOP_OUT; 0 only errors), or
 * changes what it is watched for. 0, or ENOMEM or the system call's errno. */
int es_loop_watch(es_loop *l, int fd, unsigned events);
/* Stops watching fd. fd may already be closed and its number reused by
 * another thread (libcurl reports a socket removed after closing it): no
 * backend issues a system call on it here. Unknown descriptors are ignored. */
void es_loop_unwatch(es_loop *l, int fd);

/* Waits at most timeout_ms (-1: no limit) for watched descriptors to be
 * ready and calls fn for each. 0 (also when interrupted by a signal), or the
 * errno of the failed wait. */
int es_loop_wait(es_loop *l, int timeout_ms, es_loop_ready_fn fn, void *userdata);

#endif
