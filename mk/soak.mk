# mk/soak.mk - the resume soak (test/test_soak.c), included by the top
# Makefile.
#
#   make soak    installs the test dependencies if missing, builds the suite
#                with ASan+UBSan in $(O)/asan and runs it with
#                ES_SOAK_RECONNECTS=$(SOAK_RECONNECTS) (1000: about 2
#                minutes, the library waits EVENTSOURCE_MIN_RECONNECT_MS
#                before each reconnection; Check's timeout follows the target)
#   make soak SOAK_RECONNECTS=5000 ES_SOAK_SEED=42     another run
#
# `make test` runs the same suite with 100 reconnections, `make valgrind`
# with 20. A failure prints the seed: ES_SOAK_SEED=N replays it.

SOAK_RECONNECTS ?= 1000

.PHONY: soak soak-run

soak: deps-test
	@$(MAKE) --no-print-directory O=$(O)/asan SAN=1 soak-run

soak-run: $(O)/test/test_soak
	@ES_SOAK_RECONNECTS=$(SOAK_RECONNECTS) SUITE_TIMEOUT=$$((120 + $(SOAK_RECONNECTS))) TEST_WRAP= \
	  sh mk/run-tests.sh $(O)/test/test_soak
