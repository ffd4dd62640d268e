#!/bin/sh
# mk/run-tests.sh TEST... - runs each Check suite (under $TEST_WRAP when set),
# shows its output, and ends with one line: "N passed, N failed".
set -u
passed=0; failed=0; broken=""
for t in "$@"; do
  name=$(basename "$t")
  echo "== $name"
  out=$(mktemp)
  # shellcheck disable=SC2086
  # A bound on the whole suite as well: under valgrind (CK_FORK=no) Check's
  # own per-test timeouts do not apply.
  timeout "${SUITE_TIMEOUT:-900}" $TEST_WRAP "$t" >"$out" 2>&1
  rc=$?
  cat "$out"
  # Check's summary: "100%: Checks: 12, Failures: 0, Errors: 0"
  line=$(grep -E '^[0-9]+%: Checks: [0-9]+' "$out" | tail -n 1)
  rm -f "$out"
  if [ -z "$line" ]; then
    echo "$name: no Check summary (exit $rc)"
    failed=$((failed + 1)); broken="$broken $name"; continue
  fi
  checks=$(echo "$line" | sed -E 's/.*Checks: ([0-9]+).*/\1/')
  fails=$(echo "$line" | sed -E 's/.*Failures: ([0-9]+).*/\1/')
  errs=$(echo "$line" | sed -E 's/.*Errors: ([0-9]+).*/\1/')
  bad=$((fails + errs))
  passed=$((passed + checks - bad)); failed=$((failed + bad))
  if [ "$rc" -ne 0 ] && [ "$bad" -eq 0 ]; then
    echo "$name: exit status $rc"; failed=$((failed + 1))
  fi
  [ "$rc" -ne 0 ] && broken="$broken $name"
done
[ -n "$broken" ] && echo "failing suites:$broken"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
