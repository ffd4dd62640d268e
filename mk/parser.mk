# mk/parser.mk - targets of the parser (lib/parser.c, bench/bench_parser.c).
#
#   make bench-parser-callgrind [PARSER_CG_SIZE=8M] [PARSER_CG_WORKLOADS="small bigline"]
#       runs each parser workload once under callgrind, counting only the
#       parser's work (--toggle-collect=feed_all), and prints instructions per
#       input byte: a figure that, unlike MB/s, does not depend on the load of
#       the machine. Needs valgrind; use a build without SAN=1.

PARSER_CG_SIZE ?= 8M
PARSER_CG_WORKLOADS ?= small small-1k bigline bigline-warm utf8 crlf

.PHONY: bench-parser-callgrind
bench-parser-callgrind: $(O)/bench/bench_parser
	@for w in $(PARSER_CG_WORKLOADS); do \
	  out=$(O)/bench/callgrind.parser.$$w; \
	  bytes=$$(valgrind --tool=callgrind --callgrind-out-file=$$out \
	    --toggle-collect=feed_all $(O)/bench/bench_parser $$w $(PARSER_CG_SIZE) --once \
	    2>/dev/null | awk '{print $$2}'); \
	  ir=$$(callgrind_annotate $$out 2>/dev/null | \
	    awk '/PROGRAM TOTALS/ {gsub(",", "", $$1); print $$1}'); \
	  [ -n "$$bytes" ] && [ -n "$$ir" ] || { echo "$$w: callgrind failed" >&2; exit 1; }; \
	  awk -v w=$$w -v ir=$$ir -v b=$$bytes \
	    'BEGIN { printf "%-12s %11d bytes %13d Ir %6.2f Ir/byte\n", w, b, ir, ir / b }'; \
	done

#   make test-scalar
#       the parser's suites (test_parser with every vector whole, byte by
#       byte and split at every offset; test_scan; test_machine) built with
#       the portable scan (-DES_SCAN_SCALAR) instead of SSE2/NEON, under
#       ASan and UBSan, in $(O)/scalar. CI runs it after `make test`.
SCALAR_SUITES := test_parser test_scan test_machine
.PHONY: test-scalar
test-scalar: deps-test
	@$(MAKE) --no-print-directory O=$(O)/scalar SAN=1 CPPFLAGS="$(CPPFLAGS) -DES_SCAN_SCALAR" \
	  TEST_BIN="$(addprefix $(O)/scalar/test/,$(SCALAR_SUITES))" run-tests
