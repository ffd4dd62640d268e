# mk/adapters.mk - the event-loop adapters' suite and the many-streams
# benchmark, included by the top Makefile.
#
#   make bench-streams             builds bench/bench_streams in a plain
#                                  optimised tree ($(BENCH_STREAMS_O)) and runs
#                                  it: 1000 streams against a loopback server
#                                  in a child process
#   make bench-streams BENCH_STREAMS_ARGS=5000    another number of streams
#
# The adapters are header-only (include/eventsource_{poll,libuv,libevent}.h):
# libuv and libevent are linked into their test suite only, never into the
# library.

BENCH_STREAMS_O ?= $(O)/bench-opt
BENCH_STREAMS_ARGS ?=

.PHONY: bench-streams

$(O)/test/test_adapters: TEST_LIBS = -luv -levent

# bench/mass_server.c, the many-streams loopback server (one epoll thread),
# is the benchmark's; test_multi's thousand-streams test links it too. The
# benchmark links nothing of test/.
# bench/mass_child.c runs it in a child process, bench/common.c is what the
# many-streams benchmarks share.
BENCH_MASS_OBJ := $(O)/bench/mass_child.o $(O)/bench/mass_server.o $(O)/bench/common.o
$(O)/bench/bench_streams: $(BENCH_MASS_OBJ)
$(O)/bench/bench_streams: BENCH_LIBS = $(BENCH_MASS_OBJ)
$(O)/test/test_multi: $(O)/bench/mass_server.o
$(O)/test/test_multi: TEST_LIBS = $(O)/bench/mass_server.o

bench-streams: deps
	@$(MAKE) --no-print-directory O=$(BENCH_STREAMS_O) SAN=0 \
	  $(BENCH_STREAMS_O)/bench/bench_streams
	$(BENCH_STREAMS_O)/bench/bench_streams $(BENCH_STREAMS_ARGS)
