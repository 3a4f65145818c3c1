#!/usr/bin/env bash
# JSON documents from clients, from prime-publish to PostgreSQL: what jsonb
# refuses is refused at publish with the line and the path of the value;
# what it takes is stored as PostgreSQL makes it of the client's own text
# (no rounding to 15 digits, no 1e400 turned null), also through the
# materializer's merges and lists.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB

u1=11111111-1111-4111-8111-111111111111 p1=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
c1=cccccccc-cccc-4ccc-8ccc-cccccccccccc
n=0
ev() { # TYPE TIME JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T%s:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" "$2" "$u1" "$u1" "$3"
}

# --- Refused at publish: the line, the path inside the document, why.
{
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"ok\",\"project_data\":{\"v\":1}"
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"ok\",\"project_data\":{\"active_tool\":\"pen\\u0000 x\"}"
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"ok\",\"project_data\":{\"active_tool\\u0000 x\":\"pen\"}"
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"ok\",\"project_data\":{\"tracks\":[{\"gain\":01}]}"
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"ok\",\"project_data\":{\"big\":1e131072}"
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"Song\\u0000 (draft)\",\"project_data\":{}"
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"ok\",\"project_data\":\"{\\\"tab\\\":\\\"a\\tb\\\"}\""
} >"$tmp/bad.jsonl"
"$PRIME_PUBLISH" --dry-run "$tmp/bad.jsonl" >/dev/null 2>"$tmp/e"
rc=$?
[ $rc = 1 ] && ok "refused lines make the exit status 1" || bad "exit status $rc: $(cat "$tmp/e")"
f=$tmp/bad.jsonl
expect() { # NAME PATTERN
  if grep -qE -- "$2" "$tmp/e"; then ok "$1"; else bad "$1: $(cat "$tmp/e")"; fi
}
expect "\\u0000 in a value: line and path" "^$f:2: project_data\.active_tool: \\\\u0000 \(NUL\) is refused"
expect "\\u0000 in a member name: refused, not read as active_tool" "^$f:3: project_data: \\\\u0000 \(NUL\) is refused"
expect "a leading zero, in an array item" "^$f:4: project_data\.tracks\[0\]\.gain: number '01' has a leading zero"
expect "a number past numeric's range" "^$f:5: project_data\.big: number '1e131072' is out of PostgreSQL's numeric range"
expect "\\u0000 in a plain string field" "^$f:6: name: \\\\u0000 \(NUL\) is refused"
expect "a raw tab in a document given as a string" "^$f:7: project_data\.tab: a control character in a string must be written as an escape"
expect "only the good line passes" "7 lines: 1 valid \(dry run, nothing sent\), 6 rejected"
sed -n 2p "$tmp/bad.jsonl" >"$tmp/one.json"
if "$PRIME_CODEC" encode "$tmp/one.json" >/dev/null 2>"$tmp/e"; then bad "prime-codec encode took \\u0000"; else
  expect "prime-codec encode names the path" "project_data\.active_tool: \\\\u0000"; fi

# --- Our verdict is PostgreSQL's: each value, as a member of a document,
# is taken by prime-codec encode exactly when jsonb takes it.
"$PRIME_MIGRATE" >/dev/null || exit 1
values=(1e131071 1e131072 -9.99e131071 0.5e131072 0.5e131073 100e131069 100e131070 1e-16383 1e-16384
  1.5e-16383 0.00001e-16378 0.00001e-16379 0e-16383 0e-16384 0e99999 0e1073741822 0e1073741823 1e-1073741823
  12345678901234567890123456789012345678901234567890123456789012345678901234567890 1e400 -0 0.0 1E+5 1e-5
  01 -01 1. .5 -.5 1e 1e+ +1 0x10 NaN Infinity
  '"\u0000"' '"a\u0000"' '"\u0001"' '"\ud800"' '"\udc00"' '"\ud800\udc00"' '"\uZZZZ"' '"\u00e9"' '"\/"' '"\x"'
  $'"raw\ttab"' $'"raw\x1f"' $'"raw\x7f"' $'\x0c1' $'\x0b1' $'\r\n1')
for v in "${values[@]}"; do
  ours=refused pg=refused
  ev recall.set 10:00 "\"category\":\"plugin\",\"recall_key\":\"k\",\"data\":{\"v\":$v}" >"$tmp/v.json"
  "$PRIME_CODEC" encode "$tmp/v.json" >/dev/null 2>&1 && ours=taken
  printf "SELECT :'doc'::jsonb;" | psql -qAt -v ON_ERROR_STOP=1 -v doc="{\"v\":$v}" >/dev/null 2>&1 && pg=taken
  [ "$ours" = "$pg" ] && ok "$(printf %q "$v"): $ours, as by jsonb" || bad "$(printf %q "$v"): $ours by us, $pg by jsonb"
done

# --- Stored as PostgreSQL makes it of the client's text.
doc='{"n": 9007199254740993, "m": 1234567890123456789, "big": 1e400, "tiny": 1e-300, "x": [0.1000000000000000055511151231257827, -0, 1E+2], "s": "caf\u00e9 \ud834\udd1e"}'
perm='{"level": 12345678901234567890123, "scale": 1.000000000000000000001}'
{
  ev user.registered 09:00 '"email":"nova@example.com","username":"nova","display_name":"Nova","email_verified":false'
  ev project.created 10:00 "\"project_id\":\"$p1\",\"name\":\"Big numbers\",\"project_data\":$doc"
  ev collab.started 10:03 "\"collab_session_id\":\"$c1\",\"project_id\":\"$p1\",\"session_name\":\"Takes\""
  ev collab.participant_joined 10:04 "\"collab_session_id\":\"$c1\",\"user_id\":\"$u1\",\"role\":\"editor\",\"permissions\":$perm"
} >"$tmp/good.jsonl"
"$PRIME_PUBLISH" "$tmp/good.jsonl" 2>"$tmp/e" || { bad "publish: $(cat "$tmp/e")"; finish; exit; }
total=$(grep -c . "$tmp/good.jsonl")
"$PRIME_MATERIALIZER" --group fidelity --linger-ms 200 "${group_x[@]}" >"$tmp/mat.log" 2>&1 &
pid=$!
for _ in $(seq 300); do
  [ "$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'fidelity'")" -ge "$total" ] && break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"

q() { printf "%s" "$1" | sed "s/'/''/g"; } # as an SQL literal's body
check "PostgreSQL prints [1e997] and [-1e-995] as 1000 bytes (test_validate's limit cases)" "1000|1000" \
  "SELECT length('[1e997]'::jsonb::text), length('[-1e-995]'::jsonb::text)"
check "project_data is the jsonb of the client's text" "t|t" \
  "SELECT project_data = '$(q "$doc")'::jsonb, project_data::text = ('$(q "$doc")'::jsonb)::text FROM studio_projects WHERE id = '$p1'"
check "2^53 + 1 and 19 digits survive; 1e400 is 1 and 400 zeros" "9007199254740993|1234567890123456789|401" \
  "SELECT project_data->>'n', project_data->>'m', length(project_data->>'big') FROM studio_projects WHERE id = '$p1'"
check "a participant's permissions keep their numbers" "t" \
  "SELECT participants->0->'permissions' = '$(q "$perm")'::jsonb FROM collaboration_sessions WHERE id = '$c1'"
finish
