/*
 * mass_child.h - bench/mass_server.c in a child process, driven over a pipe,
 * so that the client's figures (RSS, CPU) are the library's alone.
 *
 * Start it before the process has threads or libcurl state (it forks). Every
 * failure dies (bench_die): these are the benchmarks' helpers. One at a time
 * per process.
 */
#ifndef MASS_CHILD_H
#define MASS_CHILD_H

#include <stddef.h>

/* Forks the server; payload (len bytes, copied) is what broadcast and send
 * queue per event. Returns the server's port. */
int mass_child_start(const char *payload, size_t len);
/* Queues count events for every open stream; returns how many streams they
 * were queued for (the server answers when they are queued). */
int mass_child_broadcast(int count);
/* Queues one event for stream id (no answer). */
void mass_child_send(int id);
/* Stops the server and reaps the child. */
void mass_child_stop(void);

#endif
