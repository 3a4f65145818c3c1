#!/usr/bin/env bash
# studio_day.sh: one end-to-end scenario for every stack (the dev broker, a
# real Kafka broker, compose). A realistic studio day published through the
# real CLI (prime-publish): three users, their projects saved (one stale save
# from a second machine), a mix and two stems rendered as audio files with
# sox into the storage root and analysed, Mixx Recall and presets in use, a
# collaboration with presence, a project deleted, a milestone snapshot, and
# one record a broken client wrote. Then it checks, from PostgreSQL and the
# topics: exact table contents, the analyses, the audit log verifying
# (prime-audit verify --rows), the snapshot trail, the bad record in
# prime.dlq with its reason, and that no secret left its column.
#
# Environment: PRIME_BROKERS, PRIME_DB and the PG* variables (or the
# PRIME_TEST_* of tests/with-stack, a real broker's SASL listener preferred);
# PRIME_KAFKA_X, "key=value ..." given as -X to every Kafka client (kcat,
# prime-publish, every worker); PRIME_STORAGE_ROOT, the workers' storage
# (a temporary one by default); PRIME_E2E_WORKERS=external when the workers
# already run (compose), else the scenario starts its own and stops them.
# The programs are PRIME_PUBLISH, PRIME_MATERIALIZER, ... or found on PATH.
set -uo pipefail
. "$(dirname "$0")/../support/testlib.sh"
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT

export PRIME_BROKERS=${PRIME_TEST_KAFKA_SASL_BROKERS:-${PRIME_TEST_BROKERS:-${PRIME_BROKERS:?PRIME_BROKERS is not set}}}
export PRIME_DB=${PRIME_TEST_DB:-${PRIME_DB:-}}
kafka_x=${PRIME_TEST_KAFKA_SASL_X:-${PRIME_KAFKA_X:-}}
kx=()
for p in $kafka_x; do kx+=(-X "$p"); done
publish_bin=${PRIME_PUBLISH:-prime-publish} migrate_bin=${PRIME_MIGRATE:-prime-migrate}
audit_bin=${PRIME_AUDIT:-prime-audit} analyze_bin=${PRIME_ANALYZE:-prime-analyze}
storage=${PRIME_STORAGE_ROOT:-$tmp/storage}
external=${PRIME_E2E_WORKERS:-}
echo "# brokers $PRIME_BROKERS${kafka_x:+ (with -X ${kafka_x//sasl.password=[^ ]*/sasl.password=...})}, storage $storage${external:+, workers external}"

kc() { kcat -b "$PRIME_BROKERS" "${kx[@]}" "$@"; }
records() { kc -C -t "$1" -o beginning -e -q -f 'x\n' 2>/dev/null | wc -l; }
consumed() { psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = '$1' AND topic = '$2'"; }
wait_until() { # NAME SECONDS CONDITION...: until the condition (a command) holds
  local name=$1 tries=$(($2 * 10))
  shift 2
  while [ "$tries" -gt 0 ]; do
    "$@" && return 0
    sleep 0.1
    tries=$((tries - 1))
  done
  # What follows depends on it: stop here, with what the workers said.
  bad "$name: not within the time allowed"
  [ -z "$external" ] && tail -n 5 "$tmp"/*.log
  finish
  exit 1
}
query_is() { [ "$(psql -qAtc "$2" 2>/dev/null)" = "$1" ]; }
# GROUP TOPIC...: the group's stored offsets have reached the end of each topic.
caught_up() {
  local g=$1 t
  shift
  for t in "$@"; do [ "$(consumed "$g" "$t")" -ge "$(records "$t")" ] || return 1; done
}
publish() {
  "$publish_bin" "${kx[@]}" "$1" >"$tmp/publish.out" 2>&1 || { bad "publishing $1: $(cat "$tmp/publish.out")"; finish; exit 1; }
}

"$migrate_bin" >/dev/null || { bad "prime-migrate failed"; finish; exit 1; }
if [ -z "$external" ]; then
  common=(--linger-ms 100 "${group_x[@]}" "${kx[@]}")
  "${PRIME_MATERIALIZER:-prime-materializer}" "${common[@]}" >"$tmp/materializer.log" 2>&1 & pids+=($!)
  "${PRIME_ANALYZER:-prime-analyzer}" --storage-root "$storage" --threads 2 "${common[@]}" >"$tmp/analyzer.log" 2>&1 & pids+=($!)
  "${PRIME_SNAPSHOT_WRITER:-prime-snapshot-writer}" "${common[@]}" >"$tmp/snapshots.log" 2>&1 & pids+=($!)
  "$audit_bin" writer "${common[@]}" >"$tmp/audit.log" 2>&1 & pids+=($!)
  # prime-recall from the start, beside the materializer, as deployed: it
  # learns from the events, not from the materializer's rows (docs/recall.md).
  "${PRIME_RECALL:-prime-recall}" "${common[@]}" >"$tmp/recall.log" 2>&1 & pids+=($!)
fi

# --- the cast, their files -------------------------------------------------------------
nova=6f1c2a4e-3b5d-4e7f-8a9b-0c1d2e3f4a5b echo_=7a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d kai=8b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e
drive=2b7e9c1d-4f3a-4b8c-9d0e-1f2a3b4c5d6e demos=3c8f0d2e-5a4b-4c9d-8e1f-2a3b4c5d6e7f scratch=4d9a1e3f-6b5c-4d0e-9f2a-3b4c5d6e7f80
mix=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d drums=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c2e vox=5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c3f
cred=9d8c7b6a-5f4e-4d3c-8b2a-190817263544 preset=1e2d3c4b-5a69-4788-9a0b-1c2d3e4f5a6b
collab=0f1e2d3c-4b5a-4697-8a8b-9c0d1e2f3a4b nova_session=a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d echo_session=b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e
secret='$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$5ecre7ha5h5ecre7ha5h5ecre7ha5h5ecre7ha5h'

mkdir -p "$storage/users/$nova" "$storage/users/$echo_"
# A 12-second mix and its two stems: real WAV files the analyzer decodes.
sox -R -n -r 48000 -c 2 -b 24 "$storage/users/$nova/midnight-drive-mix.wav" synth 12 pinknoise tremolo 1.5 40 vol -14dB &&
  sox -R -n -r 48000 -c 2 -b 24 "$storage/users/$nova/midnight-drive-drums.wav" synth 12 brownnoise tremolo 4 80 vol -10dB &&
  sox -R -n -r 48000 -c 1 -b 24 "$storage/users/$echo_/midnight-drive-vox.wav" synth 12 sine 220-880 vol -18dB ||
  { bad "sox could not render the audio"; finish; exit 1; }
chmod -R a+rX "$storage"

n=0
ev() { # TYPE ACTOR OWNER HH:MM:SS FIELDS: one event line, ids numbered in order
  n=$((n + 1))
  printf '{"type":"%s","event_id":"e2e00000-0000-4000-8000-%012d","occurred_at":"2026-11-25T%sZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"%s",%s}\n' \
    "$1" "$n" "$4" "$2" "$3" "${DEVICE:-studio-mac}" "$5"
}
wav() { # FILE_ID PATH IS_MIX|STEM: an upload of one of the files above
  local file=$storage/$2 bytes
  bytes=$(stat -c %s "$file")
  if [ "$3" = stem ]; then
    printf '"file_id":"%s","project_id":"%s","filename":"%s","file_path":"%s","file_size_bytes":%s,"mime_type":"audio/wav","duration_seconds":12.0,"sample_rate":48000,"bit_depth":24,"channels":2,"format":"wav","tags":["stem"],"stem_type":"%s","parent_file_id":"%s"' \
      "$1" "$drive" "${2##*/}" "$2" "$bytes" "$4" "$mix"
  else
    printf '"file_id":"%s","project_id":"%s","filename":"%s","file_path":"%s","file_size_bytes":%s,"mime_type":"audio/wav","duration_seconds":12.0,"sample_rate":48000,"bit_depth":24,"channels":2,"format":"wav","tags":["mix"],"is_mix":true' \
      "$1" "$drive" "${2##*/}" "$2" "$bytes"
  fi
}

# --- morning: accounts, projects, saves, a conflict, presence, a collaboration ----------
{
  ev user.registered "$nova" "$nova" 09:00:00 '"email":"nova@example.com","username":"nova_beats","display_name":"Nova","preferred_genres":["trap","hip-hop"],"default_bpm":140,"default_key":"C#m","email_verified":false'
  ev auth.credential_created "$nova" "$nova" 09:00:01 "\"credential_id\":\"$cred\",\"credential_type\":\"email_password\",\"email\":\"nova@example.com\",\"password_hash\":\"$secret\""
  ev user.registered "$echo_" "$echo_" 09:05:00 '"email":"echo@example.com","username":"echo_sings","display_name":"Echo","email_verified":false'
  ev user.registered "$kai" "$kai" 09:10:00 '"email":"kai@example.com","username":"kai_mixes","display_name":"Kai","email_verified":false'
  ev project.created "$nova" "$nova" 09:20:00 "\"project_id\":\"$drive\",\"name\":\"Midnight Drive\",\"bpm\":140,\"key\":\"C#m\",\"project_data\":{\"tracks\":[\"808\"]},\"tags\":[\"trap\",\"night\"],\"genre\":\"trap\""
  ev project.created "$echo_" "$echo_" 09:25:00 "\"project_id\":\"$demos\",\"name\":\"Echo Demos\",\"project_data\":{\"tracks\":[]}"
  ev project.created "$kai" "$kai" 09:30:00 "\"project_id\":\"$scratch\",\"name\":\"Scratch\",\"project_data\":{}"
  ev session.joined "$nova" "$nova" 09:31:00 "\"session_id\":\"$nova_session\",\"project_id\":\"$drive\",\"session_token_hash\":\"$secret\",\"cursor_position\":0,\"active_tool\":\"pencil\""
  for v in 1 2 3; do
    ev session.heartbeat "$nova" "$nova" "09:4$v:00" "\"session_id\":\"$nova_session\",\"cursor_position\":$((v * 16)).5,\"active_tool\":\"pencil\""
    ev project.saved "$nova" "$nova" "09:4$v:30" "\"project_id\":\"$drive\",\"base_version\":$v,\"project_data\":{\"tracks\":[\"808\",\"Lead Vox\"],\"save\":$v}"
  done
  # The laptop, still on version 2, saves too: a conflict, not applied.
  DEVICE=laptop ev project.saved "$nova" "$nova" 09:50:00 "\"project_id\":\"$drive\",\"base_version\":2,\"project_data\":{\"tracks\":[\"stale\"]}"
  ev project.saved "$echo_" "$echo_" 09:55:00 "\"project_id\":\"$demos\",\"base_version\":1,\"project_data\":{\"tracks\":[\"Hook\"]}"
  ev project.saved "$kai" "$kai" 09:56:00 "\"project_id\":\"$scratch\",\"base_version\":1,\"project_data\":{\"tried\":true}"
  ev collab.started "$nova" "$nova" 10:00:00 "\"collab_session_id\":\"$collab\",\"project_id\":\"$drive\",\"session_name\":\"Vocal session\""
  ev collab.participant_joined "$echo_" "$nova" 10:01:00 "\"collab_session_id\":\"$collab\",\"user_id\":\"$echo_\",\"role\":\"editor\""
  ev collab.participant_joined "$kai" "$nova" 10:02:00 "\"collab_session_id\":\"$collab\",\"user_id\":\"$kai\",\"role\":\"viewer\""
  ev collab.participant_left "$kai" "$nova" 10:20:00 "\"collab_session_id\":\"$collab\",\"user_id\":\"$kai\""
  ev session.left "$nova" "$nova" 10:30:00 "\"session_id\":\"$nova_session\""
  # Mixx Recall learns Nova's drive setting; a preset of Kai's, public, used by all three.
  ev recall.set "$nova" "$nova" 10:31:00 '"category":"plugin","recall_key":"MixxDrive","data":{"drive":0.3},"confidence":0.5'
  for m in 32 33 34; do
    ev recall.used "$nova" "$nova" "10:$m:00" "\"category\":\"plugin\",\"recall_key\":\"MixxDrive\",\"data\":{\"mix\":0.$((m - 28))}"
  done
  ev preset.created "$kai" "$kai" 10:40:00 "\"preset_id\":\"$preset\",\"name\":\"Air Vox\",\"plugin_type\":\"eq\",\"parameters\":{\"high_shelf_db\":3},\"is_public\":true,\"is_system_preset\":false,\"tags\":[\"vocal\"]"
  ev preset.used "$kai" "$kai" 10:41:00 "\"preset_id\":\"$preset\""
  ev preset.used "$nova" "$nova" 10:42:00 "\"preset_id\":\"$preset\""
  ev preset.used "$echo_" "$echo_" 10:43:00 "\"preset_id\":\"$preset\""
  # The mix and its stems, rendered and uploaded.
  ev audio.file_uploaded "$nova" "$nova" 11:00:00 "$(wav "$mix" "users/$nova/midnight-drive-mix.wav" mix)"
  ev audio.stem_uploaded "$nova" "$nova" 11:01:00 "$(wav "$drums" "users/$nova/midnight-drive-drums.wav" stem drums)"
  ev audio.stem_uploaded "$nova" "$nova" 11:02:00 "$(wav "$vox" "users/$echo_/midnight-drive-vox.wav" stem vocals)"
  ev session.joined "$echo_" "$echo_" 11:05:00 "\"session_id\":\"$echo_session\",\"project_id\":\"$demos\",\"session_token_hash\":\"$(printf "e2e0%060d" 0)\",\"cursor_position\":4.25,\"active_tool\":\"select\""
} >"$tmp/morning.jsonl"
publish "$tmp/morning.jsonl"
morning=$n

wait_until "the three files analysed" 90 query_is 3 \
  "SELECT count(*) FROM audio_files WHERE audio_analysis ? 'loudness'" && ok "the mix and both stems analysed"

# --- afternoon: the mix analysed, Nova marks a milestone; Kai drops his scratch project -----
{
  ev project.snapshot_requested "$nova" "$nova" 14:00:00 "\"project_id\":\"$drive\",\"snapshot_type\":\"milestone\",\"snapshot_name\":\"First mix\",\"description\":\"808 and vocals balanced\""
  ev project.deleted "$kai" "$kai" 14:10:00 "\"project_id\":\"$scratch\""
  ev collab.ended "$nova" "$nova" 14:20:00 "\"collab_session_id\":\"$collab\",\"notes\":\"vocals comped\""
} >"$tmp/afternoon.jsonl"
publish "$tmp/afternoon.jsonl"
grep -q ": $((n - morning)) lines: $((n - morning)) sent and delivered" "$tmp/publish.out" &&
  ok "prime-publish sent and delivered every line" || bad "prime-publish: $(cat "$tmp/publish.out")"
# A client with a broken encoder writes straight to the topic.
printf 'mix=1;bpm=140' | kc -P -t prime.projects -k "$nova" 2>/dev/null || bad "kcat could not write the bad record"

# --- settled: every worker has read its topics to the end, nothing waits ------------------
wait_until "the materializer caught up" 90 caught_up prime-materializer prime.users prime.auth prime.projects \
  prime.audio prime.recall prime.sessions prime.presets prime.collab prime.analysis && ok "the materializer read every topic to its end"
wait_until "the outbox relayed" 60 query_is 0 "SELECT count(*) FROM prime_pipeline.outbox" && ok "the outbox is empty"
wait_until "the snapshot writer caught up" 60 caught_up prime-snapshot-writer prime.snapshots && ok "the snapshot writer read prime.snapshots to its end"
# The snapshot writer's audit records, made as it caught up, relayed before prime.audit is counted.
wait_until "the outbox relayed again" 60 query_is 0 "SELECT count(*) FROM prime_pipeline.outbox"
wait_until "the audit writer caught up" 60 caught_up prime-audit-writer prime.audit && ok "the audit writer read prime.audit to its end"
wait_until "prime-recall caught up" 60 caught_up prime-recall prime.recall prime.projects prime.presets prime.users \
  prime.audio prime.analysis && ok "prime-recall read its topics to the end"
check "nothing parked" "0" "SELECT count(*) FROM prime_pipeline.parked_events"

# --- the tables ------------------------------------------------------------------------
check "users: as registered, Nova's email verified by nobody yet" \
  "echo_sings|Echo|{}|f
kai_mixes|Kai|{}|f
nova_beats|Nova|{trap,hip-hop}|f" \
  "SELECT username, display_name, preferred_genres, email_verified FROM prime_users ORDER BY username"
check "projects: Midnight Drive at version 4 (the laptop's stale save not applied), Scratch deleted" \
  "Echo Demos|2|{\"tracks\": [\"Hook\"]}|2026-11-25 09:55:00+00
Midnight Drive|4|{\"save\": 3, \"tracks\": [\"808\", \"Lead Vox\"]}|2026-11-25 09:43:30+00" \
  "SELECT name, project_version, project_data, last_saved_at FROM studio_projects ORDER BY name"
lufs=$("$analyze_bin" "$storage/users/$nova/midnight-drive-mix.wav" | python3 -c 'import json, sys; a = json.load(sys.stdin)["analysis"]; print("%.2f|%.2f" % (a["loudness"]["integrated_lufs"], a["dynamics"]["dr"]))')
check "the mix's loudness and dynamic range reached the project, as prime-analyze measures them" "$lufs" \
  "SELECT current_lufs || '|' || dynamic_range FROM studio_projects WHERE id = '$drive'"
version=$("$analyze_bin" --version)
check "files: the mix and two stems, their analyses by this analyzer ($version)" \
  "midnight-drive-drums.wav|t|drums|$mix|$version|12.000
midnight-drive-mix.wav|f|||$version|12.000
midnight-drive-vox.wav|t|vocals|$mix|$version|12.000" \
  "SELECT filename, is_stem, stem_type, parent_file_id, audio_analysis->>'analyzer_version', round(duration_seconds, 3) FROM audio_files ORDER BY filename"
check "the vocal stem is mono, as rendered (measured, not as uploaded)" "1" "SELECT channels FROM audio_files WHERE id = '$vox'"
check "Mixx Recall (prime-recall): set pins its confidence, three uses counted, their settings learned" \
  "plugin|MixxDrive|3|0.50|{\"item\": \"MixxDrive\", \"drive\": 0.3, \"pinned\": true, \"usage_count\": 3, \"common_settings\": {\"mix\": 0.4}}|2026-11-25 10:34:00+00" \
  "SELECT category, recall_key, usage_count, confidence, data, last_used_at FROM mixx_recall WHERE category = 'plugin' AND recall_key = 'MixxDrive'"
check "the public preset: used by its owner and two others" "Air Vox|$kai|3|2026-11-25 10:43:00+00" \
  "SELECT name, user_id, usage_count, last_used_at FROM plugin_presets"
check "the collaboration: Echo still in, Kai left, ended with its notes" \
  "Vocal session|f|2026-11-25 14:20:00+00|vocals comped|$nova:host,$echo_:editor" \
  "SELECT session_name, is_active, ended_at, notes, (SELECT string_agg(p->>'user_id' || ':' || (p->>'role'), ',' ORDER BY p->>'joined_at') FROM jsonb_array_elements(participants) p) FROM collaboration_sessions"
check "presence: Nova's session left at her last position, Echo's active" \
  "$nova_session|f|48.500|2026-11-25 09:43:00+00
$echo_session|t|4.250|2026-11-25 11:05:00+00" \
  "SELECT id, is_active, cursor_position, last_heartbeat FROM session_states ORDER BY user_id = '$echo_', id"
check "the deleted project is gone, its deletion audited" "0|1" \
  "SELECT (SELECT count(*) FROM studio_projects WHERE id = '$scratch') || '|' || (SELECT count(*) FROM prime_pipeline.audit_log WHERE entity_id = '$scratch' AND operation = 'delete')"
check "Nova's credential: the hash in its column" "email_password|nova@example.com|t" \
  "SELECT credential_type, email, password_hash = '$secret' FROM auth_credentials"

# --- snapshots, audit, dead letters ------------------------------------------------------
check "the snapshot trail: the milestone of version 4, with the mix's analysis" \
  "4|milestone|First mix|808 and vocals balanced|t" \
  "SELECT project_version, snapshot_type, snapshot_name, description, audio_analysis ? 'loudness' FROM project_snapshots ORDER BY project_version"
[ "$(records prime.snapshots)" = 1 ] && ok "one record on prime.snapshots" || bad "records on prime.snapshots: $(records prime.snapshots)"
check "the stale save is audited as rejected, naming both versions" \
  "rejected|laptop|stale save: based on version 2, the project is at version 4" \
  "SELECT operation, device_id, detail FROM prime_pipeline.audit_log WHERE operation = 'rejected'"
check "every audit record on prime.audit is stored" "$(records prime.audit)" "SELECT count(*) FROM prime_pipeline.audit_log"
if "$audit_bin" verify --rows >"$tmp/verify.out" 2>&1; then
  ok "prime-audit verify --rows: $(head -1 "$tmp/verify.out")"
else
  bad "prime-audit verify --rows: $(cat "$tmp/verify.out")"
fi
kc -C -t prime.dlq -o beginning -e -q -f '%h|%s\n' >"$tmp/dlq" 2>/dev/null
[ "$(wc -l <"$tmp/dlq")" = 2 ] && [ "$(grep -c 'prime.worker=materializer' "$tmp/dlq")" = 1 ] &&
  [ "$(grep -c 'prime.worker=recall' "$tmp/dlq")" = 1 ] &&
  ok "one dead letter from each worker that reads prime.projects (the materializer, prime-recall)" ||
  bad "dead letters: $(cat "$tmp/dlq")"
grep -q 'prime.error.class=decode' "$tmp/dlq" && grep -q 'prime.source.topic=prime.projects' "$tmp/dlq" &&
  grep -q 'prime.error.message=[^,]*single-object' "$tmp/dlq" && grep -q '|mix=1;bpm=140$' "$tmp/dlq" &&
  ok "the bad record is in prime.dlq with its reason, its source and its bytes" || bad "dead letter: $(cat "$tmp/dlq")"
check "the dead letter is audited" "1" "SELECT count(*) FROM prime_pipeline.audit_log WHERE operation = 'dead_lettered'"

# --- libpq's settings pass through --db as they are ------------------------------------------
if [ -n "${PRIME_TEST_DB:-}" ]; then # tests/with-stack's PostgreSQL has no TLS
  out=$("$audit_bin" verify --db "$PRIME_DB sslmode=require" 2>&1)
  grep -q "server does not support SSL, but SSL was required" <<<"$out" &&
    ok "--db passes sslmode to libpq (sslmode=require refused by a server without TLS)" || bad "sslmode=require: $out"
fi

# --- secrets stay in their column ---------------------------------------------------------
leaks=$(for t in prime.audit prime.snapshots prime.dlq; do kc -C -t "$t" -o beginning -e -q 2>/dev/null; done | grep -ac 5ecre7ha5h)
[ "$leaks" = 0 ] && ok "no secret on prime.audit, prime.snapshots or prime.dlq" || bad "a secret on a derived topic ($leaks records)"
check "no secret in the audit log" "0" "SELECT count(*) FROM prime_pipeline.audit_log a WHERE a::text LIKE '%5ecre7ha5h%'"
if [ -z "$external" ]; then
  grep -l 5ecre7ha5h "$tmp"/*.log >/dev/null && bad "a secret in a worker's log" || ok "no secret in the workers' logs"
  errors=$(grep -hE 'level=(error|fatal)' "$tmp"/*.log | head -3)
  [ -z "$errors" ] && ok "no worker logged an error" || bad "worker errors: $errors"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || bad "a worker exited with $? on SIGTERM"; done
  pids=()
  [ "$failed" = 0 ] || tail -n 5 "$tmp"/*.log
fi
finish
