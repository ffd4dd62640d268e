# libeventsource - Makefile
#
#   make            the libraries, sse-cat and the examples, in $(O) (build/)
#   make test       installs missing dependencies, builds with AddressSanitizer
#                   and UndefinedBehaviorSanitizer, runs every Check suite
#   make demo       runs the demo server and sse-cat against it
#   make valgrind   runs every suite under valgrind (leaks are errors)
#   make bench      parser benchmarks (bench_parser, bench-callgrind, bench-node:
#                   mk/bench.mk);  make bench-streams  1000 streams;
#                   make bench-h2  1000 streams over HTTP/2 and HTTP/1.1
#                   through nghttpx (mk/bench_h2.mk)
#   make install / uninstall   PREFIX=/usr/local DESTDIR=
#   LOOP=epoll|poll  the built-in loop's backend (lib/loop_$(LOOP).c): epoll
#                   by default on Linux, poll() elsewhere. A LOOP other than
#                   the default builds under build/$(LOOP)/ (make test
#                   LOOP=poll: build/poll/asan), never mixed with the default.
#
# CFLAGS, CPPFLAGS and LDFLAGS are yours: the project's own flags are added to
# them, never replace them.

# The built-in loop's backend: exactly one of lib/loop_*.c is compiled.
LOOP_DEFAULT := $(if $(filter Linux,$(shell uname -s)),epoll,poll)
LOOP ?= $(LOOP_DEFAULT)
ifeq ($(filter $(LOOP),epoll poll),)
$(error LOOP=$(LOOP): the loop backends are epoll and poll)
endif
# Another backend than the default gets a build tree of its own unless O is
# given (sub-makes get O on their command line).
ifeq ($(origin O),undefined)
O := build$(if $(filter-out $(LOOP_DEFAULT),$(LOOP)),/$(LOOP))
endif
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
CMAKEDIR ?= $(LIBDIR)/cmake/eventsource
DESTDIR ?=

CC ?= cc
CFLAGS ?= -O2 -g
PKG_CONFIG ?= pkg-config

VERSION := $(shell sed -n 's/^\#define EVENTSOURCE_VERSION "\(.*\)"/\1/p' include/eventsource.h)
VERSION_MAJOR := $(shell sed -n 's/^\#define EVENTSOURCE_VERSION_MAJOR \([0-9]*\)/\1/p' include/eventsource.h)
VERSION_MINOR := $(shell sed -n 's/^\#define EVENTSOURCE_VERSION_MINOR \([0-9]*\)/\1/p' include/eventsource.h)
# The soname (docs/packaging.md): libeventsource.so.MAJOR, but while MAJOR is
# 0 a minor release may break the ABI, so it is libeventsource.so.0.MINOR.
SOVERSION := $(if $(filter 0,$(VERSION_MAJOR)),0.$(VERSION_MINOR),$(VERSION_MAJOR))

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wpointer-arith -Wwrite-strings -Wformat=2 -Wvla -Wundef -Wno-unused-parameter
ES_CFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -Ilib $(WARN) -pthread -MMD -MP
ifeq ($(SAN),1)
ES_CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
ES_LDFLAGS += -fsanitize=address,undefined
endif

CURL_CFLAGS := $(shell $(PKG_CONFIG) --cflags libcurl 2>/dev/null)
CURL_LIBS := $(shell $(PKG_CONFIG) --libs libcurl 2>/dev/null || echo -lcurl)
CHECK_CFLAGS := $(shell $(PKG_CONFIG) --cflags check 2>/dev/null)
CHECK_LIBS := $(shell $(PKG_CONFIG) --libs check 2>/dev/null || echo -lcheck -lsubunit -lm -lrt)

LIB_SRC := $(sort $(filter-out lib/loop_%.c,$(wildcard lib/*.c)) lib/loop_$(LOOP).c)
LIB_OBJ := $(patsubst %.c,$(O)/%.o,$(LIB_SRC))
SHARED := $(O)/libeventsource.so.$(VERSION)
SONAME := libeventsource.so.$(SOVERSION)
STATIC := $(O)/libeventsource.a
CMAKE_CONFIG := $(O)/cmake/eventsourceConfig.cmake $(O)/cmake/eventsourceConfigVersion.cmake

DEMO_SRC := $(sort $(wildcard demo/*.c))
DEMO_BIN := $(patsubst %.c,$(O)/%,$(DEMO_SRC))
BENCH_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_BIN := $(patsubst %.c,$(O)/%,$(BENCH_SRC))
# bench/*.c but bench_*.c: modules that benchmarks link, set per target with
# BENCH_LIBS (mass_server.c, the many-streams loopback server, see
# mk/adapters.mk). Nothing in bench/ includes or links test/ code but
# bench_h2 (nghttpx and certificates: mk/bench_h2.mk).
BENCH_MOD_SRC := $(filter-out $(BENCH_SRC),$(sort $(wildcard bench/*.c)))
BENCH_MOD_OBJ := $(patsubst %.c,$(O)/%.o,$(BENCH_MOD_SRC))
# test/support/*.c: helpers (loopback servers) linked into every suite.
SUPPORT_SRC := $(sort $(wildcard test/support/*.c))
SUPPORT_OBJ := $(patsubst %.c,$(O)/%.o,$(SUPPORT_SRC))
# What they link: OpenSSL (the TLS listener), zlib, brotli, zstd (ts_encode).
SUPPORT_LIBS := -lssl -lcrypto -lz -lbrotlienc -lzstd
TEST_SRC := $(sort $(wildcard test/test_*.c))
TEST_BIN := $(patsubst %.c,$(O)/%,$(TEST_SRC))

LIBS := $(CURL_LIBS) -pthread

.PHONY: all lib test asan valgrind demo bench bench-streams bench-h2 install uninstall \
        clean deps deps-test run-tests examples
all: lib $(DEMO_BIN)

lib: $(SHARED) $(STATIC) $(O)/eventsource.pc $(CMAKE_CONFIG)

$(O)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) $(CURL_CFLAGS) -fPIC -fvisibility=hidden $(CFLAGS) -c $< -o $@

# $(O)/loop.stamp names the backend: the libraries are linked again when
# LOOP changes within one O, so they never keep the other backend's object.
$(O)/loop.stamp: FORCE
	@mkdir -p $(@D)
	@echo $(LOOP) > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

$(SHARED): $(LIB_OBJ) $(O)/loop.stamp
	$(CC) -shared -Wl,-soname,$(SONAME) $(ES_LDFLAGS) $(LDFLAGS) -o $@ $(LIB_OBJ) $(LIBS)
	ln -sf libeventsource.so.$(VERSION) $(O)/$(SONAME)
	ln -sf libeventsource.so.$(VERSION) $(O)/libeventsource.so

$(STATIC): $(LIB_OBJ) $(O)/loop.stamp
	rm -f $@
	ar rcs $@ $(LIB_OBJ)

# The .pc file names PREFIX, so it is written again whenever it differs.
define PC_TEXT
prefix=$(PREFIX)
libdir=$(LIBDIR)
includedir=$(INCLUDEDIR)

Name: eventsource
Description: EventSource (Server-Sent Events) client library
Version: $(VERSION)
Requires.private: libcurl
Libs: -L$${libdir} -leventsource
Libs.private: -pthread
Cflags: -I$${includedir}
endef
export PC_TEXT
.PHONY: FORCE
$(O)/eventsource.pc: FORCE
	@mkdir -p $(@D)
	@printf '%s\n' "$$PC_TEXT" > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# The CMake package (find_package(eventsource)), from mk/*.cmake.in. The
# config finds the prefix from its own place, ES_CMAKE_UP directories up, so
# that a DESTDIR-staged or moved tree works; INCLUDEDIR and LIBDIR are given
# relative to PREFIX when they are under it. A directory that is not under
# PREFIX (or has . or .. in it) is written as it is, absolute.
es_tail = $(if $(filter $(PREFIX)/%,$(1)),$(patsubst $(PREFIX)/%,%,$(1)))
es_under = $(if $(filter . ..,$(subst /, ,$(call es_tail,$(1)))),,$(call es_tail,$(1)))
es_rel = $(or $(call es_under,$(1)),$(1))
ES_CMAKE_SED = -e 's|@VERSION@|$(VERSION)|g' -e 's|@VERSION_MAJOR@|$(VERSION_MAJOR)|g' \
  -e 's|@VERSION_MINOR@|$(VERSION_MINOR)|g' -e 's|@SONAME@|$(SONAME)|g' \
  -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@ES_CMAKE_INCLUDEDIR@|$(call es_rel,$(INCLUDEDIR))|g' \
  -e 's|@ES_CMAKE_LIBDIR@|$(call es_rel,$(LIBDIR))|g' \
  -e 's|@ES_CMAKE_UP@|$(if $(call es_under,$(CMAKEDIR)),$(words $(subst /, ,$(call es_under,$(CMAKEDIR)))))|g'
# Like the .pc file, written again whenever the text differs. The version
# file also records the pointer size the compiler builds for.
$(O)/cmake/%.cmake: mk/%.cmake.in FORCE
	@mkdir -p $(@D)
	@sed $(ES_CMAKE_SED) \
	  -e "s|@ES_SIZEOF_VOID_P@|$$(echo __SIZEOF_POINTER__ | $(CC) $(CPPFLAGS) $(CFLAGS) -E -P - 2>/dev/null | tr -cd 0-9)|g" \
	  $< > $@.tmp
	@if cmp -s $@.tmp $@; then rm -f $@.tmp; else mv $@.tmp $@; fi

# Programs link the static library so they run from the build tree.
$(O)/demo/%: demo/%.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) $(CURL_CFLAGS) $(CFLAGS) $(ES_LDFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(O)/bench/%: bench/%.c $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) $(CFLAGS) $(ES_LDFLAGS) $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS) $(BENCH_LIBS)

$(O)/bench/%.o: bench/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) $(CFLAGS) -c $< -o $@

$(O)/test/support/%.o: test/support/%.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) -Itest $(CHECK_CFLAGS) $(CFLAGS) -c $< -o $@

# TEST_LIBS: extra libraries a suite needs (set per target in mk/*.mk).
$(O)/test/test_%: test/test_%.c $(SUPPORT_OBJ) $(STATIC)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(ES_CFLAGS) -Itest $(CHECK_CFLAGS) $(TEST_CFLAGS) $(CFLAGS) $(ES_LDFLAGS) $(LDFLAGS) \
	  -o $@ $< $(SUPPORT_OBJ) $(STATIC) $(TEST_LIBS) $(SUPPORT_LIBS) $(CHECK_LIBS) $(LIBS)

# test_loop checks that the library holds the backend asked for.
$(O)/test/test_loop: TEST_CFLAGS += -DES_EXPECT_LOOP='"$(LOOP)"'

# ---- dependencies ---------------------------------------------------------
deps:
	@sh mk/deps.sh build
deps-test:
	@sh mk/deps.sh test

# Keep intermediate objects (test/support/*.o, bench/*.o) between runs.
.SECONDARY:

# Fragments owned by parts of the project (contract service, adapters, ...),
# included before the test rules so that they can add to TEST_DEPS.
-include $(sort $(wildcard mk/*.mk))

# ---- tests ----------------------------------------------------------------
# `make test` is the sanitizer build; `make asan` is the same thing.
test: deps-test
	@$(MAKE) --no-print-directory O=$(O)/asan SAN=1 ES_TEST_FULL=1 run-tests

asan: test

valgrind:
	@sh mk/deps.sh valgrind
	@$(MAKE) --no-print-directory O=$(O)/valgrind SAN=0 CFLAGS="-O1 -g" \
	  TEST_WRAP="valgrind -q --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 --trace-children=no" \
	  ES_TEST_SCALE=small CK_FORK=no run-tests

run-tests: all $(TEST_BIN) $(TEST_DEPS)
	@ES_BUILD_DIR=$(abspath $(O)) ES_SRC_DIR=$(CURDIR) TEST_WRAP="$(TEST_WRAP)" \
	  ES_TEST_FULL="$(ES_TEST_FULL)" \
	  sh mk/run-tests.sh $(TEST_BIN)

# ---- demo and benchmarks --------------------------------------------------
demo: deps
	@$(MAKE) --no-print-directory all
	@sh mk/demo.sh $(O)

# Every benchmark but bench-streams and bench-h2: bench_parser (its table, then the five
# shapes against the naive parser), bench-callgrind when valgrind is
# installed, bench-node when node and npm are (mk/bench.mk).
# bench_h2 is not even built: it needs the test dependencies (OpenSSL, nghttpx).
bench: deps $(filter-out %/bench_h2,$(BENCH_BIN))
	@for b in $(filter-out %/bench_h2,$(BENCH_BIN)); do case $$b in *bench_streams) ;; *) $$b || exit 1;; esac; done
	@if command -v valgrind >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory bench-callgrind; \
	else echo "bench-callgrind: valgrind not found, skipped"; fi
	@BENCH_NODE_OPTIONAL=1 $(MAKE) --no-print-directory bench-node

# ---- install --------------------------------------------------------------
install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 644 include/eventsource*.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/
	ln -sf libeventsource.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf libeventsource.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libeventsource.so
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(O)/eventsource.pc $(DESTDIR)$(PKGCONFIGDIR)/
	install -d $(DESTDIR)$(CMAKEDIR)
	install -m 644 $(CMAKE_CONFIG) $(DESTDIR)$(CMAKEDIR)/
	if [ -d man ]; then install -d $(DESTDIR)$(MANDIR)/man3 && install -m 644 man/*.3 $(DESTDIR)$(MANDIR)/man3/; fi

uninstall:
	rm -f $(DESTDIR)$(INCLUDEDIR)/eventsource*.h
	rm -f $(DESTDIR)$(LIBDIR)/libeventsource.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libeventsource.so $(DESTDIR)$(LIBDIR)/libeventsource.a \
	  $(DESTDIR)$(PKGCONFIGDIR)/eventsource.pc
	rm -f $(DESTDIR)$(CMAKEDIR)/eventsourceConfig.cmake \
	  $(DESTDIR)$(CMAKEDIR)/eventsourceConfigVersion.cmake
	rmdir $(DESTDIR)$(CMAKEDIR) 2>/dev/null || true
	if [ -d man ]; then for f in man/*.3; do rm -f $(DESTDIR)$(MANDIR)/man3/$$(basename $$f); done; fi

clean:
	rm -rf $(O) test/contract/sse-test-service

-include $(LIB_OBJ:.o=.d) $(SUPPORT_OBJ:.o=.d) $(BENCH_MOD_OBJ:.o=.d) $(TEST_BIN:=.d) $(DEMO_BIN:=.d) $(BENCH_BIN:=.d)
