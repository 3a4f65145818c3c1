#!/usr/bin/env bash
# prime-publish as a user meets it, against the dev broker (tests/with-stack
# --broker): every bad input gets its own error and is not sent, good lines
# are, --dry-run sends nothing, and a dead broker ends in a clear failure.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
publish=$PRIME_PUBLISH codec=$PRIME_CODEC brokers=$PRIME_TEST_BROKERS
unset PRIME_BROKERS

count() { # messages in TOPIC now
  kcat -b "$brokers" -C -t "$1" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l
}

expect_line() { # NAME PATTERN FILE
  if grep -qE -- "$2" "$3"; then ok "$1"; else bad "$1: $(cat "$3")"; fi
}

# Usage
"$publish" >/dev/null 2>"$tmp/e" </dev/null; [ $? = 2 ] && grep -q "no brokers" "$tmp/e" && ok "no brokers is a usage error" || bad "no brokers"
"$publish" -b x --frob 2>"$tmp/e"; [ $? = 2 ] && ok "unknown option" || bad "unknown option"
"$publish" -b x -X nonsense </dev/null 2>"$tmp/e"; [ $? = 2 ] && grep -q "key=value" "$tmp/e" && ok "-X needs key=value" || bad "-X"
"$publish" -b x -X no.such=1 </dev/null 2>"$tmp/e"; [ $? = 2 ] && grep -q "no.such" "$tmp/e" && ok "unknown property named" || bad "property: $(cat "$tmp/e")"
[ "$("$publish" --list-types | wc -l)" -ge 41 ] && ok "--list-types" || bad "--list-types"
"$publish" --example project.saved | "$publish" --dry-run >"$tmp/dry" 2>"$tmp/e" && grep -q "project.saved -> prime.projects key=" "$tmp/dry" \
  && ok "--example output is valid input; --dry-run shows it" || bad "--example/--dry-run: $(cat "$tmp/e")"
"$publish" --example nope >/dev/null 2>"$tmp/e"; [ $? = 2 ] && ok "--example of an unknown type" || bad "--example nope"

# Every kind of bad line, then one good line: each error names line and field.
good=$("$codec" example project.saved)
big_doc=$(head -c 3000 /dev/zero | tr '\0' 'a')
{
  echo '{"type":"project.saved"'                                                           # 1 invalid JSON
  echo '{"type":"project.exploded"}'                                                       # 2 unknown type
  sed 's/"project_id":"[^"]*",//' <<<"$good"                                               # 3 missing field
  sed 's/"base_version":[0-9]*/"base_version":"two"/' <<<"$good"                           # 4 wrong type
  "$codec" example project.created | sed 's/"bpm":[0-9.]*/"bpm":9000/'                     # 5 out of range
  "$codec" example auth.credential_created | sed 's/"salt":"[^"]*"/"password":"hunter2"/' # 6 plaintext secret
  "$codec" example auth.credential_created | sed 's/"password_hash":"[^"]*"/"password_hash":"hunter2"/' # 7 plaintext in a hash field
  sed "s/\"project_data\":{/\"project_data\":{\"pad\":\"$big_doc\",/" <<<"$good"          # 8 oversized document
  echo ''                                                                                  # blank: ignored
  echo "$good"                                                                             # 10 good
} >"$tmp/mixed.jsonl"
before=$(count prime.projects)
"$publish" -b "$brokers" -X prime.max.json.bytes=2048 --rejects "$tmp/rejects.jsonl" "$tmp/mixed.jsonl" 2>"$tmp/e"
rc=$?
[ $rc = 1 ] && ok "rejected lines make the exit status 1" || bad "exit status $rc"
f=$tmp/mixed.jsonl
expect_line "invalid JSON: line and column" "^$f:1: invalid JSON at column" "$tmp/e"
expect_line "unknown type named" "^$f:2: type: unknown event type 'project.exploded'" "$tmp/e"
expect_line "missing field named" "^$f:3: project_id: required field is missing" "$tmp/e"
expect_line "wrong type named" "^$f:4: base_version: expected an integer, got a string" "$tmp/e"
expect_line "out of range named" "^$f:5: bpm: expected a BPM from 20 to 999, got 9000" "$tmp/e"
expect_line "plaintext secret field refused" "^$f:6: password: plaintext secrets are refused" "$tmp/e"
expect_line "plaintext in a hash field refused" "^$f:7: password_hash: .*looks like plaintext" "$tmp/e"
expect_line "oversized project_data refused" "^$f:8: project_data: JSON document of [0-9]+ bytes is over the 2048-byte limit" "$tmp/e"
expect_line "summary" "9 lines: 1 sent and delivered, 8 rejected, 0 failed delivery" "$tmp/e"
[ "$(wc -l <"$tmp/rejects.jsonl")" = 8 ] && ok "--rejects keeps the 8 bad lines" || bad "rejects: $(wc -l <"$tmp/rejects.jsonl")"
/usr/bin/python3 - "$tmp/rejects.jsonl" "$f" <<'PY' && ok "--rejects lines hold the input and the error" || bad "rejects content"
import json, sys
rejects = [json.loads(l) for l in open(sys.argv[1])]
source = open(sys.argv[2]).read().split("\n")
assert [r["line"] for r in rejects] == [1, 2, 3, 4, 5, 6, 7, 8], rejects
for r in rejects:
    assert r["input"] == source[r["line"] - 1] and r["error"]["message"], r
assert rejects[4]["error"] == {"code": "invalid", "field": "bpm", "message": "expected a BPM from 20 to 999, got 9000"}
PY
after=$(count prime.projects)
[ $((after - before)) = 1 ] && ok "only the good line was sent" || bad "sent $((after - before)) messages"

# --strict stops at the first bad line.
"$publish" -b "$brokers" --strict "$tmp/mixed.jsonl" 2>"$tmp/e"
[ $? = 1 ] && grep -q "1 line: 0 sent and delivered, 1 rejected.*stopped at the first bad line" "$tmp/e" \
  && ok "--strict stops at the first bad line" || bad "--strict: $(cat "$tmp/e")"
[ "$(count prime.projects)" = "$after" ] && ok "--strict sent nothing after it" || bad "--strict sent"

# --dry-run sends nothing.
"$publish" -b "$brokers" --dry-run <<<"$good" >/dev/null 2>&1
[ "$(count prime.projects)" = "$after" ] && ok "--dry-run sends nothing" || bad "--dry-run sent"

# A broker that goes away: non-zero exit and a clear message, in bounded time.
kill -TERM "$PRIME_TEST_BROKER_PID"
broker_gone() { ! (exec 3<>"/dev/tcp/${brokers%%:*}/${brokers##*:}") 2>/dev/null; } # its port closed
wait_until 10 broker_gone || bad "the broker did not stop"
start=$(date +%s)
"$publish" -b "$brokers" -X message.timeout.ms=2000 --rejects "$tmp/undelivered.jsonl" <<<"$good" 2>"$tmp/e"
rc=$? took=$(( $(date +%s) - start ))
[ $rc = 1 ] && ok "broker down: exit status 1" || bad "broker down: exit $rc"
expect_line "broker down: the line is named" "^stdin:1: not delivered to prime.projects: .*timed out" "$tmp/e"
expect_line "broker down: summary" "0 sent and delivered, 0 rejected, 1 failed delivery" "$tmp/e"
[ "$took" -lt 20 ] && ok "broker down: no hang (${took}s)" || bad "broker down took ${took}s"
grep -q '"input"' "$tmp/undelivered.jsonl" && ok "broker down: the undelivered line is kept in --rejects" || bad "undelivered not kept"

finish
