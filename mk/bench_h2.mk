# mk/bench_h2.mk - the HTTP/2 benchmark (bench/bench_h2.c, issue 14),
# included by the top Makefile.
#
#   make bench-h2                  builds bench/bench_h2 in a plain optimised
#                                  tree ($(BENCH_STREAMS_O)) and runs it: 1000
#                                  streams in one multi handle through nghttpx
#                                  over TLS h2, then the same 1000 over
#                                  HTTP/1.1 through the same frontend, one line
#                                  each:
#     bench-h2: proto=h2|http1.1 streams=N connections=N rss_per_stream_kib=K events_per_s=E open_all_ms=T
#                                  (about 10 s; fails when a stream does not
#                                  open or h2 takes more than 12 connections)
#   make bench-h2 BENCH_H2_ARGS=2000              another number of streams
#   make bench-h2 BENCH_H2_ARGS="1000 50"         nghttpx allowing 50 streams
#                                  per connection (below the library's 100:
#                                  it learns the server's limit; at most
#                                  ceil(N / 50) + 2 connections)
#
# Needs nghttpx (Debian nghttp2-proxy, installed by mk/deps.sh test). Unlike
# the other benchmarks it links test code: test/support/ts_nghttpx.c (nghttpx
# as a child process) and ts_tls.c (certificates made at run time), with
# OpenSSL. Not part of `make bench`.

BENCH_H2_ARGS ?=
BENCH_H2_OBJ := $(BENCH_MASS_OBJ) $(O)/test/support/ts_nghttpx.o $(O)/test/support/ts_tls.o

.PHONY: bench-h2

$(O)/bench/bench_h2: $(BENCH_H2_OBJ)
$(O)/bench/bench_h2: BENCH_LIBS = $(BENCH_H2_OBJ) -lssl -lcrypto

bench-h2: deps-test
	@$(MAKE) --no-print-directory O=$(BENCH_STREAMS_O) SAN=0 \
	  $(BENCH_STREAMS_O)/bench/bench_h2
	$(BENCH_STREAMS_O)/bench/bench_h2 $(BENCH_H2_ARGS)
