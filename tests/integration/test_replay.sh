#!/usr/bin/env bash
# prime-replay (issue 13), on a real Kafka broker (tests/with-stack --pg
# --kafka-real: it keeps all history). The first half is the studio day
# (tests/e2e/studio_day.sh: users, projects saved with a conflict, a mix and
# stems rendered and analysed, recall, presets, a collaboration, presence, a
# delete, a snapshot, a dead letter), run by its own live workers until
# settled. The live database is copied there (the midpoint, time T). A
# second half (a new user and project, saves and a stale one, an upload
# analysed, recall, a preset, a collaboration, presence, a snapshot, a
# delete) runs on live workers until settled. Then:
#   - prime-replay into a fresh database: exit 0, prime-verify says equal
#     (every table, audit_log included; a restore that waits for the
#     snapshot writer's row applied in its place), prime-audit verify --rows holds on
#     the copy, and no topic's end offset moved (nothing emitted);
#   - a second replay into that database is refused without --force;
#   - prime-replay --until T into another fresh database equals the copy
#     made at T;
#   - a topic whose history is truncated (records deleted with Kafka's
#     DeleteRecords, prime-test-delete-records) is refused by prime-replay,
#     and by a worker run on its own in replay mode (the missing range
#     named); --allow-gaps goes on and says what is missing.
set -uo pipefail
. "$(dirname "$0")/../support/testlib.sh"
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

brokers=${PRIME_TEST_BROKERS:?run under tests/with-stack --pg --kafka-real}
base=${PRIME_TEST_DB:?run under tests/with-stack --pg --kafka-real}
replay_bin=${PRIME_REPLAY:-prime-replay} verify_bin=${PRIME_VERIFY:-prime-verify} audit_bin=${PRIME_AUDIT:-prime-audit}
publish_bin=${PRIME_PUBLISH:-prime-publish}
export PRIME_STORAGE_ROOT=$tmp/storage
storage=$PRIME_STORAGE_ROOT

stop() { echo "$passed passed, $failed failed (stopped early)"; exit 1; }
db() { echo "$base dbname=$1"; } # a database of the test's server
kc() { kcat -b "$brokers" "$@"; }
ends() {
  local t
  for t in $(kc -L 2>/dev/null | sed -n 's/^  topic "\([^_][^"]*\)".*/\1/p' | sort); do
    kc -Q -t "$t:-1" 2>/dev/null # not every kcat has -Q with -1; fall back below
  done
}
ends() { # every partition's end offset, "topic partition end", from the broker
  kc -L -J 2>/dev/null | python3 -c '
import json, subprocess, sys
md = json.load(sys.stdin)
for t in sorted(md["topics"], key=lambda t: t["topic"]):
    if t["topic"].startswith("__"):
        continue
    for p in sorted(t["partitions"], key=lambda p: p["partition"]):
        # the last offset, as kcat consumes it from the end: -o -1 then exit
        out = subprocess.run(["kcat", "-b", sys.argv[1], "-C", "-t", t["topic"], "-p", str(p["partition"]),
                              "-o", "-1", "-e", "-q", "-f", "%o\n"], capture_output=True, text=True).stdout.split()
        print(t["topic"], p["partition"], int(out[-1]) + 1 if out else 0)
' "$brokers"
}
consumed() { psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = '$1' AND topic = '$2'"; }
records() { kc -C -t "$1" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l; }
caught_up() { # GROUP TOPIC...
  local g=$1 t
  shift
  for t in "$@"; do [ "$(consumed "$g" "$t")" -ge "$(records "$t")" ] || return 1; done
}
query_is() { [ "$(psql -qAtc "$2" 2>/dev/null)" = "$1" ]; }
wait_until() { # NAME SECONDS CONDITION...
  local name=$1 tries=$(($2 * 10))
  shift 2
  while [ "$tries" -gt 0 ]; do
    "$@" && return 0
    sleep 0.1
    tries=$((tries - 1))
  done
  bad "$name: not within the time allowed"
  tail -n 5 "$tmp"/*.log
  stop
}

# --- the first half: the studio day, its workers stopped once it is checked ------------------
if "$(dirname "$0")/../e2e/studio_day.sh" >"$tmp/studio_day.out" 2>&1; then
  ok "the studio day (first half): $(tail -1 "$tmp/studio_day.out")"
else
  bad "the studio day failed: $(grep FAIL "$tmp/studio_day.out" | head -5; tail -1 "$tmp/studio_day.out")"
  stop
fi
# The midpoint: every record so far is older than T, every record of the
# second half newer (the clock moved past T before it starts).
t_ms=$(date +%s%3N)
until_t=$(date -u -d "@$((t_ms / 1000)).$(printf %03d $((t_ms % 1000)))" +%Y-%m-%dT%H:%M:%S.%3NZ)
wait_until "the clock past T" 5 test "$(date +%s%3N)" -gt "$t_ms"
# No worker is connected any more: the copy is the database at T.
psql -qc "CREATE DATABASE mid TEMPLATE prime" >"$tmp/mid.out" 2>&1 && ok "the live database copied at T ($until_t)" ||
  { bad "copying the live database: $(cat "$tmp/mid.out")"; stop; }

# --- the second half, on live workers ---------------------------------------------------------
export PRIME_BROKERS=$brokers PRIME_DB=$base
common=(--linger-ms 100 "${group_x[@]}")
"${PRIME_MATERIALIZER:-prime-materializer}" "${common[@]}" >"$tmp/materializer.log" 2>&1 & pids+=($!)
"${PRIME_ANALYZER:-prime-analyzer}" --storage-root "$storage" --threads 2 "${common[@]}" >"$tmp/analyzer.log" 2>&1 & pids+=($!)
"${PRIME_SNAPSHOT_WRITER:-prime-snapshot-writer}" "${common[@]}" >"$tmp/snapshots.log" 2>&1 & pids+=($!)
"$audit_bin" writer "${common[@]}" >"$tmp/audit.log" 2>&1 & pids+=($!)
"${PRIME_RECALL:-prime-recall}" "${common[@]}" >"$tmp/recall.log" 2>&1 & pids+=($!)

nova=6f1c2a4e-3b5d-4e7f-8a9b-0c1d2e3f4a5b echo_=7a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d kai=8b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e
demos=3c8f0d2e-5a4b-4c9d-8e1f-2a3b4c5d6e7f preset=1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b
luna=9c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f tides=6e0a2f4b-7c6d-4e1f-8a3b-4c5d6e7f8091 bounce=6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d
keys=6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c3e collab=1a2b3c4d-5e6f-4708-9a1b-2c3d4e5f6a7b luna_session=c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f
mkdir -p "$storage/users/$luna"
sox -R -n -r 44100 -c 2 -b 16 "$storage/users/$luna/tides-bounce.wav" synth 8 pinknoise tremolo 2 30 vol -12dB &&
  sox -R -n -r 44100 -c 1 -b 16 "$storage/users/$luna/tides-keys.wav" synth 8 sine 330-660 vol -16dB ||
  { bad "sox could not render the audio"; stop; }
chmod -R a+rX "$storage"
n=0
ev() { # TYPE ACTOR OWNER HH:MM:SS FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"e2f00000-0000-4000-8000-%012d","occurred_at":"2026-11-26T%sZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"%s",%s}\n' \
    "$1" "$n" "$4" "$2" "$3" "${DEVICE:-studio-pc}" "$5"
}
upload() { # TYPE FILE_ID NAME EXTRA
  local bytes
  bytes=$(stat -c %s "$storage/users/$luna/$3")
  ev "$1" "$luna" "$luna" "$5" "\"file_id\":\"$2\",\"project_id\":\"$tides\",\"filename\":\"$3\",\"file_path\":\"users/$luna/$3\",\"file_size_bytes\":$bytes,\"mime_type\":\"audio/wav\",\"duration_seconds\":8.0,\"sample_rate\":44100,\"bit_depth\":16,\"channels\":2,\"format\":\"wav\",$4"
}
{
  ev user.registered "$luna" "$luna" 09:00:00 '"email":"luna@example.com","username":"luna_keys","display_name":"Luna","preferred_genres":["ambient"],"email_verified":false'
  ev project.created "$luna" "$luna" 09:10:00 "\"project_id\":\"$tides\",\"name\":\"Tides\",\"bpm\":90,\"key\":\"Am\",\"project_data\":{\"tracks\":[\"pad\"]},\"tags\":[\"ambient\"],\"genre\":\"ambient\""
  ev session.joined "$luna" "$luna" 09:11:00 "\"session_id\":\"$luna_session\",\"project_id\":\"$tides\",\"session_token_hash\":\"$(printf "e2f0%060d" 0)\",\"cursor_position\":0,\"active_tool\":\"brush\""
  for v in 1 2; do
    ev session.heartbeat "$luna" "$luna" "09:2$v:00" "\"session_id\":\"$luna_session\",\"cursor_position\":$((v * 8)).25,\"active_tool\":\"brush\""
    ev project.saved "$luna" "$luna" "09:2$v:30" "\"project_id\":\"$tides\",\"base_version\":$v,\"project_data\":{\"tracks\":[\"pad\",\"keys\"],\"save\":$v}"
  done
  DEVICE=tablet ev project.saved "$luna" "$luna" 09:30:00 "\"project_id\":\"$tides\",\"base_version\":1,\"project_data\":{\"tracks\":[\"stale\"]}"
  ev session.left "$luna" "$luna" 09:40:00 "\"session_id\":\"$luna_session\""
  upload audio.file_uploaded "$bounce" tides-bounce.wav '"tags":["mix"],"is_mix":true' 10:00:00
  upload audio.stem_uploaded "$keys" tides-keys.wav "\"tags\":[\"stem\"],\"stem_type\":\"keys\",\"parent_file_id\":\"$bounce\"" 10:01:00
  ev recall.set "$luna" "$luna" 10:10:00 '"category":"plugin","recall_key":"MixxVerb","data":{"size":0.8},"confidence":0.5'
  ev recall.used "$nova" "$nova" 10:11:00 '"category":"plugin","recall_key":"MixxDrive","data":{"mix":0.9}'
  ev preset.used "$luna" "$luna" 10:12:00 "\"preset_id\":\"$preset\""
  ev collab.started "$luna" "$luna" 10:20:00 "\"collab_session_id\":\"$collab\",\"project_id\":\"$tides\",\"session_name\":\"Keys\""
  ev collab.participant_joined "$nova" "$luna" 10:21:00 "\"collab_session_id\":\"$collab\",\"user_id\":\"$nova\",\"role\":\"editor\""
  ev collab.participant_left "$nova" "$luna" 10:40:00 "\"collab_session_id\":\"$collab\",\"user_id\":\"$nova\""
  ev project.deleted "$echo_" "$echo_" 11:00:00 "\"project_id\":\"$demos\""
} >"$tmp/second.jsonl"
"$publish_bin" "$tmp/second.jsonl" >"$tmp/publish.out" 2>&1 || { bad "publishing: $(cat "$tmp/publish.out")"; stop; }
wait_until "the bounce and the keys analysed" 90 query_is 2 \
  "SELECT count(*) FROM audio_files WHERE project_id = '$tides' AND audio_analysis ? 'loudness'"
{
  ev project.snapshot_requested "$luna" "$luna" 12:00:00 "\"project_id\":\"$tides\",\"snapshot_type\":\"milestone\",\"snapshot_name\":\"Keys in\",\"description\":\"pad and keys\""
  ev collab.ended "$luna" "$luna" 12:10:00 "\"collab_session_id\":\"$collab\",\"notes\":\"keys done\""
} >"$tmp/second2.jsonl"
"$publish_bin" "$tmp/second2.jsonl" >"$tmp/publish.out" 2>&1 || { bad "publishing: $(cat "$tmp/publish.out")"; stop; }
wait_until "the snapshot written" 60 query_is 1 "SELECT count(*) FROM project_snapshots WHERE project_id = '$tides'"
# A restore of it and a save on top: in a replay the restore waits (parked) for the snapshot the other
# worker stores, and the save must still come after it, as live.
snap=$(psql -qAtc "SELECT id FROM project_snapshots WHERE project_id = '$tides'")
{
  ev project.restored "$luna" "$luna" 12:20:00 "\"project_id\":\"$tides\",\"snapshot_id\":\"$snap\""
  ev project.saved "$luna" "$luna" 12:30:00 "\"project_id\":\"$tides\",\"base_version\":4,\"project_data\":{\"tracks\":[\"pad\",\"keys\",\"bass\"]}"
} >"$tmp/second3.jsonl"
"$publish_bin" "$tmp/second3.jsonl" >"$tmp/publish.out" 2>&1 || { bad "publishing: $(cat "$tmp/publish.out")"; stop; }
wait_until "the restore and the save after it applied" 60 query_is 5 "SELECT project_version FROM studio_projects WHERE id = '$tides'"
wait_until "the materializer caught up" 90 caught_up prime-materializer prime.users prime.auth prime.projects \
  prime.audio prime.recall prime.sessions prime.presets prime.collab prime.analysis
wait_until "the outbox relayed" 60 query_is 0 "SELECT count(*) FROM prime_pipeline.outbox"
wait_until "the snapshot writer caught up" 60 caught_up prime-snapshot-writer prime.snapshots
# Its audit records, made as it caught up, relayed before prime.audit is counted.
wait_until "the outbox relayed again" 60 query_is 0 "SELECT count(*) FROM prime_pipeline.outbox"
wait_until "the audit writer caught up" 60 caught_up prime-audit-writer prime.audit
wait_until "prime-recall caught up" 60 caught_up prime-recall prime.recall prime.projects prime.presets prime.users \
  prime.audio prime.analysis
check "the second half applied: Tides at version 5 (the tablet's stale save not; restored, saved), Echo Demos deleted" "Midnight Drive|4
Tides|5" "SELECT name, project_version FROM studio_projects ORDER BY name"
for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
for p in "${pids[@]}"; do wait "$p" 2>/dev/null || bad "a live worker exited with $? on SIGTERM"; done
pids=()
ok "the second half settled: $(psql -qAtc "SELECT count(*) FROM prime_pipeline.audit_log") audit records"

# --- a replay of everything ---------------------------------------------------------------------
ends >"$tmp/ends.before"
grep -q "^prime.dlq " "$tmp/ends.before" && [ -s "$tmp/ends.before" ] || { bad "no end offsets read: $(cat "$tmp/ends.before")"; stop; }
if "$replay_bin" -b "$brokers" --db "$(db full)" >"$tmp/replay.out" 2>"$tmp/replay.err"; then
  ok "prime-replay into a fresh database: $(cat "$tmp/replay.out")"
else
  bad "prime-replay failed: $(grep -E 'prime-replay|level=error' "$tmp/replay.err" | tail -5)"
  stop
fi
grep -q "created database full" "$tmp/replay.err" && ok "the target database created" || bad "no 'created database' in the log"
grep -q 'msg="replay finished".*complete=yes dead_letters_not_sent=1 ' "$tmp/replay.err" &&
  ok "the materializer counted the studio day's dead letter, not sent" ||
  bad "dead letters in the replay: $(grep 'replay finished' "$tmp/replay.err")"
# Each of the three finished (those that left events parked for another's rows ran again, to take them up).
for w in materializer snapshot-writer audit-writer; do
  grep -q "worker=$w msg=\"replay finished\" complete=yes" "$tmp/replay.err" || bad "$w did not finish its replay"
done
[ "$(grep -c 'msg="replay finished" complete=no' "$tmp/replay.err")" = 0 ] &&
  ok "the materializer, the snapshot writer and the audit writer finished their replay ($(grep -c 'replay finished' "$tmp/replay.err") runs)" ||
  bad "the workers' ends: $(grep 'replay finished' "$tmp/replay.err")"
[ "$(psql -d full -qAtc "SELECT count(*) FROM prime_pipeline.parked_events")" = 0 ] &&
  ok "nothing left parked in the copy (the snapshot and the restore that waited for each other's rows applied)" ||
  bad "parked in the copy: $(psql -d full -qAtc "SELECT group_id, waiting_for FROM prime_pipeline.parked_events")"
# Every table, mixx_recall included: prime-recall ran live beside the materializer, and in the
# replay after it; it learns from the events alone, so both give its rows to the digit.
[ "$(psql -qAtc "SELECT count(*) FROM mixx_recall")" -gt 10 ] && ok "the live run learned $(psql -qAtc "SELECT count(*) FROM mixx_recall") recall rows" ||
  bad "too few recall rows live: $(psql -qAtc "SELECT count(*) FROM mixx_recall")"
tables=()
for t in prime_users studio_projects project_snapshots session_states audio_files plugin_presets mixx_recall \
  collaboration_sessions auth_credentials auth_sessions prime_pipeline.audit_log; do tables+=(--table "$t"); done
# and what prime-recall's rows are computed from (pipeline state, which prime-verify leaves out)
recall_digest() {
  psql -d "$1" -qAtc "SELECT md5(coalesce((SELECT string_agg(id || state::text, '|' ORDER BY id) FROM prime_pipeline.recall_state), '')
    || coalesce((SELECT string_agg(user_id || kind || ref_id || facts::text, '|' ORDER BY user_id, kind, ref_id) FROM prime_pipeline.recall_context), ''))"
}
[ "$(recall_digest prime)" = "$(recall_digest full)" ] && ok "prime-recall's state and context in the replay equal the live ones" ||
  bad "prime-recall's state or context differ in the replay"
"$verify_bin" "${tables[@]}" "$base" "$(db full)" >"$tmp/verify.out" 2>&1 &&
  ok "prime-verify: the replayed database equals the live one ($(tail -1 "$tmp/verify.out"))" ||
  bad "prime-verify: $(head -20 "$tmp/verify.out"; "$verify_bin" --diff=3 "$base" "$(db full)" 2>&1 | head -30)"
"$audit_bin" verify --rows --db "$(db full)" >"$tmp/audit_verify.out" 2>&1 &&
  ok "prime-audit verify --rows on the copy: $(head -1 "$tmp/audit_verify.out")" ||
  bad "prime-audit verify --rows on the copy: $(cat "$tmp/audit_verify.out")"
[ "$(psql -d full -qAtc "SELECT count(*) FROM prime_pipeline.outbox")" = 0 ] &&
  ok "no outbox row in the copy" || bad "outbox rows in the copy"
ends >"$tmp/ends.after"
diff "$tmp/ends.before" "$tmp/ends.after" >"$tmp/ends.diff" &&
  ok "no topic's end offset moved: nothing emitted ($(wc -l <"$tmp/ends.before") partitions)" ||
  bad "the replay moved end offsets: $(cat "$tmp/ends.diff")"

# --- a second replay into it: refused ---------------------------------------------------------
"$replay_bin" -b "$brokers" --db "$(db full)" >"$tmp/again.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "the target holds [0-9]* rows; give --force" "$tmp/again.out" &&
  ok "a second replay into the non-empty target refused without --force" || bad "second replay: exit $rc: $(cat "$tmp/again.out")"

# --- --until the midpoint ----------------------------------------------------------------------
if "$replay_bin" -b "$brokers" --db "$(db upto)" --until "$until_t" >"$tmp/until.out" 2>"$tmp/until.err"; then
  ok "prime-replay --until $until_t: $(cat "$tmp/until.out")"
else
  bad "prime-replay --until failed: $(grep -E 'prime-replay|level=error' "$tmp/until.err" | tail -5)"
fi
"$verify_bin" "${tables[@]}" "$(db mid)" "$(db upto)" >"$tmp/verify_mid.out" 2>&1 &&
  ok "prime-verify: the replay up to T equals the database copied at T" ||
  bad "prime-verify --until: $(head -20 "$tmp/verify_mid.out"; "$verify_bin" --diff=3 "$(db mid)" "$(db upto)" 2>&1 | head -30)"
"$verify_bin" "${tables[@]}" "$base" "$(db upto)" >/dev/null 2>&1
[ $? = 1 ] && ok "and it differs from the whole (the second half is not in it)" || bad "the replay up to T equals the whole"

# --- a truncated topic ---------------------------------------------------------------------------
# prime.presets: the partition with records loses its first one.
part=$(awk '$1 == "prime.presets" && $3 > 1 { print $2; exit }' "$tmp/ends.before")
[ -n "$part" ] || { bad "no partition of prime.presets with two records: $(grep presets "$tmp/ends.before")"; stop; }
"${PRIME_TEST_DELETE_RECORDS:?}" "$brokers" prime.presets "$part" 1 >"$tmp/delete.out" 2>&1 &&
  ok "prime.presets [$part] truncated: $(cat "$tmp/delete.out")" || { bad "DeleteRecords: $(cat "$tmp/delete.out")"; stop; }
"$replay_bin" -b "$brokers" --db "$(db gone)" >"$tmp/gone.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "prime.presets \[$part\]: its history starts at offset 1: 1 records are gone" "$tmp/gone.out" &&
  grep -q "refused: the topics' history is truncated" "$tmp/gone.out" &&
  ok "prime-replay refuses the truncated topic, naming it" || bad "truncated topic: exit $rc: $(cat "$tmp/gone.out")"
[ "$(psql -d gone -qAtc "SELECT count(*) FROM prime_users")" = 0 ] && ok "the refused target is empty" ||
  bad "the refused target has rows"
# A worker on its own in replay mode refuses the gap too, naming the range.
printf 'prime.presets %s %s\n' "$part" "$(awk -v p="$part" '$1 == "prime.presets" && $2 == p { print $3 }' "$tmp/ends.before")" >"$tmp/until.file"
"${PRIME_MATERIALIZER:-prime-materializer}" -b "$brokers" --db "$(db gone)" --group gap-check --topics prime.presets \
  --replay-until "$tmp/until.file" >"$tmp/gap.log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "replay refused: records are missing.*topic=prime.presets partition=$part missing_from=0 missing_to=0" "$tmp/gap.log" &&
  ok "a worker in replay mode refuses the gap, naming topic, partition and range" || bad "worker gap: exit $rc: $(tail -3 "$tmp/gap.log")"
"$replay_bin" -b "$brokers" --db "$(db gaps)" --allow-gaps >"$tmp/gaps.out" 2>&1
rc=$?
[ "$rc" = 0 ] && grep -q "1 records were gone from the topics and are not in the target" "$tmp/gaps.out" &&
  grep -q "records_missing=1" "$tmp/gaps.out" &&
  ok "--allow-gaps replays what is left and says what is missing" || bad "--allow-gaps: exit $rc: $(grep -E 'prime-replay|error' "$tmp/gaps.out" | tail -5)"
# A file that is not "topic partition offset": refused before anything is read, naming the line.
printf 'prime.users 0 5\nprime.users zero 7\n' >"$tmp/bad.file"
"${PRIME_MATERIALIZER:-prime-materializer}" -b "$brokers" --db "$(db gone)" --replay-until "$tmp/bad.file" >"$tmp/bad.log" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q 'bad.file line 2: expected .*topic partition offset' "$tmp/bad.log" &&
  ok "a malformed --replay-until file refused, naming its line" || bad "bad file: exit $rc: $(tail -2 "$tmp/bad.log")"
finish
