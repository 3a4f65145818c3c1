#!/usr/bin/env bash
# The command-line programs as a user meets them: exit statuses, messages
# that say what is wrong, kcat (an independent Kafka client) against the dev
# broker, and the dev stack scripts. Needs PRIME_CODEC, PRIME_MIGRATE,
# PRIME_DEVBROKER and a broker (PRIME_TEST_BROKERS) from tests/with-stack.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"

# expect NAME STATUS PATTERN CMD...: CMD exits STATUS and its stderr+stdout matches PATTERN.
expect() {
  local name=$1 status=$2 pattern=$3 out rc
  shift 3
  out=$("$@" 2>&1); rc=$?
  if [ "$rc" = "$status" ] && grep -qE -- "$pattern" <<<"$out"; then ok "$name"; else bad "$name (exit $rc: $out)"; fi
}

codec=$PRIME_CODEC migrate=$PRIME_MIGRATE devbroker=$PRIME_DEVBROKER

expect "codec: no arguments is a usage error" 2 "usage: prime-codec" "$codec"
expect "codec: unknown command" 2 "usage" "$codec" frobnicate
expect "codec: unknown type named" 2 "unknown event type 'nope'" "$codec" example nope
expect "codec: list shows every type with topic" 0 "project.saved +prime.projects" "$codec" list
[ "$("$codec" list | wc -l)" -ge 41 ] && ok "codec: at least 41 event types" || bad "codec: type count"

"$codec" doc | diff -u "$root/docs/events.md" - >"$tmp/doc.diff" && ok "docs/events.md matches the schemas" \
  || bad "docs/events.md is stale: run prime-codec doc > docs/events.md ($(head -5 "$tmp/doc.diff"))"

"$codec" example project.saved >"$tmp/ev.json"
expect "codec: encode a valid event" 0 "" "$codec" encode "$tmp/ev.json"
"$codec" encode "$tmp/ev.json" >"$tmp/ev.bin"
[ "$(head -c 2 "$tmp/ev.bin" | od -An -tx1 | tr -d ' ')" = c301 ] && ok "codec: single-object marker" || bad "codec: marker"
"$codec" decode "$tmp/ev.bin" >"$tmp/back.json" && cmp -s "$tmp/ev.json" "$tmp/back.json" \
  && ok "codec: decode gives the JSON back" || bad "codec: decode round trip"
head -c 7 "$tmp/ev.bin" >"$tmp/short.bin"
expect "codec: truncated message" 1 "truncated message: 7 bytes" "$codec" decode "$tmp/short.bin"
echo '{"type":"project.saved","bpm":1}' >"$tmp/badfield.json"
expect "codec: unknown field named" 1 "bpm: unknown field for project.saved" "$codec" encode "$tmp/badfield.json"
sed 's/"base_version":[0-9]*/"base_version":0/' "$tmp/ev.json" >"$tmp/badvalue.json"
expect "codec: out-of-range value named" 1 "base_version: expected a value >= 1" "$codec" encode "$tmp/badvalue.json"
expect "codec: missing file" 1 "no/such/file" "$codec" decode no/such/file

expect "migrate: bad argument" 2 "unknown argument '--frob'" "$migrate" --frob
expect "migrate: unreachable database is a clear error" 1 "cannot connect to PostgreSQL" \
  "$migrate" --db "host=127.0.0.1 port=1 connect_timeout=2"

expect "devbroker: bad port" 2 "--port: expected an integer from 0 to 65535, got 'x'" "$devbroker" --port x
expect "devbroker: unknown option" 2 "unknown or incomplete argument" "$devbroker" --frob

# A fixed port that is taken is an error, not a broker on some other port.
taken=${PRIME_TEST_BROKERS##*:}
expect "devbroker: port in use" 1 "port $taken on 127.0.0.1 is in use" "$devbroker" --port "$taken"

# kcat: metadata, then our bytes out and back through the broker.
if kcat -b "$PRIME_TEST_BROKERS" -L 2>/dev/null | grep -q 'topic "prime.dlq"'; then ok "kcat: sees the prime topics"; else bad "kcat: metadata"; fi
owner=$(grep -o '"owner_user_id":"[^"]*"' "$tmp/ev.json" | cut -d'"' -f4)
kcat -b "$PRIME_TEST_BROKERS" -P -t prime.projects -k "$owner" "$tmp/ev.bin" 2>"$tmp/kcat.err" \
  && ok "kcat: produces our message" || bad "kcat: produce ($(cat "$tmp/kcat.err"))"
kcat -b "$PRIME_TEST_BROKERS" -C -t prime.projects -o beginning -c 1 -e -q -D '' -f '%s' >"$tmp/kcat.bin" 2>"$tmp/kcat.err"
if cmp -s "$tmp/ev.bin" "$tmp/kcat.bin"; then ok "kcat: consumes the same bytes"; else bad "kcat: consume ($(cat "$tmp/kcat.err"))"; fi
"$codec" decode "$tmp/kcat.bin" | cmp -s - "$tmp/ev.json" && ok "kcat: consumed bytes decode" || bad "kcat: decode"
key=$(kcat -b "$PRIME_TEST_BROKERS" -C -t prime.projects -o beginning -c 1 -e -q -f '%k')
[ "$key" = "$owner" ] && ok "kcat: key is the owner" || bad "kcat: key '$key'"

# The dev stack: up twice (the second keeps what runs), then down leaves
# no process behind.
export PRIME_STATE=$tmp/state PRIME_BUILD=${PRIME_BUILD:?}
if "$root/scripts/dev-up" >"$tmp/up1.log" 2>&1; then ok "dev-up: starts"; else bad "dev-up: $(cat "$tmp/up1.log")"; fi
. "$PRIME_STATE/env"
pid1=$(cat "$PRIME_STATE/devbroker.pid")
"$root/scripts/dev-up" >"$tmp/up2.log" 2>&1 && grep -q "up to date" "$tmp/up2.log" && \
  [ "$(cat "$PRIME_STATE/devbroker.pid")" = "$pid1" ] && ok "dev-up: second run keeps the stack" || bad "dev-up twice: $(cat "$tmp/up2.log")"
n=$(psql -qAtc "SELECT count(*) FROM information_schema.tables WHERE table_schema IN ('public','prime_pipeline')" 2>&1)
[ "$n" = 19 ] && ok "dev-up: migrations applied (10 seed + 9 pipeline tables)" || bad "dev-up: tables: $n"
kcat -b "$PRIME_BROKERS" -L 2>/dev/null | grep -q 'topic "prime.users"' && ok "dev-up: broker answers" || bad "dev-up: broker"
data=$PRIME_PG_DATA
"$root/scripts/dev-down" >"$tmp/down.log" 2>&1 && ok "dev-down: stops" || bad "dev-down: $(cat "$tmp/down.log")"
if kill -0 "$pid1" 2>/dev/null || pgrep -f -- "-D $data" >/dev/null; then bad "dev-down: a process is left"; else ok "dev-down: no process left"; fi
[ ! -e "$PRIME_STATE" ] && ok "dev-down: state removed" || bad "dev-down: state left"
"$root/scripts/dev-down" >/dev/null 2>&1 && ok "dev-down: safe when nothing is up" || bad "dev-down twice"

finish
