#!/usr/bin/env bash
# Issue 12, item 1: an id in another case is the same id. Published through
# the real CLI and broker, checked from PostgreSQL and the topics:
#   - user B's project.created naming user A's project id in upper case
#     must not take A's project over: A's row is untouched and B's event is
#     dead-lettered with its reason;
#   - an owner spelled in upper case is the registered user: the event is
#     applied, not parked;
#   - every spelling of an owner is one message key (one partition), and
#     the topics carry ids in lower case only.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

upper() { tr 'a-f' 'A-F' <<<"$1"; }
ua=aaaaaaaa-1111-4111-8111-111111111111 ub=bbbbbbbb-2222-4222-8222-222222222222 uc=cccccccc-3333-4333-8333-333333333333
pa=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa pc=cccccccc-cccc-4ccc-8ccc-cccccccccccc
n=0
ev() { # TYPE OWNER TIME JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"0000000e-0000-4000-8000-%012d","occurred_at":"2026-11-25T%s:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" "$3" "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$3@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"preferred_genres\":[],\"email_verified\":false"; }
{
  user "$ua" 10:00 alice
  user "$ub" 10:01 bob
  user "$uc" 10:02 carol
  ev project.created "$ua" 10:05 "\"project_id\":\"$pa\",\"name\":\"Alice's song\",\"project_data\":{\"by\":\"alice\"}"
} >"$tmp/first.jsonl"
{
  # Bob names Alice's project in upper case: the takeover attempt.
  ev project.created "$ub" 10:10 "\"project_id\":\"$(upper "$pa")\",\"name\":\"Taken\",\"project_data\":{\"by\":\"bob\"}"
  # Carol spelled in upper case: she is registered, so this applies.
  ev project.created "$(upper "$uc")" 10:11 "\"project_id\":\"$(upper "$pc")\",\"name\":\"Carol's\",\"project_data\":{}"
  ev project.saved "$(upper "$uc")" 10:12 "\"project_id\":\"$pc\",\"base_version\":1,\"project_data\":{\"v\":2}"
  ev project.opened "$uc" 10:13 "\"project_id\":\"$pc\""
} >"$tmp/second.jsonl"
published=0
drain() { # FILE: publish it, then run the materializer until it has taken in everything so far
  local pid got=0
  "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
  published=$((published + $(grep -c . "$1")))
  "$PRIME_MATERIALIZER" --group ids --linger-ms 200 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
  pid=$!
  for _ in $(seq 300); do
    got=$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'ids'")
    [ "$got" -ge "$published" ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid"
  [ "$got" -ge "$published" ] || { cat "$tmp/mat.log"; bad "the materializer took in $got of $published events"; finish; exit; }
}
# Alice's project is in PostgreSQL (which answers in lower case) before
# Bob's attempt is read.
drain "$tmp/first.jsonl"
check "Alice's project is there" "$ua|Alice's song" "SELECT user_id, name FROM studio_projects WHERE id = '$pa'"
drain "$tmp/second.jsonl"

check "Alice's project is untouched: owner, name, data, version" "$ua|Alice's song|{\"by\": \"alice\"}|1" \
  "SELECT user_id, name, project_data::text, project_version FROM studio_projects WHERE id = '$pa'"
check "no second row under another spelling" "1" "SELECT count(*) FROM studio_projects WHERE lower(id::text) = '$pa'"
check "Bob owns no project" "0" "SELECT count(*) FROM studio_projects WHERE user_id = '$ub'"
dead_lettered "Bob's create naming Alice's project is dead-lettered with its reason" \
  "prime.error.message=the project exists already"
check "Carol's events, her id in upper case, are applied in order" "$uc|Carol's|2|{\"v\": 2}" \
  "SELECT user_id, name, project_version, project_data::text FROM studio_projects WHERE id = '$pc'"
check "nothing is parked" "0" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'ids'"

keys=$(kcat -b "$PRIME_BROKERS" -C -t prime.projects -o beginning -e -q -f '%k\n' 2>/dev/null)
[ "$(grep -c . <<<"$keys")" = 5 ] && ok "five records on prime.projects" || bad "records on prime.projects: [$keys]"
if grep -q '[A-F]' <<<"$keys"; then bad "a message key in upper case: [$keys]"; else ok "every key is a lower-case owner id"; fi
parts=$(kcat -b "$PRIME_BROKERS" -C -t prime.projects -o beginning -e -q -f '%k %p\n' 2>/dev/null | grep -i "^$uc" | awk '{print $2}' | sort -u | wc -l)
[ "$parts" = 1 ] && ok "Carol's events, however spelled, are on one partition" || bad "Carol's events on $parts partitions"
for t in prime.projects prime.users; do
  if kcat -b "$PRIME_BROKERS" -C -t "$t" -o beginning -e -q -f '%s\n' 2>/dev/null |
       grep -aq -e "$(upper "$pa")" -e "$(upper "$uc")" -e "$(upper "$pc")"; then
    bad "$t carries an id in upper case"
  else
    ok "$t carries ids in lower case only"
  fi
done
# Figures: the hostile events (Bob's upper-case takeover, Carol's upper-case
# spellings); lost: the two projects not in the state their owners gave them.
attack_summary id_case "$(grep -c . "$tmp/second.jsonl")" \
  "$(psql -qAtc "SELECT 2 - count(*) FROM studio_projects WHERE (id = '$pa' AND user_id = '$ua' AND name = 'Alice''s song')
                 OR (id = '$pc' AND user_id = '$uc' AND project_version = 2)")" -
finish
