# mk/contract.mk - the sse-contract-tests service (test/contract/), included
# by the top Makefile.
#
#   make contract-service   installs the test dependencies if missing, builds
#                           $(O)/test/contract/sse-test-service and copies it
#                           to test/contract/sse-test-service
#   make contract-test      builds it, runs it on port $(CONTRACT_PORT) and runs
#                           LaunchDarkly's sse-contract-tests against it
#                           ($(CONTRACT_TESTS); skipped when absent). Extra
#                           suite flags: CONTRACT_TEST_FLAGS="-debug -run ...";
#                           service flags: CONTRACT_SERVICE_FLAGS="--driver start -v"
#
# The service links the static library with libmicrohttpd, cJSON and libcurl;
# none of them is linked into the library. test/test_contract.c runs
# $ES_BUILD_DIR/test/contract/sse-test-service, built here with the same $(O)
# and flags as the suite (so `make test` gets an ASan/UBSan service).

CONTRACT_SRC := $(sort $(wildcard test/contract/*.c))
CONTRACT_OBJ := $(patsubst %.c,$(O)/%.o,$(CONTRACT_SRC))
CONTRACT_BIN := $(O)/test/contract/sse-test-service
CONTRACT_LIBS := -lmicrohttpd -lcjson
CONTRACT_TESTS ?= $(CURDIR)/../shared/tools/sse-contract-tests
CONTRACT_PORT ?= 8000
CONTRACT_TEST_FLAGS ?=
CONTRACT_SERVICE_FLAGS ?=

.PHONY: contract-service contract-test

$(O)/test/contract/%.o: test/contract/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) $(CURL_CFLAGS) $(CFLAGS) -c $< -o $@

$(CONTRACT_BIN): $(CONTRACT_OBJ) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(ES_LDFLAGS) $(LDFLAGS) -o $@ $(CONTRACT_OBJ) $(STATIC) $(CONTRACT_LIBS) $(LIBS)

# The Check suite needs the service. run-tests' prerequisites were expanded
# before this file was read, so TEST_DEPS alone would not reach it: name the
# binary as a prerequisite of run-tests here as well.
TEST_DEPS += $(CONTRACT_BIN)
run-tests: $(CONTRACT_BIN)
$(O)/test/test_contract: TEST_LIBS = -lcjson

contract-service:
	@sh mk/deps.sh test
	@$(MAKE) --no-print-directory $(CONTRACT_BIN)
	cp $(CONTRACT_BIN) test/contract/sse-test-service

# Starts the service, runs the suite (which stops the service at the end),
# then prints the suite's verdict with the number of failed and skipped
# tests. The full output is kept in $(O)/contract-test.log.
contract-test: contract-service
	@if [ ! -x "$(CONTRACT_TESTS)" ]; then \
	  echo "contract-test: SKIPPED: $(CONTRACT_TESTS) not found (see test/contract/README.md)"; \
	  exit 0; \
	fi; \
	log=$(O)/contract-test.log; \
	test/contract/sse-test-service --port $(CONTRACT_PORT) $(CONTRACT_SERVICE_FLAGS) & pid=$$!; \
	"$(CONTRACT_TESTS)" -url http://localhost:$(CONTRACT_PORT) -stop-service-at-end \
	  $(CONTRACT_TEST_FLAGS) >$$log 2>&1; rc=$$?; \
	cat $$log; \
	i=0; while kill -0 $$pid 2>/dev/null && [ $$i -lt 50 ]; do sleep 0.1; i=$$((i + 1)); done; \
	if kill -0 $$pid 2>/dev/null; then \
	  echo "contract-test: the service did not exit within 5 s of the run; stopping it"; \
	  kill $$pid; \
	fi; \
	wait $$pid; src=$$?; \
	failed=$$(grep -c '^ *FAILED: ' $$log); skipped=$$(grep -c '^ *SKIPPED: ' $$log); \
	echo "contract-test: suite exit $$rc, $$failed failed, $$skipped skipped, service exit $$src (log: $$log)"; \
	[ $$rc -eq 0 ] && [ $$src -eq 0 ]

-include $(CONTRACT_OBJ:.o=.d)
