/*
 * common.h - what the many-streams benchmarks (bench_streams, bench_h2)
 * share: dying loudly, clocks, the process's resident memory, and the
 * descriptor limit.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

/* Prints "PROGRAM: message" on stderr and exits with status 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Monotonic wall time, and this process's CPU time (user + system), in s. */
double bench_now_s(void);
double bench_cpu_s(void);

/* This process's resident memory in bytes (/proc/self/statm); dies when it
 * cannot be read. */
long bench_rss_bytes(void);

/* Raises the soft RLIMIT_NOFILE to at least need (children inherit it);
 * dies when the hard limit is lower. */
void bench_raise_nofile(unsigned long need);

#endif
