#!/usr/bin/env bash
# prime-dlq against the materializer on the dev broker and an ephemeral
# PostgreSQL: dead letters listed by worker, reason and field; one shown
# with its headers and its event decoded, secrets withheld; a dead letter
# replayed to its source once its cause is fixed is applied, once, however
# often it is replayed; a replay touches nothing it was not asked to.
set -uo pipefail
tmp=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

u1=11111111-1111-4111-8111-111111111111 u2=22222222-2222-4222-8222-222222222222
p2=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb cr2=eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee
canary=sha256:$(printf 'feed%060d' 42)
n=0
ev() { # TYPE OWNER MINUTE JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" "$3" "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$3@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"preferred_genres\":[],\"email_verified\":false"; }
publish() { "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }; }
wait_for() { # NAME EXPECTED SQL: poll until the query gives EXPECTED (30 s)
  local got
  for _ in $(seq 300); do
    got=$(psql -qAtc "$3" 2>&1)
    [ "$got" = "$2" ] && { ok "$1"; return 0; }
    sleep 0.1
  done
  bad "$1: expected [$2], got [$got]"
}
dlq() { "$PRIME_DLQ" "$@" >"$tmp/out" 2>"$tmp/err"; echo $?; }
has() { if grep -qF -- "$2" "$tmp/out"; then ok "$1"; else bad "$1: no [$2] in: $(cat "$tmp/out" "$tmp/err")"; fi; }
status() { # NAME WANT GOT
  if [ "$3" = "$2" ]; then ok "$1"; else bad "$1: exit $3, expected $2: $(cat "$tmp/out" "$tmp/err")"; fi
}

# u2 never registers (yet): its project and credential wait, then are
# dead-lettered as unresolved; a record that is not an event is dead-lettered
# as undecodable.
{
  user "$u1" 0 nova
  ev project.created "$u2" 1 "\"project_id\":\"$p2\",\"name\":\"Orphan\",\"project_data\":{}"
  ev auth.credential_created "$u2" 2 "\"credential_id\":\"$cr2\",\"credential_type\":\"email_password\",\"email\":\"echo@example.com\",\"password_hash\":\"$canary\",\"salt\":\"s1\""
} >"$tmp/first.jsonl"
publish "$tmp/first.jsonl"
printf 'garbage\n' | kcat -b "$PRIME_BROKERS" -P -t prime.users -k "$u1" 2>/dev/null
"$PRIME_MATERIALIZER" --group mat --park-max-seconds 1 --linger-ms 100 "${group_x[@]}" >"$tmp/mat.log" 2>&1 &
pid=$!
for _ in $(seq 300); do [ "$(on_topic prime.dlq)" -ge 3 ] && break; sleep 0.1; done
status "three dead letters written" 3 "$(on_topic prime.dlq)"

status "list" 0 "$(dlq list)"
has "the unresolved ones are one group of two" "       2  materializer"
has "the undecodable one is its own group" "decode"
has "the total" "prime-dlq: 3 dead letters in 2 groups"
status "list filtered by reason" 0 "$(dlq list --reason decode)"
has "only the undecodable one" "prime-dlq: 1 dead letters in 1 groups"

# show: the credential's dead letter, headers and event, the hash withheld.
where=$(kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%p:%o %s\n' 2>/dev/null | grep -a auth.credential_created | cut -d' ' -f1)
status "show" 0 "$(dlq show "$where")"
has "its headers" "prime.source.topic: prime.auth"
has "its reason" "prime.error.message: unresolved"
has "its event, decoded" "\"credential_id\":"
has "the secret field is named, its value withheld" "\"password_hash\":	\"(secret, not shown)\""
secrets=$(count_in "$canary" "$tmp/out" "$tmp/err")
if grep -qF "$canary" "$tmp/out" "$tmp/err"; then bad "the password hash is printed"; else ok "the password hash is not printed"; fi
status "show of an offset with no dead letter" 1 "$(dlq show 0:999999)"

# Fix the cause: u2 registers. Replay the unresolved ones (a dry run first).
user "$u2" 3 echo >"$tmp/fix.jsonl"
publish "$tmp/fix.jsonl"
wait_for "the missing owner now exists" 1 "SELECT count(*) FROM prime_users WHERE id = '$u2'"
before=$(on_topic prime.projects)
status "replay without a selection is refused" 2 "$(dlq replay)"
status "dry run" 0 "$(dlq replay --reason invalid --dry-run)"
has "the dry run names what it would send" "would replay"
status "the dry run sent nothing" "$before" "$(on_topic prime.projects)"
status "replay of the unresolved ones" 0 "$(dlq replay --worker materializer --field '' --reason invalid)"
wait_for "the replayed project is applied" "Orphan|$u2" "SELECT name, user_id FROM studio_projects WHERE id = '$p2'"
wait_for "the replayed credential is applied" 1 "SELECT count(*) FROM auth_credentials WHERE id = '$cr2'"
status "one record went back to prime.projects" "$((before + 1))" "$(on_topic prime.projects)"
status "replayed again" 0 "$(dlq replay --source prime.projects)"
for _ in $(seq 100); do
  [ "$(psql -qAtc "SELECT sum(next_offset) FROM prime_pipeline.consumer_offsets WHERE group_id = 'mat' AND topic = 'prime.projects'")" = "$(on_topic prime.projects)" ] && break
  sleep 0.1
done
check "a second replay is consumed and applies nothing twice" "1|1" \
  "SELECT project_version, (SELECT count(*) FROM studio_projects) FROM studio_projects WHERE id = '$p2'"
status "the undecodable record was not replayed" 1 "$(kcat -b "$PRIME_BROKERS" -C -t prime.users -o beginning -e -q -f '%s\n' 2>/dev/null | grep -c garbage)"

# Clear errors.
status "an unknown command" 2 "$(dlq frobnicate)"
status "a bad offset" 2 "$(dlq show 1-2)"
status "a bad time" 2 "$(dlq list --since yesterday)"
kill -TERM "$pid"; wait "$pid"; pid=
# Figures: the dead letters replayed after their cause was fixed (the project
# and the credential; the project twice); lost: the ones not applied.
attack_summary dlq_replay 3 \
  "$(psql -qAtc "SELECT 2 - (SELECT count(*) FROM studio_projects WHERE id = '$p2') - (SELECT count(*) FROM auth_credentials WHERE id = '$cr2')")" \
  "$secrets"
finish
