#!/usr/bin/env bash
# Red team, theme UUIDs (failed on main at 85ca8cd). The nil
# UUID is the pipeline's own "no one" (derived.c writes it as the actor of
# records no event caused; prime-audit reads it as "actor not known"). A
# client may register it as a user id today, and then its actions are
# recorded as no one's. It should be refused like any other bad id: by
# prime-publish (exit 1, the field named) or else by the materializer (a
# dead letter); never a prime_users row.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1
z=00000000-0000-0000-0000-000000000000
printf '{"type":"user.registered","event_id":"0000000e-0000-4000-8000-000000000001","occurred_at":"2026-11-25T10:00:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"d","email":"sys@example.com","username":"system","display_name":"System","preferred_genres":[],"email_verified":true}\n' $z $z >"$tmp/e.jsonl"
"$PRIME_PUBLISH" "$tmp/e.jsonl" >/dev/null 2>"$tmp/publish.err"
if [ $? = 1 ] && grep -q 'owner_user_id\|actor_user_id' "$tmp/publish.err"; then
  ok "prime-publish refuses the nil UUID, naming the field"
else
  "$PRIME_MATERIALIZER" --group nil --linger-ms 200 "${group_x[@]}" >"$tmp/mat.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    got=$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'nil'")
    [ "$got" -ge 1 ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid"
  check "no user with the nil id" "0" "SELECT count(*) FROM prime_users WHERE id = '$z'"
  dead_lettered "the nil user's registration is dead-lettered" "prime.error.field=(owner|actor)_user_id"
fi
attack_summary nil_uuid 1 - -
finish
