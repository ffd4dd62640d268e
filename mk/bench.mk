# mk/bench.mk - the parser benchmark's modules and targets (issue 12),
# included by the top Makefile.
#
#   make bench            (top Makefile) every benchmark but bench-streams
#                         and bench-h2 (mk/bench_h2.mk):
#                         bench_parser's table and shapes, then bench-callgrind
#                         when valgrind is installed and bench-node when node
#                         and npm are
#   make bench-callgrind [BENCH_CG_SIZE=8M]
#       each shape of bench/gen.h once through libeventsource's parser
#       (collecting feed_all) and once through the naive parser (collecting
#       naive_feed_all) under callgrind: instructions per input byte, callbacks
#       included, printed as
#         bench: name=callgrind_SHAPE value=<Ir/byte> baseline=<naive Ir/byte> ratio=...
#       (ratio = value / baseline, as in every line: below 1 is fewer
#       instructions than the naive parser). Needs valgrind; use a build
#       without SAN=1.
#   make bench-node [ES_BENCH_MB=100]
#       optional, never part of make test: installs npm's eventsource-parser
#       4.x into $(O)/bench-node (npm install --prefix, nothing global) and
#       runs it on the same bytes as libeventsource's parser, in turn, in the
#       same run (mk/bench-node.sh, bench/node_parser.mjs):
#         bench: name=node_parser_SHAPE value=<MB/s> baseline=<libeventsource MB/s> ratio=...

BENCH_CG_SIZE ?= 8M
BENCH_SHAPES := small crlf llm multiline large

# bench/gen.c (the stream generator) and bench/naive.c (the naive parser and
# the CR/LF scan): bench_parser's modules.
$(O)/bench/bench_parser: $(O)/bench/gen.o $(O)/bench/naive.o
$(O)/bench/bench_parser: BENCH_LIBS = $(O)/bench/gen.o $(O)/bench/naive.o

.PHONY: bench-callgrind bench-node

bench-callgrind: $(O)/bench/bench_parser
	@echo "# callgrind: instructions per input byte, $(BENCH_CG_SIZE) per shape in 64 KiB pieces, callbacks included; value libeventsource's parser, baseline the naive one"
	@for s in $(BENCH_SHAPES); do \
	  for p in es naive; do \
	    fn=feed_all; [ $$p = naive ] && fn=naive_feed_all; \
	    out=$(O)/bench/callgrind.shape.$$s.$$p; \
	    bytes=$$(valgrind --tool=callgrind --callgrind-out-file=$$out \
	      --toggle-collect=$$fn $(O)/bench/bench_parser --cg $$s $(BENCH_CG_SIZE) $$p \
	      2>/dev/null | awk '{print $$2}'); \
	    ir=$$(callgrind_annotate $$out 2>/dev/null | \
	      awk '/PROGRAM TOTALS/ {gsub(",", "", $$1); print $$1}'); \
	    [ -n "$$bytes" ] && [ -n "$$ir" ] || { echo "$$s ($$p): callgrind failed" >&2; exit 1; }; \
	    eval "ir_$$p=$$ir"; \
	  done; \
	  awk -v s=$$s -v e=$$ir_es -v n=$$ir_naive -v b=$$bytes \
	    'BEGIN { printf "bench: name=callgrind_%s value=%.2f baseline=%.2f ratio=%.2f\n", \
	             s, e / b, n / b, e / n }'; \
	done

bench-node: $(O)/bench/bench_parser
	@sh mk/bench-node.sh $(O) $(BENCH_SHAPES)
