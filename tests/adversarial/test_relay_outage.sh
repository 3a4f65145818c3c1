#!/usr/bin/env bash
# Issue 12, a partial Kafka outage during the outbox relay, from outside:
# registrations published with prime-publish are taken in by the real
# materializer while Kafka (the dev broker, SIGSTOP) is away for its relay
# only: the batch commits in PostgreSQL (held back by a lock on prime_users
# until the broker is stopped) and its audit records wait in the outbox.
# The relay must say so (/healthz 503 "outbox relay stuck", a log line),
# and when Kafka is back relay every record, none lost: checked from
# PostgreSQL (the rows, the outbox) and the topic (prime.audit).
set -uo pipefail
tmp=$(mktemp -d)
pid= locker=
cleanup() {
  kill -CONT "$PRIME_TEST_BROKER_PID" 2>/dev/null
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  [ -n "$locker" ] && kill "$locker" 2>/dev/null
  [ "${failed:-0}" != 0 ] && grep -hE 'level=(warn|error)' "$tmp/mat.log" | tail -20
  rm -rf "$tmp"
}
trap cleanup EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

users=200
for i in $(seq "$users"); do
  u=$(printf '0000abcd-0000-4000-8000-%012d' "$i")
  printf '{"type":"user.registered","event_id":"0000000e-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:00:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"d","email":"o%d@example.com","username":"user%d","display_name":"O","preferred_genres":[],"email_verified":false}\n' \
    "$i" "$u" "$u" "$i" "$i"
done >"$tmp/users.jsonl"
port=$(free_port)
"$PRIME_MATERIALIZER" --group outage --stall-seconds 2 --metrics-port "$port" --linger-ms 100 >"$tmp/mat.log" 2>&1 &
pid=$!
healthz() { http_get "$port" /healthz; }
healthz_is() { healthz | grep -q "status=$1"; }
wait_until 60 has_partitions "$tmp/mat.log" || bad "the materializer was never assigned partitions"
wait_until 30 healthz_is 200 && ok "/healthz 200 before the outage" || bad "healthz: $(healthz)"

# The batch waits for the lock, then Kafka goes away, then the batch commits.
PGAPPNAME=test-lock psql -qAt -c "BEGIN" -c "LOCK TABLE prime_users IN SHARE MODE" -c "SELECT pg_sleep(600)" >/dev/null 2>&1 &
locker=$!
lock_held() { [ "$(psql -qAtc "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'test-lock' AND query LIKE '%pg_sleep%'")" = 1 ]; }
wait_until 10 lock_held || bad "the test's lock"
"$PRIME_PUBLISH" "$tmp/users.jsonl" >/dev/null 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
batch_waits() { [ "$(psql -qAtc "SELECT count(*) FROM pg_stat_activity WHERE application_name <> 'test-lock' AND wait_event_type = 'Lock'")" -gt 0 ]; }
wait_until 60 batch_waits || bad "the materializer's batch never came"
kill -STOP "$PRIME_TEST_BROKER_PID"
psql -qAtc "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'test-lock'" >/dev/null
wait "$locker" 2>/dev/null; locker=
applied() { [ "$(psql -qAtc "SELECT count(*) FROM prime_users")" = "$users" ]; }
wait_until 30 applied && ok "the $users registrations committed while Kafka is away" \
  || bad "$(psql -qAtc "SELECT count(*) FROM prime_users") of $users registrations"
held=$(psql -qAtc "SELECT count(*) FROM prime_pipeline.outbox")
[ "$held" -ge "$users" ] && ok "their $held audit records wait in the outbox" || bad "$held rows in the outbox"
if wait_until 30 healthz_is 503; then
  healthz | grep -q "outbox relay stuck" && ok "/healthz 503: outbox relay stuck" || bad "healthz reason: $(healthz)"
else
  bad "healthz while Kafka is away: $(healthz)"
fi
stuck_logged() { grep -q 'msg="outbox relay stuck' "$tmp/mat.log"; }
wait_until 10 stuck_logged && ok "the stuck relay is logged" || bad "no log line for the stuck relay"
kill -CONT "$PRIME_TEST_BROKER_PID"

outbox_empty() { [ "$(psql -qAtc "SELECT count(*) FROM prime_pipeline.outbox")" = 0 ]; }
wait_until 120 outbox_empty && ok "the relay completes when Kafka is back" \
  || bad "after the outage: $(psql -qAtc "SELECT count(*) FROM prime_pipeline.outbox") rows left"
wait_until 30 healthz_is 200 && ok "/healthz 200 again" || bad "healthz after the outage: $(healthz)"
grep -q 'msg="outbox relay moving again' "$tmp/mat.log" && ok "the recovery is logged" || bad "no recovery log line"
audited=$(kcat -b "$PRIME_BROKERS" -C -t prime.audit -o beginning -e -q -f '%k\n' 2>/dev/null | grep -c '^prime_users:' )
distinct=$(kcat -b "$PRIME_BROKERS" -C -t prime.audit -o beginning -e -q -f '%k\n' 2>/dev/null | grep '^prime_users:' | sort -u | wc -l)
[ "$distinct" = "$users" ] && ok "an audit record of each registration on prime.audit ($audited records)" \
  || bad "$distinct of $users registrations audited on prime.audit"
kill -TERM "$pid"; wait "$pid"; rc=$?; pid=
[ "$rc" = 0 ] && ok "clean stop" || bad "stop: exit $rc"
# Figures: the outage; lost: registrations not in prime_users, audit records not on the topic.
attack_summary relay_outage 1 "$(( users - $(psql -qAtc "SELECT count(*) FROM prime_users") + users - distinct ))" -
finish
