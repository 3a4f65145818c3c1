#!/usr/bin/env bash
# Red team, theme ids inside JSON and actors (failed on main as of 85ca8cd;
# the rules: docs/materializer.md, "Who may change what"). DESIGN.md 3.7:
# an id has one spelling everywhere, and an event changes only what its
# actor may change. Published through the real CLI
# and broker, checked in PostgreSQL:
#   - Bob (actor) names Alice as owner of her project and makes himself its
#     owner-collaborator, then saves it: neither is his to change, both
#     should be dead-lettered and Alice's project left as it was;
#   - Alice adds Bob with his id in upper case: studio_projects.collaborators
#     must hold the id in lower case (a lookup by the canonical id finds him).
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1
upper() { tr 'a-f' 'A-F' <<<"$1"; }
ua=aaaaaaaa-1111-4111-8111-111111111111 ub=bbbbbbbb-2222-4222-8222-222222222222
pa=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
n=0
ev() { # TYPE ACTOR OWNER JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"0000000e-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" "$n" "$2" "$3" "$4"
}
{
  ev user.registered "$ua" "$ua" '"email":"a@example.com","username":"alice","display_name":"A","preferred_genres":[],"email_verified":false'
  ev user.registered "$ub" "$ub" '"email":"b@example.com","username":"bob","display_name":"B","preferred_genres":[],"email_verified":false'
  ev project.created "$ua" "$ua" "\"project_id\":\"$pa\",\"name\":\"P\",\"project_data\":{\"by\":\"alice\"}"
  ev project.collaborators_changed "$ub" "$ua" "\"project_id\":\"$pa\",\"collaborators\":[{\"user_id\":\"$ub\",\"role\":\"owner\",\"permissions\":[\"edit\",\"delete\"]}]"
  ev project.saved "$ub" "$ua" "\"project_id\":\"$pa\",\"base_version\":1,\"project_data\":{\"by\":\"bob\"}"
} >"$tmp/bob.jsonl"
ev project.collaborators_changed "$ua" "$ua" "\"project_id\":\"$pa\",\"collaborators\":[{\"user_id\":\"$(upper "$ub")\",\"role\":\"editor\",\"permissions\":[\"edit\"]}]" >"$tmp/alice.jsonl"
published=0
drain() { # FILE
  local pid got=0
  "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
  published=$((published + $(grep -c . "$1")))
  "$PRIME_MATERIALIZER" --group actors --linger-ms 200 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    got=$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'actors'")
    [ "$got" -ge "$published" ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid"
  [ "$got" -ge "$published" ] || { cat "$tmp/mat.log"; bad "the materializer took in $got of $published events"; finish; exit; }
}
drain "$tmp/bob.jsonl"
check "Alice's project is as she saved it" '{"by": "alice"}|1' "SELECT project_data::text, project_version FROM studio_projects WHERE id = '$pa'"
check "Bob is not a collaborator of Alice's project" "0" \
  "SELECT count(*) FROM studio_projects WHERE id = '$pa' AND collaborators::text ILIKE '%$ub%'"
n=$(dead_letters | grep -c 'prime.error.message=')
[ "$n" = 2 ] && ok "Bob's two events are dead-lettered" || bad "$n dead letters for Bob's two events"
drain "$tmp/alice.jsonl"
check "the collaborator Alice named in upper case is stored in lower case" "1" \
  "SELECT count(*) FROM studio_projects WHERE id = '$pa' AND collaborators @> '[{\"user_id\": \"$ub\"}]'"
# Figures: Bob's two events and Alice's upper-case collaborator; lost: Alice's
# project not as she saved it, with the collaborator she named.
attack_summary actor_collaborators 3 \
  "$(psql -qAtc "SELECT 1 - count(*) FROM studio_projects WHERE id = '$pa' AND project_data = '{\"by\": \"alice\"}'
                 AND collaborators @> '[{\"user_id\": \"$ub\"}]'")" -
finish
