# mk/bench_e2e.mk - the end-to-end benchmark (bench/bench_e2e.c), included by
# the top Makefile; `make bench` runs it with the other bench_* programs.
#
#   build/bench/bench_e2e                 throughput (256 MB a stream) and
#                                         latency, about 30 s
#   ES_BENCH_MB=1000 build/bench/bench_e2e   the issue's 1 GB figures
#   build/bench/bench_e2e bufsize         libcurl's receive buffer, 16-128 KiB
#
# Its loopback server and streams are bench/e2e_streams.c; it links nothing
# of test/.

$(O)/bench/bench_e2e: $(O)/bench/e2e_streams.o
$(O)/bench/bench_e2e: BENCH_LIBS = $(O)/bench/e2e_streams.o
