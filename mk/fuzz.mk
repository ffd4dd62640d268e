# mk/fuzz.mk - the parser fuzzer (fuzz/fuzz_parser.c, fuzz/README.md).
# Not part of `make test`.
#
#   make fuzz [FUZZ_SECONDS=60] [FUZZ_JOBS=1] [FUZZ_ARGS=...]
#       builds $(O)/fuzz/fuzz_parser with clang (libFuzzer, ASan, UBSan),
#       turns test/vectors/*.vec into seeds in $(O)/fuzz/seeds, and fuzzes
#       for FUZZ_SECONDS on FUZZ_JOBS cores. New inputs accumulate in
#       $(O)/fuzz/corpus; a crash or mismatch is written to
#       $(O)/fuzz/crash-* (rerun: $(O)/fuzz/fuzz_parser FILE) and fails the
#       target (with FUZZ_JOBS > 1 the workers' output is in
#       $(O)/fuzz/fuzz-N.log). Needs clang and libclang-rt-14-dev (or the matching
#       compiler-rt) on Debian 12.
#   make fuzz O=build/fuzz-scalar FUZZ_CPPFLAGS=-DES_SCAN_SCALAR
#       the same with the parser's portable scan instead of the SSE2/NEON one
#       (both are checked against the same reference model).

FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_JOBS ?= 1
FUZZ_ARGS ?=
FUZZ_CPPFLAGS ?=
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Ilib -Itest $(WARN) -g -O1 \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
# The reference model is test/support/ts_refmodel.c, shared with test_parser.
FUZZ_SRC := fuzz/fuzz_parser.c test/support/ts_refmodel.c lib/parser.c lib/parser_id.c \
  lib/buf.c lib/utf8.c lib/alloc.c
FUZZ_VECTORS := $(sort $(wildcard test/vectors/*.vec))

.PHONY: fuzz fuzz-build

fuzz-build: $(O)/fuzz/fuzz_parser

$(O)/fuzz/fuzz_parser: $(FUZZ_SRC) lib/parser.h lib/parser_int.h lib/parser_fast.h lib/scan.h lib/utf8.h lib/buf.h \
                       lib/alloc.h include/eventsource.h \
                       test/support/ts_refmodel.h
	@mkdir -p $(@D)
	@command -v $(FUZZ_CC) >/dev/null 2>&1 || { \
	  echo "make fuzz: $(FUZZ_CC) not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
	$(FUZZ_CC) $(FUZZ_CPPFLAGS) $(FUZZ_CFLAGS) $(FUZZ_SRC) -o $@

$(O)/fuzz/vec2seed: fuzz/vec2seed.c test/support/ts_refmodel.c test/support/ts_refmodel.h
	@mkdir -p $(@D)
	$(CC) -std=c11 -D_GNU_SOURCE -Itest $(WARN) -O1 -g -o $@ fuzz/vec2seed.c test/support/ts_refmodel.c

# Two seeds per vector: fed byte by byte (h[2] = 1) and in random chunks of
# 1..4 bytes (h[2] = 15).
$(O)/fuzz/seeds.stamp: $(O)/fuzz/vec2seed $(FUZZ_VECTORS)
	@rm -rf $(O)/fuzz/seeds && mkdir -p $(O)/fuzz/seeds
	@for v in $(FUZZ_VECTORS); do b=$$(basename $$v .vec); \
	  $(O)/fuzz/vec2seed $$v $(O)/fuzz/seeds/$$b-bytes 1 && \
	  $(O)/fuzz/vec2seed $$v $(O)/fuzz/seeds/$$b-rand 15 || exit 1; done
	@touch $@

# Runs in $(O)/fuzz, where libFuzzer writes fuzz-N.log with FUZZ_JOBS > 1.
FUZZ_DIR = $(abspath $(O))/fuzz
fuzz: $(O)/fuzz/fuzz_parser $(O)/fuzz/seeds.stamp
	@mkdir -p $(O)/fuzz/corpus
	cd $(FUZZ_DIR) && ./fuzz_parser -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	  $(if $(filter-out 1,$(FUZZ_JOBS)),-jobs=$(FUZZ_JOBS) -workers=$(FUZZ_JOBS)) \
	  -dict=$(CURDIR)/fuzz/sse.dict -artifact_prefix=$(FUZZ_DIR)/ -print_final_stats=1 \
	  $(FUZZ_ARGS) corpus seeds
