#!/bin/sh
# mk/deps.sh build|test|valgrind - installs the Debian packages the build (or the
# tests) need when they are missing: with apt-get when run as root, otherwise
# it prints the exact command to run and fails.
set -u
want="libcurl4-openssl-dev pkg-config"
if [ "${1:-build}" = test ] || [ "${1:-build}" = valgrind ]; then
  # check: the test framework; the rest: the contract-test service
  # (libmicrohttpd, cJSON), the event-loop adapters' tests (libuv, libevent)
  # and the test server's TLS listener and compressed bodies (OpenSSL, zlib,
  # brotli, zstd), cmake, with which test_install builds a program
  # against the installed CMake package, and nghttp2-proxy (nghttpx), the
  # real HTTP/2 server (TLS h2 and h2c) that test_http2_nghttpx puts in
  # front of the loopback server. None of them is linked into the library.
  want="$want check libmicrohttpd-dev libcjson-dev libuv1-dev libevent-dev libssl-dev zlib1g-dev libbrotli-dev libzstd-dev cmake nghttp2-proxy"
fi
[ "${1:-build}" = valgrind ] && want="$want valgrind"
missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
  echo "Installing missing packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends $missing </dev/null >/dev/null 2>&1; then
    apt-get update -q </dev/null >/dev/null 2>&1 || true
    apt-get install -y --no-install-recommends $missing </dev/null || {
      echo "mk/deps.sh: could not install:$missing" >&2; exit 1; }
  fi
else
  echo "Missing packages:$missing" >&2
  echo "Run:  sudo apt-get update && sudo $cmd" >&2
  exit 1
fi
