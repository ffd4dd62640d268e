#!/bin/sh
# mk/demo.sh O - what `make demo` runs once everything is built in O.
#
# Starts O/demo/sse-demo-server on a free loopback port and lets
# O/demo/sse-cat print 12 events of its /events ticker. The server drops the
# stream every 5 events, so the output shows sse-cat reconnecting with
# Last-Event-ID and the ids going on with no gap and no duplicate. Offline;
# bounded to well under 20 seconds; leaves no process and no file behind.
set -u

O=${1:-build}
server=$O/demo/sse-demo-server
client=$O/demo/sse-cat
for prog in "$server" "$client"; do
  if [ ! -x "$prog" ]; then
    echo "mk/demo.sh: $prog is missing; run 'make O=$O' first" >&2
    exit 1
  fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/eventsource-demo.XXXXXX") || exit 1
server_pid=""
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --duration bounds the server even if this script is killed with SIGKILL.
"$server" --port 0 --port-file "$tmp/port" --duration 18 --drop-after 5 &
server_pid=$!

# The server writes the port file (atomically) once it listens: wait for it,
# at most 5 seconds.
tries=0
while [ ! -s "$tmp/port" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "mk/demo.sh: the demo server did not start" >&2
    server_pid=""
    exit 1
  fi
  tries=$((tries + 1))
  if [ "$tries" -gt 100 ]; then
    echo "mk/demo.sh: the demo server did not write its port file in 5 s" >&2
    exit 1
  fi
  sleep 0.05
done
port=$(cat "$tmp/port")
url="http://127.0.0.1:$port/events"

cat <<EOF

== libeventsource demo ==========================================================
Server: $server, its log lines start with "sse-demo-server:".
Client: $client -v --max-events 12 $url
        (-v: connection notices on stderr, they start with "sse-cat:")
The server drops the connection every 5 events. Watch sse-cat reconnect with
Last-Event-ID and the server resume after it: ids 1 to 12, no gap, no duplicate.
================================================================================

EOF

# timeout(1) keeps the demo bounded should the client hang; --foreground
# keeps sse-cat in our process group, so that Ctrl-C reaches it.
if command -v timeout >/dev/null 2>&1; then
  timeout --foreground 15 "$client" -v --max-events 12 "$url"
else
  "$client" -v --max-events 12 "$url"
fi
status=$?

kill "$server_pid" 2>/dev/null
wait "$server_pid" 2>/dev/null
server_pid=""
echo
if [ "$status" -eq 0 ]; then
  echo "== demo finished: 12 events received across 3 connections =="
  echo "Next, the examples (demo/example-*.c, built in $O/demo/):"
  echo "  $server --port 8080 --duration 0 &   # stop it with: kill %1"
  echo "  $O/demo/example-types http://127.0.0.1:8080/events"
  echo "  $O/demo/example-llm http://127.0.0.1:8080/llm"
elif [ "$status" -eq 130 ] || [ "$status" -eq 143 ]; then
  echo "== demo interrupted ==" >&2
else
  echo "== demo failed: sse-cat exited with status $status ==" >&2
fi
exit "$status"
