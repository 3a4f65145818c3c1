#!/usr/bin/env bash
# prime-recall's context and owner gate against a hostile client and the
# materializer's parking, through the real CLI and broker:
#   - user B claims user A's public preset id with a preset.created of his
#     own (the materializer refuses it: the id is A's); C's use of A's
#     preset must count A's plugin, not the one B names (B's id is the
#     smaller, which the context's "smallest user id" rule preferred);
#   - D's project is published long before her registration: the
#     materializer parks it and applies it once D registers; prime-recall,
#     which waits only a few seconds for a missing user (--owner-wait-ms)
#     and while the materializer has prime.users to apply, dead-letters it
#     with the reason, and prime-dlq replays it once D is there: counted
#     once. E's project (E never registers) is dead-lettered, and stays so;
#   - no context is kept for a user who is not in prime_users: not for E,
#     who never registers, and not for F, whose preset.created prime-recall
#     reads after F's user.deleted (another topic), which would bring back
#     what the delete forgot, for good; but a system preset, which the
#     materializer creates without its publisher's user (G is none), is
#     kept, and neither it nor its update is dead-lettered.
set -uo pipefail
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

ua=aaaaaaaa-1111-4111-8111-111111111111 ub=0bbbbbbb-2222-4222-8222-222222222222 uc=cccccccc-3333-4333-8333-333333333333
ud=dddddddd-4444-4444-8444-444444444444 ue=eeeeeeee-5555-4555-8555-555555555555 uf=ffffffff-6666-4666-8666-666666666666
ug=99999999-7777-4777-8777-777777777777 ps=f0f0f0f0-0a0a-4a0a-8a0a-0a0a0a0a0a0a
pr=eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee pd=d0d0d0d0-d0d0-4d0d-8d0d-d0d0d0d0d0d0 pe=e0e0e0e0-e0e0-4e0e-8e0e-e0e0e0e0e0e0
topics=prime.recall,prime.projects,prime.presets,prime.audio,prime.analysis,prime.users
n=0
ev() { # TYPE OWNER TIME JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"0000000f-0000-4000-8000-%012d","occurred_at":"2026-11-25T%s:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" "$3" "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$3@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"preferred_genres\":[],\"email_verified\":false"; }
preset() { # OWNER TIME PLUGIN [ID]
  ev preset.created "$1" "$2" "\"preset_id\":\"${4:-$pr}\",\"name\":\"Hall\",\"plugin_type\":\"$3\",\"parameters\":{\"size\":0.5},\"is_public\":true,\"is_system_preset\":false,\"tags\":[]"
}
published=0
publish() { "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }; published=$((published + $(grep -c . "$1"))); }
consumed() { psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = '$1'"; }
materialize() { # run the materializer until it has taken in everything published so far
  "$PRIME_MATERIALIZER" --group mat --linger-ms 100 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
  local pid=$!
  wait_until 30 eval '[ "$(consumed mat)" -ge "$published" ]'
  kill -TERM "$pid"; wait "$pid"
}

{
  user "$ua" 10:00 alice
  user "$ub" 10:01 bob
  user "$uc" 10:02 carol
  preset "$ua" 10:05 MixxVerb
} >"$tmp/first.jsonl"
publish "$tmp/first.jsonl"
materialize
{
  preset "$ub" 10:06 EvilVerb # Bob's claim on Alice's id
  ev preset.used "$uc" 10:07 "\"preset_id\":\"$pr\""
  ev project.created "$ud" 10:08 "\"project_id\":\"$pd\",\"name\":\"Dub\",\"project_data\":{},\"genre\":\"dub\""
  preset "$ue" 10:08 MixxEcho f0f0f0f0-e0e0-4e0e-8e0e-e0e0e0e0e0e0
  user "$uf" 10:08 fay
  preset "$uf" 10:08 MixxFay f0f0f0f0-f0f0-4f0f-8f0f-f0f0f0f0f0f0
  ev user.deleted "$uf" 10:09 "\"reason\":null"
  ev preset.created "$ug" 10:08 "\"preset_id\":\"$ps\",\"name\":\"Cat\",\"plugin_type\":\"MixxCat\",\"parameters\":{\"size\":0.5},\"is_public\":true,\"is_system_preset\":true,\"tags\":[]"
  ev preset.updated "$ug" 10:09 "\"preset_id\":\"$ps\",\"parameters\":{\"size\":0.7},\"cleared_fields\":[]"
  ev project.created "$ue" 10:08 "\"project_id\":\"$pe\",\"name\":\"Emo\",\"project_data\":{},\"genre\":\"emo\""
} >"$tmp/second.jsonl"
publish "$tmp/second.jsonl"
materialize
check "the materializer parked D's project, waiting for D" "1" \
  "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'mat' AND waiting_for LIKE '%$ud'"
check "Bob's claim is refused: the preset is Alice's" "$ua|MixxVerb" "SELECT user_id, plugin_type FROM plugin_presets WHERE id = '$pr'"

# prime-recall reads F's delete before F's preset (it lags on prime.presets).
"$PRIME_RECALL" --group rc --topics prime.users --linger-ms 100 "${group_x[@]}" >"$tmp/recall.log" 2>&1 &
rpid=$!
wait_until 30 eval '[ "$(consumed rc)" -ge "$(on_topic prime.users)" ]'
kill -TERM "$rpid"; wait "$rpid"
"$PRIME_MATERIALIZER" --group mat --linger-ms 100 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
mpid=$!
"$PRIME_RECALL" --group rc --materializer-group mat --owner-wait-ms 500 --linger-ms 100 "${group_x[@]}" >>"$tmp/recall.log" 2>&1 &
rpid=$!
# Recall reads everything so far (or waits on D's project), then D registers.
wait_until 30 eval '[ "$(consumed rc)" -ge "$published" ] || grep -q "waiting for it" "$tmp/recall.log"'
{ user "$ud" 10:09 dora; } >"$tmp/third.jsonl"
publish "$tmp/third.jsonl"
wait_until 30 eval '[ "$(consumed mat)" -ge "$published" ] && [ "$(consumed rc)" -ge "$published" ]'
kill -TERM "$rpid" "$mpid"; wait "$rpid" "$mpid"

check "C's use of Alice's preset counts Alice's plugin, not Bob's claim" "MixxVerb|1" \
  "SELECT string_agg(recall_key || '|' || usage_count, ',') FROM mixx_recall WHERE user_id = '$uc' AND category = 'plugin'"
dead_lettered "D's project, published before D registered, is dead-lettered by prime-recall with its reason" \
  "prime.error.message=user $ud is not in prime_users.*prime.worker=recall"
# The remedy: once D is there, prime-recall's owner dead letters go back (E's and F's are refused again).
"$PRIME_DLQ" replay --worker recall --field owner_user_id >"$tmp/dlq.out" 2>&1 || bad "prime-dlq replay: $(cat "$tmp/dlq.out")"
replayed=$(sed -n 's/.* \([0-9][0-9]*\) replayed and delivered.*/\1/p' "$tmp/dlq.out")
[ "${replayed:-0}" -ge 3 ] && ok "prime-dlq replayed prime-recall's $replayed owner dead letters" || bad "prime-dlq: $(cat "$tmp/dlq.out")"
published=$((published + ${replayed:-0}))
"$PRIME_MATERIALIZER" --group mat --linger-ms 100 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
mpid=$!
"$PRIME_RECALL" --group rc --materializer-group mat --owner-wait-ms 500 --linger-ms 100 "${group_x[@]}" >>"$tmp/recall.log" 2>&1 &
rpid=$!
wait_until 60 eval '[ "$(consumed mat)" -ge "$published" ] && [ "$(consumed rc)" -ge "$published" ]'
kill -TERM "$rpid" "$mpid"; wait "$rpid" "$mpid"
check "D's project, replayed from prime.dlq once D registered, counts for D once" "dub|1" \
  "SELECT string_agg(recall_key || '|' || usage_count, ',') FROM mixx_recall WHERE user_id = '$ud' AND category = 'genre'"
check "E's project counts nothing" "0" "SELECT count(*) FROM mixx_recall WHERE user_id = '$ue'"
dead_lettered "E's project is dead-lettered by prime-recall with its reason" \
  "prime.error.message=user $ue is not in prime_users.*prime.worker=recall"
check "no context kept for E, never registered, nor F, deleted" "0" \
  "SELECT count(*) FROM prime_pipeline.recall_context WHERE user_id IN ('$ue', '$uf')"
check "G's system preset is kept, as updated" '{"size": 0.7}' \
  "SELECT facts->'parameters' FROM prime_pipeline.recall_context WHERE user_id = '$ug'"
check "the materializer has G's system preset" "MixxCat" "SELECT plugin_type FROM plugin_presets WHERE id = '$ps' AND user_id IS NULL"
got=$(dead_letters | grep "prime.worker=recall" | grep -c "$ug")
[ "$got" = 0 ] && ok "prime-recall dead-letters none of G's" || bad "prime-recall dead-lettered $got of G's events"
# A replay runs prime-recall once the materializer has run to its end: what stays parked (E's) is
# parked for good, so it waits for none of it. (Its rows are not compared with the live ones: the
# replay's materializer reads Alice's and Bob's creates of one preset id from two partitions, in any
# order, and may give the preset to Bob.)
again=${PRIME_TEST_DB/dbname=prime/dbname=again}
if "$PRIME_REPLAY" -b "$PRIME_BROKERS" -X session.timeout.ms=6000 --db "$again" >"$tmp/replay.out" 2>"$tmp/replay.err"; then
  ok "prime-replay: $(cat "$tmp/replay.out")"
else
  bad "prime-replay failed: $(grep -E 'prime-replay|level=error' "$tmp/replay.err" | tail -5)"
fi
if grep -q "waiting for it" "$tmp/replay.err"; then
  bad "prime-recall waited in the replay: $(grep -m1 'waiting for it' "$tmp/replay.err")"
else
  ok "prime-recall in the replay waits for nothing parked"
fi
check "the materializer applied D's project" "$ud|dub" "SELECT user_id, genre FROM studio_projects WHERE id = '$pd'"
# The figures: five hostile or careless sources (Bob's claim, D's project before her registration, E
# never registered, F's create after F's delete, G's system preset without a user); lost: the uses that
# should count and do not (C's of Alice's preset, D's project after the dead letter's replay).
counted=$(psql -qAtc "SELECT count(*) FROM mixx_recall WHERE (user_id = '$uc' AND category = 'plugin' AND recall_key = 'MixxVerb')
  OR (user_id = '$ud' AND category = 'genre' AND recall_key = 'dub')")
attack_summary recall_hostile 5 $((2 - counted)) -
finish
