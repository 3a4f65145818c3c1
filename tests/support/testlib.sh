# Sourced by the shell tests: results counted, and the closing line ctest's
# output and CI read ("N passed, N failed").
# shellcheck shell=bash
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; }
finish() { echo "$passed passed, $failed failed"; [ "$failed" = 0 ]; }
