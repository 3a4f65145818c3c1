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

# Lines without event_id and occurred_at (issue 13): the library generates
# them, as for any client; --dry-run shows them, marked as generated.
preset=$("$codec" example preset.created | sed 's/"event_id":"[^"]*",//; s/"occurred_at":"[^"]*",//')
printf '%s\n%s\n' "$preset" "$preset" >"$tmp/noid.jsonl"
grep -qE 'event_id|occurred_at' "$tmp/noid.jsonl" && bad "the fixture still has event_id or occurred_at"
"$publish" --dry-run "$tmp/noid.jsonl" >"$tmp/dry" 2>"$tmp/e"
[ $? = 0 ] && [ "$(grep -cE 'event_id=[0-9a-f-]{36} \(generated\) occurred_at=20[0-9-]{8}T[0-9:.]{15}Z \(generated\)' "$tmp/dry")" = 2 ] \
  && ok "--dry-run shows the event_id and occurred_at it generates" || bad "--dry-run without ids: $(cat "$tmp/dry" "$tmp/e")"
"$publish" -b "$brokers" "$tmp/noid.jsonl" 2>"$tmp/e"
[ $? = 0 ] && grep -q "2 lines: 2 sent and delivered, 0 rejected" "$tmp/e" \
  && ok "lines without event_id and occurred_at are published" || bad "without ids: $(cat "$tmp/e")"
/usr/bin/python3 - "$brokers" "$codec" <<'PY' && ok "each got its own UUIDv7 and the time it was sent" || bad "generated envelope"
import datetime, json, subprocess, sys, time
from confluent_kafka import Consumer, TopicPartition, KafkaError
brokers, codec = sys.argv[1:]
c = Consumer({"bootstrap.servers": brokers, "group.id": "t", "enable.partition.eof": True})
parts = c.list_topics("prime.presets", timeout=10).topics["prime.presets"].partitions
c.assign([TopicPartition("prime.presets", p, 0) for p in parts])
events, eofs, deadline = [], 0, time.time() + 20
while eofs < len(parts) and time.time() < deadline:
    m = c.poll(0.5)
    if m is None:
        continue
    if m.error():
        eofs += m.error().code() == KafkaError._PARTITION_EOF
        continue
    events.append(json.loads(subprocess.run([codec, "decode"], input=m.value(), capture_output=True, check=True).stdout))
c.close()
assert len(events) == 2, events
ids = [e["event_id"] for e in events]
assert ids[0] != ids[1] and all(len(i) == 36 and i[14] == "7" for i in ids), ids
for e in events:
    at = datetime.datetime.strptime(e["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    assert abs(at.timestamp() - time.time()) < 300, e["occurred_at"]
PY

# --rejects keeps every rejected line byte for byte, whatever its error
# quotes; what reaches the terminal is escaped (issue 16 item 8).
{
  printf '{"type":"project.saved","\xff\xfe name":1}\n'          # 1 unknown member, not UTF-8
  printf '{"type":"project.saved",x"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"}\n' # 2 syntax error excerpt cut inside a character
  printf '{"type":"project.saved","\\u001b[2J\\u009b31m":1}\n'   # 3 control characters in a member name
  printf '{"type":"project.saved","nul":"a\\u0000b"}\x00\n'       # 4 a NUL byte in the line
  printf '{"type":"project.saved","x":%s1%s}\n' "$(printf '[%.0s' {1..1001})" "$(printf ']%.0s' {1..1001})" # 5 too deep
} >"$tmp/odd.jsonl"
"$publish" --dry-run --rejects "$tmp/odd.rejects" "$tmp/odd.jsonl" >/dev/null 2>"$tmp/e"
[ $? = 1 ] && grep -q "5 lines: 0 valid (dry run, nothing sent), 5 rejected" "$tmp/e" && ok "odd lines: all five rejected" || bad "odd lines: $(cat -v "$tmp/e")"
/usr/bin/python3 - "$tmp/odd.rejects" "$tmp/odd.jsonl" <<'PY' && ok "--rejects holds every odd line, byte for byte" || bad "odd rejects: $(cat -v "$tmp/odd.rejects")"
import base64, json, sys
rejects = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8")]
source = open(sys.argv[2], "rb").read().split(b"\n")
assert [r["line"] for r in rejects] == [1, 2, 3, 4, 5], rejects
for r in rejects:
    kept = r["input"].encode("utf-8") if "input" in r else base64.b64decode(r["input_base64"])
    assert kept == source[r["line"] - 1], (r, source[r["line"] - 1])
assert "input_base64" in rejects[0] and "input" in rejects[3], rejects
assert rejects[1]["error"]["message"].endswith("\\xC3'"), rejects[1]  # the cut character, escaped
assert rejects[0]["error"]["field"] == "\\xFF\\xFE name", rejects[0]
PY
/usr/bin/python3 -c '
import re, sys
text = open(sys.argv[1], "rb").read().decode("utf-8")  # fails on bytes that are not UTF-8
assert not re.search("[\x00-\x09\x0b-\x1f\x7f-\x9f]", text), ascii(text)
' "$tmp/e" && ok "what reaches the terminal is UTF-8 without control characters" || bad "terminal: $(cat -v "$tmp/e")"
expect_line "an unknown member that is not UTF-8 is named, escaped" "^$tmp/odd.jsonl:1: \\\\xFF\\\\xFE name: unknown field" "$tmp/e"
expect_line "a syntax error cut inside a character is shown escaped" "^$tmp/odd.jsonl:2: invalid JSON at column .*\\\\xC3" "$tmp/e"
expect_line "control characters in a member name are escaped" "^$tmp/odd.jsonl:3: \\\\x1B\\[2J\\\\xC2\\\\x9B31m: unknown field" "$tmp/e"
expect_line "nesting over the limit says so" "^$tmp/odd.jsonl:5: invalid JSON: nested deeper than 1000 levels of arrays and objects" "$tmp/e"

# A line over the limit is refused without being read whole, the limit
# follows message.max.bytes, and --rejects still holds it byte for byte.
/usr/bin/python3 -c 'import sys; sys.stdout.write("{\"type\":\"project.saved\",\"x\":\"" + "a" * 50000 + "\"}\n")' >"$tmp/long.jsonl"
"$publish" --dry-run -X message.max.bytes=10000 --rejects "$tmp/long.rejects" "$tmp/long.jsonl" >/dev/null 2>"$tmp/e"
expect_line "the line limit follows -X message.max.bytes" "^$tmp/long.jsonl:1: line is 50031 bytes, over the 40000-byte limit" "$tmp/e"
/usr/bin/python3 - "$tmp/long.rejects" "$tmp/long.jsonl" <<'PY' && ok "--rejects holds the long line, byte for byte" || bad "long rejects"
import base64, json, sys
[r] = [json.loads(l) for l in open(sys.argv[1])]
assert base64.b64decode(r["input_base64"]) == open(sys.argv[2], "rb").read().rstrip(b"\n") and r["input_bytes"] == 50031, r
assert r["error"]["code"] == "too_large", r
PY
"$publish" --dry-run "$tmp/long.jsonl" >/dev/null 2>"$tmp/e"
grep -q "over the .*-byte limit" "$tmp/e" && bad "the default limit refused a 50 KB line" || ok "the default limit is 4 MB"
/usr/bin/python3 -c 'import sys; sys.stdout.write("{\"x\":\"" + "a" * 60000000 + "\"}\n")' >"$tmp/huge.jsonl"
/usr/bin/time -f %M -o "$tmp/rss" "$publish" --dry-run "$tmp/huge.jsonl" >/dev/null 2>"$tmp/e"
rss=$(tail -1 "$tmp/rss")
[ "$rss" -lt 30000 ] && grep -q "line is 60000008 bytes, over the 4000000-byte limit" "$tmp/e" \
  && ok "a 60 MB line is refused in ${rss} KB of memory" || bad "60 MB line: peak RSS ${rss} KB: $(cat "$tmp/e")"
rm -f "$tmp/huge.jsonl"

# A closed standard input is named, not read from whatever takes its place.
"$publish" -b "$brokers" <&- 2>"$tmp/e"
[ $? = 2 ] && grep -q "standard input is closed" "$tmp/e" && ok "a closed stdin is a clear error" || bad "closed stdin: $(cat "$tmp/e")"

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
grep -qE '"event_id":"[0-9a-f-]{36}"' "$tmp/undelivered.jsonl" && ok "broker down: with the event_id it was sent with" || bad "undelivered without event_id"

finish
