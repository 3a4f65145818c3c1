#!/usr/bin/env bash
# Secrets and personal data stay in their columns (DESIGN.md contract 8)
# when PostgreSQL refuses a row: a unique violation on
# auth_sessions.session_token and one on prime_users.email, provoked
# through prime-publish and the real materializer, with the audit writer
# running. Each canary is then looked for in the workers' logs, prime.dlq's
# headers, prime.audit, audit_log and /metrics, and found 0 times. A dead
# letter's payload is the original event, which carries the hash by design:
# its headers are what is checked. The same batch holds an event the fold
# refuses before the database refuses the batch: it is dead-lettered once.
set -uo pipefail
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

token_canary=c0ffee5ec7e7
token=sha256:${token_canary}$(printf '%052d' 1)
email_canary=canary-5ec7e7
u1=11111111-1111-4111-8111-111111111111 u2=22222222-2222-4222-8222-222222222222
s1=33333333-3333-4333-8333-333333333333 s2=44444444-4444-4444-8444-444444444444
n=0
ev() { # TYPE OWNER SECOND FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:00:%02dZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"desk-1",%s}\n' \
    "$1" "$n" "$3" "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$email_canary@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"email_verified\":false"; }
session() { ev auth.session_started "$u1" "$2" "\"session_id\":\"$1\",\"session_token_hash\":\"$token\",\"device_name\":\"Mac\",\"device_type\":\"desktop\",\"access_token_hash\":\"sha256:$(printf 'a%063d' "$2")\",\"refresh_token_hash\":\"sha256:$(printf 'b%063d' "$2")\",\"access_token_expires_at\":\"2026-11-25T11:00:00Z\",\"refresh_token_expires_at\":\"2026-11-26T10:00:00Z\",\"ip_address\":\"192.0.2.1\",\"user_agent\":\"test\""; }
{
  user "$u1" 1 nova
  user "$u1" 2 nova_again    # refused by the fold (already registered), in the batch the database refuses
  user "$u2" 2 echo          # the same email: prime_users_email_key refuses it
  session "$s1" 3
  session "$s2" 4            # the same session token: auth_sessions_session_token_key refuses it
} >"$tmp/events.jsonl"
"$PRIME_PUBLISH" "$tmp/events.jsonl" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
# Started after the events are in, with a long linger: one batch holds them all.
port=$(free_port)
common=(--linger-ms 1000 "${group_x[@]}")
"$PRIME_MATERIALIZER" --group mat --metrics-port "$port" "${common[@]}" >>"$tmp/mat.log" 2>&1 & pids+=($!)
"$PRIME_AUDIT" writer --group audit "${common[@]}" >>"$tmp/audit.log" 2>&1 & pids+=($!)

headers() { kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%h\n' 2>/dev/null; }
for _ in $(seq 600); do
  [ "$(on_topic prime.dlq)" -ge 3 ] && [ "$(psql -qAtc "SELECT count(*) FROM prime_pipeline.audit_log WHERE operation = 'dead_lettered'")" -ge 3 ] && break
  sleep 0.1
done
check "the first user and session are applied" "1|1" \
  "SELECT (SELECT count(*) FROM prime_users), (SELECT count(*) FROM auth_sessions)"
headers >"$tmp/dlq-headers"
# The set-based pass refused the duplicate registration, then the database
# refused the pass; event by event, it is refused again: one dead letter.
[ "$(grep -c 'msg="batch refused by the database; applying event by event"' "$tmp/mat.log")" -ge 1 ] \
  && ok "the batch was redone event by event" || bad "no event-by-event pass: $(grep -c . "$tmp/mat.log") log lines"
[ "$(grep -c 'the user is already registered' "$tmp/dlq-headers")" = 1 ] \
  && ok "an event refused in both passes is dead-lettered once" || bad "dead letters of the duplicate registration: $(grep -c 'the user is already registered' "$tmp/dlq-headers")"
[ "$(on_topic prime.dlq)" = 3 ] && ok "three dead letters" || bad "dead letters: $(on_topic prime.dlq)"
grep -q 'prime_users_email_key.*key (email).*SQLSTATE 23505' "$tmp/dlq-headers" \
  && ok "the email's unique violation is dead-lettered, naming the constraint and column" || bad "headers: $(cat "$tmp/dlq-headers")"
grep -q 'auth_sessions_session_token_key.*key (session_token).*SQLSTATE 23505' "$tmp/dlq-headers" \
  && ok "the session token's unique violation is dead-lettered, naming the constraint and column" || bad "headers: $(cat "$tmp/dlq-headers")"
check "each dead letter is audited once" "3" "SELECT count(*) FROM prime_pipeline.audit_log WHERE operation = 'dead_lettered'"

# Every output, then each canary in it.
kcat -b "$PRIME_BROKERS" -C -t prime.audit -o beginning -e -q -f '%h %k %s\n' >"$tmp/audit-topic" 2>/dev/null
psql -qAtc "SELECT row_to_json(a) FROM prime_pipeline.audit_log a" >"$tmp/audit-log"
(exec 3<>"/dev/tcp/127.0.0.1/$port"; printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3; cat <&3) >"$tmp/metrics" 2>/dev/null
grep -q prime_dead_letters_total "$tmp/metrics" || bad "no /metrics to search"
psql -qAtc "SELECT row_to_json(o) FROM prime_pipeline.outbox o" >"$tmp/outbox"
secrets=0
for canary in "$token_canary" "$email_canary"; do
  for out in mat.log audit.log dlq-headers audit-topic audit-log metrics outbox; do
    found=$(count_in "$canary" "$tmp/$out")
    secrets=$((secrets + found))
    [ "$found" = 0 ] && ok "$canary found 0 times in $out" || bad "$canary found $found times in $out: $(grep -a "$canary" "$tmp/$out" | head -2)"
  done
done
# The canaries are where they belong: the rows, and the dead letters' payloads (the events as published).
check "the token is in its column" "1" "SELECT count(*) FROM auth_sessions WHERE session_token = '$token'"
[ "$(kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%s\n' 2>/dev/null | grep -a -c "$token_canary")" = 1 ] \
  && ok "the refused session's dead letter carries the event as published" || bad "dlq payloads"
for p in "${pids[@]}"; do
  kill -TERM "$p"; wait "$p" && ok "a worker stops cleanly (exit 0)" || bad "a worker exited $? (see its log)"
done
pids=()
# Figures: the three refused events (two unique violations, one refused by
# the fold); lost: the first user and session not applied, refused events
# without a dead letter; secrets: the canaries found above.
attack_summary secrets 3 \
  "$(( 2 - $(psql -qAtc "SELECT (SELECT count(*) FROM prime_users) + (SELECT count(*) FROM auth_sessions)")
       + ($(on_topic prime.dlq) < 3 ? 3 - $(on_topic prime.dlq) : 0) ))" "$secrets"
finish
