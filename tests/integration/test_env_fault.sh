#!/usr/bin/env bash
# The real materializer meets a column missing by hand (renamed: an
# environment fault, SQLSTATE 42703): it dead-letters nothing, reports the
# fault on /healthz, and once the column is restored applies every event
# that waited. prime-migrate names the drift meanwhile. (A column dropped
# and added again comes last, and the materializer's row literals go by
# position: prime-migrate names that drift too, "position".)
set -uo pipefail
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

port=$(free_port)
http() { (exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET %s HTTP/1.0\r\n\r\n' "$1" >&3; cat <&3) 2>/dev/null; }
until_true() { # SECONDS 'CONDITION'
  local i limit=$(($1 * 10))
  for ((i = 0; i < limit; i++)); do eval "$2" && return 0; sleep 0.1; done
  return 1
}
user() { # N: user.registered of user N
  printf '{"type":"user.registered","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:00:%02dZ","actor_user_id":"11111111-1111-4111-8111-%012d","owner_user_id":"11111111-1111-4111-8111-%012d","device_id":"d","email":"u%d@example.com","username":"user%d","display_name":"U","bio":"b","email_verified":false}\n' \
    "$1" "$1" "$1" "$1" "$1" "$1"
}

psql -qc "ALTER TABLE prime_users RENAME COLUMN bio TO bio_gone"
"$PRIME_MIGRATE" --status >"$tmp/status" 2>&1; rc=$?
[ "$rc" = 1 ] && grep -q 'drift    public.prime_users.bio: expected text, position 7, found nothing' "$tmp/status" \
  && ok "prime-migrate --status names the dropped column, exit 1" || bad "status exit $rc: $(cat "$tmp/status")"

"$PRIME_MATERIALIZER" --group mat --linger-ms 100 --metrics-port "$port" "${group_x[@]}" >"$tmp/mat.log" 2>&1 &
pid=$!
for i in 1 2 3 4 5; do user "$i"; done >"$tmp/events.jsonl"
"$PRIME_PUBLISH" "$tmp/events.jsonl" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
until_true 60 'http /healthz | grep -q "environment fault, retrying: .*bio"' && ok "/healthz reports the fault, naming the column" \
  || bad "healthz: $(http /healthz)"
until_true 30 '[ "$(http /metrics | awk '\''$1 == "prime_retries_total{worker=\"materializer\"}" {print $2}'\'')" -ge 3 ]' \
  && ok "the batch is retried" || bad "retries: $(http /metrics | grep prime_retries_total)"
check "nothing applied during the fault" "0" "SELECT count(*) FROM prime_users"
[ "$(on_topic prime.dlq)" = 0 ] && ok "nothing dead-lettered" || bad "dead letters: $(on_topic prime.dlq)"
[ "$(grep -c 'msg="environment fault:' "$tmp/mat.log")" = 1 ] && ok "the fault is logged once" \
  || bad "fault lines: $(grep -c 'environment fault' "$tmp/mat.log")"

psql -qc "ALTER TABLE prime_users RENAME COLUMN bio_gone TO bio"
until_true 60 '[ "$(psql -qAtc "SELECT count(*) FROM prime_users WHERE bio = '\''b'\''")" = 5 ]' \
  && ok "the column restored: every event applied, with its bio" || bad "users: $(psql -qAtc "SELECT count(*) FROM prime_users")"
until_true 10 'http /healthz | grep -q "200 OK"' && ok "/healthz is 200 again" || bad "healthz: $(http /healthz)"
[ "$(on_topic prime.dlq)" = 0 ] && ok "still nothing dead-lettered" || bad "dead letters: $(on_topic prime.dlq)"
kill -TERM "$pid"; wait "$pid" && ok "the materializer stops cleanly" || bad "materializer exit $?"
pid=
finish
