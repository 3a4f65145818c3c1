#!/usr/bin/env bash
# Parking's bounds (issue 12 items 8 and 9), prime-materializer against the
# dev broker and an ephemeral PostgreSQL: a stream parks at most
# --park-max-per-stream events and the ones beyond are dead-lettered with the
# reason; a stream of 2,500 parked events comes out in chunks of at most 1,000
# and applies in its order; a parked event dead-lettered after its wait
# carries the Kafka headers it was published with.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

published=0 # records published so far, on every topic
publish() { # FILE
  "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
  published=$((published + $(grep -c . "$1")))
}
drain() { # ARGS...: run the materializer until it has consumed everything published, then stop it
  "$PRIME_MATERIALIZER" --group park --linger-ms 200 "${group_x[@]}" "$@" >>"$tmp/mat.log" 2>&1 &
  local pid=$! last=-1
  for _ in $(seq 600); do
    last=$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'park'")
    [ "$last" -ge "$published" ] && break
    sleep 0.1
  done
  kill -TERM "$pid"; wait "$pid"
}
count_dead() { dead_letters | grep -cE "$1"; }
n=0
ev() { # TYPE OWNER SECOND JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:%02dZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" $(($3 / 60 % 60)) $(($3 % 60)) "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$3@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"preferred_genres\":[],\"email_verified\":false"; }
preset() { # OWNER SECOND I: a private preset named kI
  ev preset.created "$1" "$2" "\"preset_id\":\"$(printf 'cccccccc-0000-4000-8000-%012d' "$3")\",\"name\":\"k$3\",\"plugin_type\":\"MixxDrive\",\"parameters\":{\"v\":$3},\"is_public\":false,\"is_system_preset\":false,\"tags\":[]"
}

# 1. The bound: five presets of an owner not registered, with
# --park-max-per-stream 3: three park, the two after them are dead-lettered
# (the newcomer, not a parked one).
u5=55555555-5555-4555-8555-555555555555
for i in 1 2 3 4 5; do preset "$u5" "$i" "$i"; done >"$tmp/bound.jsonl"
publish "$tmp/bound.jsonl"
drain --park-max-per-stream 3
check "the first three events of the stream are parked" "0,1,2" \
  "SELECT string_agg(source_offset::text, ',' ORDER BY source_offset) FROM prime_pipeline.parked_events WHERE group_id = 'park'"
got=$(count_dead "prime.error.message=stream prime.presets/$u5 has 3 events parked waiting for prime_users:$u5,prime.source.topic=prime.presets,prime.source.partition=[0-9]+,prime.source.offset=(3|4),")
if [ "$got" = 2 ]; then ok "the two beyond the bound (offsets 3 and 4) are dead-lettered, naming the stream, the count and the row"
else bad "dead letters beyond the bound: $got, expected 2"; fi
user "$u5" 10 five >"$tmp/reg.jsonl"
publish "$tmp/reg.jsonl"
drain --park-max-per-stream 3
check "when the owner registers, the three parked apply (the first three of the stream)" "k1,k2,k3" \
  "SELECT string_agg(name, ',' ORDER BY name) FROM plugin_presets WHERE user_id = '$u5'"
check "and nothing of the stream is parked" "0" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'park'"

# 2. Chunks: a project and 2,499 saves of an owner not registered park (under
# the default bound of 10,000); when the owner registers they come out a
# chunk of at most 1,000 at a time, in stream order: the last save's version.
u6=66666666-6666-4666-8666-666666666666 p6=dddddddd-dddd-4ddd-8ddd-dddddddddddd
{
  ev project.created "$u6" 0 "\"project_id\":\"$p6\",\"name\":\"Long\",\"project_data\":{\"v\":1}"
  for v in $(seq 1 2499); do
    ev project.saved "$u6" $((v % 3000)) "\"project_id\":\"$p6\",\"base_version\":$v,\"project_data\":{\"v\":$((v + 1))}"
  done
} >"$tmp/long.jsonl"
publish "$tmp/long.jsonl"
drain --snapshot-every 0
check "2,500 events of one stream parked" "2500" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'park'"
: >"$tmp/mat.log"
user "$u6" 10 six >"$tmp/reg.jsonl"
publish "$tmp/reg.jsonl"
drain --snapshot-every 0
check "they apply in their order: the project at version 2,500" "2500|{\"v\": 2500}" \
  "SELECT project_version, project_data::text FROM studio_projects WHERE id = '$p6'"
chunks=$(grep 'unparking events whose parent was written' "$tmp/mat.log" | sed 's/.*events=\([0-9]*\).*/\1/')
largest=$(printf '%s\n' $chunks | sort -n | tail -1)
total=$(printf '%s\n' $chunks | paste -sd+ | bc)
if [ -n "$largest" ] && [ "$largest" -le 1000 ] && [ "$total" = 2500 ]; then
  ok "taken out in chunks of at most 1,000 ($(echo $chunks | tr ' ' ','))"
else
  bad "chunks: [$(echo $chunks | tr ' ' ',')], expected each at most 1000, 2500 in all"
fi

# 3. A parked event keeps its headers: published with a trace header (kcat
# -H), parked for an owner who never registers, dead-lettered after
# --park-max-seconds with the trace header and the reason.
u7=77777777-7777-4777-8777-777777777777
preset "$u7" 20 7 | "$PRIME_CODEC" encode >"$tmp/traced.bin" || exit 1
kcat -b "$PRIME_BROKERS" -P -t prime.presets -k "$u7" -H trace=t-0042 -H "prime.event_type=preset.created" "$tmp/traced.bin" 2>/dev/null \
  || { bad "kcat could not publish"; finish; exit 1; }
published=$((published + 1))
drain
check "the traced event is parked" "1" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'park'"
# Expired by the idle housekeeping of a materializer left running until the
# dead letter is there.
"$PRIME_MATERIALIZER" --group park --park-max-seconds 1 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
pid=$!
for _ in $(seq 150); do
  [ "$(count_dead "prime_users:$u7 was not written")" -ge 1 ] && break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"
dead_lettered "the expired event's dead letter carries its original headers" \
  "trace=t-0042.*prime.error.message=unresolved: prime_users:$u7 was not written within 1 seconds"
check "and is no longer parked" "0" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'park'"

if [ "$failed" != 0 ]; then
  echo "--- the materializer's warnings and errors:"
  grep -E 'level=(warn|error)' "$tmp/mat.log" | tail -20
fi
finish
