#!/usr/bin/env bash
# Red team, theme prime-verify: two databases that differ must never
# compare equal, whatever the values hold (commas, quotes, parentheses,
# newlines, NULL against the empty string, a whole row in one column), and
# two that hold the same values must compare equal whatever their
# session settings. One PostgreSQL, databases made here.
set -uo pipefail
. "$(dirname "$0")/../support/testlib.sh"
export PGDATABASE=${PGDATABASE:-postgres}
db() { printf '%s dbname=%s' "$PRIME_TEST_DB" "$1"; }
pair() { # NAME SQL_A SQL_B: two fresh databases, a table each
  psql -qX -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS va" -c "DROP DATABASE IF EXISTS vb" -c "CREATE DATABASE va" -c "CREATE DATABASE vb" >/dev/null || exit 1
  "$PRIME_MIGRATE" --db "$(db va)" >/dev/null && "$PRIME_MIGRATE" --db "$(db vb)" >/dev/null || { bad "$1: migrate"; return 1; }
  psql -qX -d va -v ON_ERROR_STOP=1 -c "$2" >/dev/null || { bad "$1: setup A"; return 1; }
  psql -qX -d vb -v ON_ERROR_STOP=1 -c "$3" >/dev/null || { bad "$1: setup B"; return 1; }
}
tried=0 missed=0
differ() { # NAME SQL_A SQL_B
  tried=$((tried + 1))
  pair "$@" || return
  out=$("$PRIME_VERIFY" "$(db va)" "$(db vb)" 2>&1); rc=$?
  [ "$rc" = 0 ] && missed=$((missed + 1))
  [ "$rc" = 1 ] && ok "$1: different (exit 1)" || bad "$1: exit $rc, expected 1: $(head -c 300 <<<"$out")"
}
same() { # NAME SQL_A SQL_B
  tried=$((tried + 1))
  pair "$@" || return
  out=$("$PRIME_VERIFY" "$(db va)" "$(db vb)" 2>&1); rc=$?
  [ "$rc" = 0 ] && ok "$1: equal (exit 0)" || bad "$1: exit $rc, expected 0: $(head -c 300 <<<"$out")"
}
two="CREATE TABLE t (id int PRIMARY KEY, a text, b text)"
one="CREATE TABLE t (id int PRIMARY KEY, a text, b text)"
differ "NULL against the empty string" "$two; INSERT INTO t VALUES (1, NULL, 'x')" "$one; INSERT INTO t VALUES (1, '', 'x')"
differ "a comma moved between columns" "$two; INSERT INTO t VALUES (1, 'a,b', 'c')" "$one; INSERT INTO t VALUES (1, 'a', 'b,c')"
differ "a quoted row inside one column" "$two; INSERT INTO t VALUES (1, 'a\",\"b', NULL)" "$one; INSERT INTO t VALUES (1, 'a', 'b')"
differ "the string NULL against NULL" "$two; INSERT INTO t VALUES (1, 'NULL', 'x')" "$one; INSERT INTO t VALUES (1, NULL, 'x')"
differ "a newline against a space" "$two; INSERT INTO t VALUES (1, E'a\\nb', 'x')" "$one; INSERT INTO t VALUES (1, 'a b', 'x')"
differ "rows swapped between keys" "$two; INSERT INTO t VALUES (1, 'p', 'x'), (2, 'q', 'x')" "$one; INSERT INTO t VALUES (1, 'q', 'x'), (2, 'p', 'x')"
differ "a row twice against two rows (no key)" "CREATE TABLE t (a text); INSERT INTO t VALUES ('p'), ('p')" "CREATE TABLE t (a text); INSERT INTO t VALUES ('p'), ('q')"
differ "a huge value, one byte changed" "$two; INSERT INTO t VALUES (1, repeat('z', 5000000) || 'a', 'x')" "$one; INSERT INTO t VALUES (1, repeat('z', 5000000) || 'b', 'x')"
differ "jsonb null against SQL NULL" "CREATE TABLE t (id int PRIMARY KEY, j jsonb); INSERT INTO t VALUES (1, 'null')" "CREATE TABLE t (id int PRIMARY KEY, j jsonb); INSERT INTO t VALUES (1, NULL)"
differ "float 0.1 against 0.1 + 1 ulp" "CREATE TABLE t (id int PRIMARY KEY, f float8); INSERT INTO t VALUES (1, 0.1)" "CREATE TABLE t (id int PRIMARY KEY, f float8); INSERT INTO t VALUES (1, 0.10000000000000002)"
differ "text '1' against int 1 (same text form)" "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, '1')" "CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t VALUES (1, 1)"
differ "array {a,b} against array {\"a,b\"}" "CREATE TABLE t (id int PRIMARY KEY, v text[]); INSERT INTO t VALUES (1, '{a,b}')" "CREATE TABLE t (id int PRIMARY KEY, v text[]); INSERT INTO t VALUES (1, '{\"a,b\"}')"
differ "an instant one hour apart" "CREATE TABLE t (id int PRIMARY KEY, ts timestamptz); INSERT INTO t VALUES (1, '2026-01-01 10:00+00')" "CREATE TABLE t (id int PRIMARY KEY, ts timestamptz); INSERT INTO t VALUES (1, '2026-01-01 09:00+00')"
# The same instant, the databases' TimeZone settings apart.
same "the same instant under two TimeZone settings" \
  "ALTER DATABASE va SET timezone = 'UTC'; SET timezone = 'UTC'; CREATE TABLE t (id int PRIMARY KEY, ts timestamptz); INSERT INTO t VALUES (1, '2026-01-01 10:00+00')" \
  "ALTER DATABASE vb SET timezone = 'Asia/Tokyo'; SET timezone = 'Asia/Tokyo'; CREATE TABLE t (id int PRIMARY KEY, ts timestamptz); INSERT INTO t VALUES (1, '2026-01-01 10:00+00')"
same "identical hostile values" "$two; INSERT INTO t VALUES (1, E'(\\\")\\n,\\\\', '')" "$one; INSERT INTO t VALUES (1, E'(\\\")\\n,\\\\', '')"
# Figures: the pairs of databases; lost: differences prime-verify missed.
attack_summary verify_hostile "$tried" "$missed" -
finish
