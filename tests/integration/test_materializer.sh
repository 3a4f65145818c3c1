#!/usr/bin/env bash
# prime-materializer against the dev broker and
# an ephemeral PostgreSQL: each event's effect on rows, optimistic locking,
# dead letters with their reasons, cross-topic order within a batch,
# cascades, and determinism: the topics replayed into a fresh database give
# byte-identical tables.
set -uo pipefail
tmp=$(mktemp -d)
trap '[ -n "${kept_pid:-}" ] && kill -KILL "$kept_pid" 2>/dev/null; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
dead_letters() { kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%h\n' 2>/dev/null; }
dead_lettered() { # NAME PATTERN: a dead letter's headers match the (extended) pattern
  if dead_letters | grep -qE "$2"; then ok "$1"; else bad "no dead letter for: $1"; fi
}
published=0 # records on prime.users and prime.projects so far
publish() { # FILE
  "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
  published=$((published + $(grep -c . "$1")))
}
run_materializer() { # DB GROUP [DBNAME] [ARGS...]: until everything published is drained (the
  # materializer runs on for the next call with the same arguments: keep_running)
  local db=$1 group=$2 dbname=${3:-prime}
  shift 3 2>/dev/null || shift $#
  keep_running "$tmp/mat.log" env PRIME_DB="$db" "$PRIME_MATERIALIZER" --group "$group" --linger-ms 200 "${group_x[@]}" "$@"
  local total=$published last=-1
  for _ in $(seq 300); do
    last=$(psql -d "$dbname" -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = '$group'")
    [ "$last" -ge "$total" ] && break
    sleep 0.1
  done
}
"$PRIME_MIGRATE" >/dev/null || exit 1

u1=11111111-1111-4111-8111-111111111111 u2=22222222-2222-4222-8222-222222222222 u3=33333333-3333-4333-8333-333333333333
p1=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa p2=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb p3=cccccccc-cccc-4ccc-8ccc-cccccccccccc
n=0
ev() { # TYPE OWNER TIME JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T%s:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' \
    "$1" "$n" "$3" "$2" "$2" "$4"
}
user() { ev user.registered "$1" "$2" "\"email\":\"$3@example.com\",\"username\":\"$3\",\"display_name\":\"$3\",\"preferred_genres\":[\"trap\"],\"email_verified\":false"; }
{
  # u2's project is published before u2 registers, on another topic: the
  # same batch must still apply both.
  ev project.created "$u2" 09:00 "\"project_id\":\"$p2\",\"name\":\"Early\",\"project_data\":{\"v\":1}"
  user "$u1" 10:00 nova
  user "$u2" 10:01 echo
  user "$u1" 10:02 nova_again                                                             # duplicate registration
  ev project.created "$u1" 10:05 "\"project_id\":\"$p1\",\"name\":\"Midnight\",\"bpm\":140.5,\"key\":\"C#m\",\"project_data\":{\"v\":1},\"tags\":[\"trap\",\"night\"],\"genre\":\"trap\",\"mood\":\"dark\""
  ev project.saved "$u1" 10:10 "\"project_id\":\"$p1\",\"base_version\":1,\"project_data\":{\"v\":2}"
  ev project.saved "$u1" 10:11 "\"project_id\":\"$p1\",\"base_version\":1,\"project_data\":{\"stale\":true}"  # stale
  ev project.saved "$u1" 10:12 "\"project_id\":\"$p1\",\"base_version\":2,\"project_data\":{\"v\":3,\"long\":\"abcdef\"}"
  ev project.metadata_updated "$u1" 10:13 "\"project_id\":\"$p1\",\"name\":\"Midnight Drive\",\"cleared_fields\":[\"mood\"]"
  ev project.opened "$u1" 10:14 "\"project_id\":\"$p1\""
  ev project.collaborators_changed "$u1" 10:15 "\"project_id\":\"$p1\",\"collaborators\":[{\"user_id\":\"$u2\",\"role\":\"editor\"}]"
  ev project.saved "$u2" 10:16 "\"project_id\":\"$p1\",\"base_version\":3,\"project_data\":{\"hijack\":true}"  # not u2's project
  ev project.created "$u3" 10:17 "\"project_id\":\"$p3\",\"name\":\"Orphan\",\"project_data\":{}"          # u3 never registers
  ev user.device_registered "$u1" 10:20 "\"registered_device_id\":\"mac\",\"device_name\":\"Mac\",\"device_type\":\"desktop\""
  ev user.device_registered "$u1" 10:21 "\"registered_device_id\":\"mac\",\"device_name\":\"Studio Mac\",\"device_type\":\"desktop\""
  ev user.device_registered "$u1" 10:22 "\"registered_device_id\":\"web\",\"device_name\":\"Browser\",\"device_type\":\"web\""
  ev user.logged_in "$u1" 10:23 "\"credential_id\":null"
  ev user.profile_updated "$u1" 10:24 "\"bio\":\"Producer\",\"cleared_fields\":[\"default_key\"]"
} >"$tmp/events.jsonl"
publish "$tmp/events.jsonl"
printf 'garbage\n' | kcat -b "$PRIME_BROKERS" -P -t prime.users -k "$u1" 2>/dev/null
published=$((published + 1))

run_materializer "$PRIME_TEST_DB" mat-1

check "users registered; the duplicate registration did not replace the first" "$u1|nova@example.com|nova" \
  "SELECT id, email, username FROM prime_users WHERE id = '$u1'"
check "a project published before its owner registered (other topic, same batch) is applied" "Early" \
  "SELECT name FROM studio_projects WHERE id = '$p2'"
# project_size_bytes is the length of the compact text {"v":3,"long":"abcdef"}.
check "saves move the version; the stale one is not applied" '3|{"v": 3, "long": "abcdef"}|23' \
  "SELECT project_version, project_data::text, project_size_bytes FROM studio_projects WHERE id = '$p1'"
check "timestamps are the events' times" "2026-11-25 10:05:00+00|2026-11-25 10:15:00+00|2026-11-25 10:12:00+00|2026-11-25 10:14:00+00" \
  "SELECT created_at, updated_at, last_saved_at, last_opened_at FROM studio_projects WHERE id = '$p1'"
check "metadata update and cleared field" "Midnight Drive||140.50|{trap,night}" \
  "SELECT name, mood, bpm, tags FROM studio_projects WHERE id = '$p1'"
check "collaborators make a project collaborative" "t|1" \
  "SELECT is_collaborative, jsonb_array_length(collaborators) FROM studio_projects WHERE id = '$p1'"
# The login after the registrations came from dev-1: the last active device.
check "a device registered twice is one entry" "Studio Mac,Browser|dev-1" \
  "SELECT string_agg(d->>'name', ',' ORDER BY ord), max(last_active_device_id) FROM prime_users, jsonb_array_elements(devices) WITH ORDINALITY AS x(d, ord) WHERE id = '$u1'"
check "login and profile update" "2026-11-25 10:23:00+00|Producer|" \
  "SELECT last_login_at, bio, default_key FROM prime_users WHERE id = '$u1'"
check "the orphan project is not applied" "0" "SELECT count(*) FROM studio_projects WHERE id = '$p3'"
check "the orphan project is parked, waiting for its owner" "prime_users:$u3" \
  "SELECT waiting_for FROM prime_pipeline.parked_events WHERE group_id = 'mat-1'"

dead_lettered "duplicate registration dead-lettered" "prime.error.message=the user is already registered"
dead_lettered "owner mismatch dead-lettered" "prime.error.message=the studio_projects row belongs to $u1, the event names $u2"
dead_lettered "undecodable record dead-lettered" "prime.error.class=decode"
grep -q 'stale save rejected.*base_version=1 current_version=2' "$tmp/mat.log" && ok "the stale save is logged with both versions" || bad "stale log"

# Across batches: a project and its first save arrive before their owner
# registers; both wait, then apply in order when the registration comes.
u4=44444444-4444-4444-8444-444444444444 p4=dddddddd-dddd-4ddd-8ddd-dddddddddddd
{
  ev project.created "$u4" 12:00 "\"project_id\":\"$p4\",\"name\":\"Late owner\",\"project_data\":{\"v\":1}"
  ev project.saved "$u4" 12:01 "\"project_id\":\"$p4\",\"base_version\":1,\"project_data\":{\"v\":2}"
} >"$tmp/late.jsonl"
publish "$tmp/late.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "events for an owner not registered yet are parked in order" "2" \
  "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'mat-1' AND waiting_for IN ('prime_users:$u4', 'studio_projects:$p4')"
user "$u4" 12:05 late_owner >"$tmp/late.jsonl"
publish "$tmp/late.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "when the owner registers, the parked create and save apply in order" "Late owner|2|{\"v\": 2}" \
  "SELECT name, project_version, project_data::text FROM studio_projects WHERE id = '$p4'"
check "nothing of theirs is left parked" "0" \
  "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'mat-1' AND waiting_for LIKE '%$u4%'"

# Sessions: join, heartbeats (one row, the last one wins), leave. And a
# collaborator joining a project that its owner creates later on another
# topic: the join waits, the collaborator's heartbeat waits behind it (same
# stream: its order holds), and both apply when the project is written.
s1=51515151-5151-4515-8515-515151515151 s2=52525252-5252-4525-8525-525252525252
hash=sha256:$(printf 'a%.0s' {1..64}) hash2=sha256:$(printf 'b%.0s' {1..64})
p6=ffffffff-ffff-4fff-8fff-ffffffffffff
{
  ev session.joined "$u2" 12:19 "\"session_id\":\"$s2\",\"project_id\":\"$p6\",\"session_token_hash\":\"$hash2\""
  ev session.heartbeat "$u2" 12:19 "\"session_id\":\"$s2\",\"cursor_position\":1.5"
  ev session.joined "$u1" 12:20 "\"session_id\":\"$s1\",\"project_id\":\"$p1\",\"session_token_hash\":\"$hash\",\"active_tool\":\"pencil\""
  for i in 1 2 3 4 5; do
    ev session.heartbeat "$u1" "12:2$i" "\"session_id\":\"$s1\",\"cursor_position\":$i.25"
  done
  ev session.left "$u1" 12:29 "\"session_id\":\"$s1\""
} >"$tmp/sessions.jsonl"
publish "$tmp/sessions.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
# The heartbeat waits for what the join before it waits for: they come out together.
check "the collaborator's join and heartbeat wait for the project, in stream order" \
  "studio_projects:$p6|studio_projects:$p6" \
  "SELECT string_agg(waiting_for, '|' ORDER BY source_offset) FROM prime_pipeline.parked_events WHERE waiting_for LIKE 'session_states:%' OR waiting_for = 'studio_projects:$p6'" 
{
  ev project.created "$u1" 12:31 "\"project_id\":\"$p6\",\"name\":\"Shared\",\"project_data\":{}"
  # u2 joins as its editor (a stranger's join is refused: docs/materializer.md)
  ev project.collaborators_changed "$u1" 12:32 "\"project_id\":\"$p6\",\"collaborators\":[{\"user_id\":\"$u2\",\"role\":\"editor\"}]"
} >"$tmp/p6.jsonl"
publish "$tmp/p6.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "a session: joined, five heartbeats, left" "$p1|$u1|dev-1|$hash|5.250|pencil|f|2026-11-25 12:25:00+00|2026-11-25 12:29:00+00" \
  "SELECT project_id, user_id, device_id, session_token, cursor_position, active_tool, is_active, last_heartbeat, updated_at FROM session_states WHERE id = '$s1'"
check "when the project is written, the join and then the heartbeat apply" "$u2|$p6|t|1.500" \
  "SELECT user_id, project_id, is_active, cursor_position FROM session_states WHERE id = '$s2'"

# Mixx Recall is prime-recall's (tests/integration/test_recall.sh): the
# materializer takes its events in and changes no row.
{
  ev recall.set "$u1" 12:40 "\"category\":\"plugin\",\"recall_key\":\"MixxDrive\",\"data\":{\"drive\":0.3},\"confidence\":0.5"
  ev recall.used "$u1" 12:41 "\"category\":\"plugin\",\"recall_key\":\"MixxDrive\",\"data\":{\"drive\":0.4}"
  ev recall.forgotten "$u1" 12:42 "\"category\":\"plugin\",\"recall_key\":\"MixxDrive\""
} >"$tmp/recall.jsonl"
publish "$tmp/recall.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "recall events change no row of the materializer's" "0" "SELECT count(*) FROM mixx_recall"

# Audio: a mix and a stem split from it, analyses (a newer analyzer version
# wins, an older one is not stored; the mix's loudness and DR reach the
# project), a file deleted, and a delete the seed refuses (stems reference
# their parent with no ON DELETE action).
f1=f1f1f1f1-f1f1-4f1f-8f1f-f1f1f1f1f1f1 f2=f2f2f2f2-f2f2-4f2f-8f2f-f2f2f2f2f2f2 f3=f3f3f3f3-f3f3-4f3f-8f3f-f3f3f3f3f3f3
upload="\"filename\":\"mix.wav\",\"file_path\":\"u1/mix.wav\",\"file_size_bytes\":5292044,\"mime_type\":\"audio/wav\",\"duration_seconds\":30.0,\"sample_rate\":44100,\"bit_depth\":24,\"channels\":2,\"format\":\"wav\""
analysis() { # VERSION LUFS DR
  ev audio.analyzed "$u1" "14:0$4" "\"file_id\":\"$f1\",\"request_event_id\":\"00000000-0000-4000-8000-000000000001\",\"analyzer_version\":\"$1\",\"audio_analysis\":{\"integrated_lufs\":$2},\"duration_seconds\":30.5,\"sample_rate\":44100,\"channels\":2,\"integrated_lufs\":$2,\"dynamic_range\":$3"
}
{
  ev audio.file_uploaded "$u1" 13:50 "\"file_id\":\"$f1\",\"project_id\":\"$p1\",$upload,\"original_filename\":\"Mix v3.wav\",\"tags\":[\"mix\"],\"is_mix\":true,\"musical_context\":{\"bpm\":140}"
  ev audio.stem_uploaded "$u1" 13:51 "\"file_id\":\"$f2\",\"project_id\":\"$p1\",${upload//mix.wav/vox.wav},\"tags\":[],\"stem_type\":\"vocals\",\"parent_file_id\":\"$f1\""
  ev audio.file_uploaded "$u1" 13:52 "\"file_id\":\"$f3\",\"project_id\":null,${upload//mix.wav/sketch.wav},\"tags\":[],\"is_mix\":false"
  ev session.joined "$u1" 13:52 "\"session_id\":\"$s1\",\"project_id\":\"$p1\",\"session_token_hash\":\"$hash\""  # s1 exists
  ev audio.analysis_requested "$u1" 13:53 "\"file_id\":\"$f1\",\"file_path\":\"u1/mix.wav\",\"reason\":\"reprocess\""
  analysis 1.2.0 -9.5 7.25 1
  analysis 1.10.0 -10.125 8 2
  analysis 1.9.9 -30 1 3
  ev audio.file_deleted "$u1" 14:05 "\"file_id\":\"$f3\""
  ev audio.file_deleted "$u1" 14:06 "\"file_id\":\"$f1\""
} >"$tmp/audio.jsonl"
publish "$tmp/audio.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "an upload: every column from the event; created_at and uploaded_at its time" \
  "$p1|$u1|mix.wav|Mix v3.wav|u1/mix.wav|5292044|audio/wav|44100|24|2|wav|{\"bpm\": 140}|f||{mix}|2026-11-25 13:50:00+00|2026-11-25 13:50:00+00|t" \
  "SELECT project_id, user_id, filename, original_filename, file_path, file_size_bytes, mime_type, sample_rate, bit_depth, channels, format, musical_context::text, is_stem, stem_type, tags, created_at, uploaded_at, is_mix FROM audio_files WHERE id = '$f1'"
check "a stem: is_stem, stem_type, parent_file_id" "t|vocals|$f1|vox.wav" \
  "SELECT is_stem, stem_type, parent_file_id, filename FROM audio_files WHERE id = '$f2'"
check "the newest analyzer version's analysis is stored (1.10.0 > 1.9.9 > 1.2.0), with its measured duration" \
  '{"integrated_lufs": -10.125, "analyzer_version": "1.10.0"}|30.500' \
  "SELECT audio_analysis::text, duration_seconds FROM audio_files WHERE id = '$f1'"
check "the mix's integrated loudness and DR reach its project" "-10.13|8.00" \
  "SELECT current_lufs, dynamic_range FROM studio_projects WHERE id = '$p1'"
check "a deleted file is gone; a file with stems is not deleted" "0|1" \
  "SELECT (SELECT count(*) FROM audio_files WHERE id = '$f3'), (SELECT count(*) FROM audio_files WHERE id = '$f1')"
dead_lettered "deleting a file its stems reference is dead-lettered with the database's reason" \
  'prime.error.message=.*violates foreign key constraint "audio_files_parent_file_id_fkey"'
dead_letters | grep -q "audio.analysis_requested" && bad "analysis_requested was dead-lettered" \
  || ok "analysis requests change no row and are not dead-lettered"
# The batch above was refused by the database and applied again event by
# event: each event refused is dead-lettered once, not once a pass.
check_count() { # NAME EXPECTED PATTERN: dead letters whose headers match
  local got
  got=$(dead_letters | grep -cE "$3")
  if [ "$got" = "$2" ]; then ok "$1"; else bad "$1: $got dead letters, expected $2"; fi
}
check_count "an event refused in a batch the database refused is dead-lettered once" 1 \
  "prime.error.message=the session exists already"
check_count "the delete the database refused is dead-lettered once" 1 'audio_files_parent_file_id_fkey'

# Presets: private, public and system; updates, uses (the same use event
# published twice counts once), a use of another user's private preset.
pr1=a1a1a1a1-a1a1-4a1a-8a1a-a1a1a1a1a1a1 pr2=a2a2a2a2-a2a2-4a2a-8a2a-a2a2a2a2a2a2 pr3=a3a3a3a3-a3a3-4a3a-8a3a-a3a3a3a3a3a3
preset() { # OWNER TIME ID NAME PUBLIC SYSTEM
  ev preset.created "$1" "$2" "\"preset_id\":\"$3\",\"name\":\"$4\",\"description\":\"d\",\"plugin_type\":\"MixxDrive\",\"parameters\":{\"drive\":0.5},\"is_public\":$5,\"is_system_preset\":$6,\"tags\":[\"warm\"]"
}
{
  preset "$u1" 14:10 "$pr1" Mine false false
  preset "$u2" 14:11 "$pr2" Factory true true
  preset "$u2" 14:12 "$pr3" Shared true false
  ev preset.updated "$u1" 14:13 "\"preset_id\":\"$pr1\",\"name\":\"Mine v2\",\"parameters\":{\"drive\":0.7},\"cleared_fields\":[\"description\"]"
  ev preset.used "$u1" 14:14 "\"preset_id\":\"$pr1\""
  ev preset.used "$u1" 14:15 "\"preset_id\":\"$pr3\""
  ev preset.used "$u1" 14:16 "\"preset_id\":\"$pr2\""
  ev preset.used "$u2" 14:17 "\"preset_id\":\"$pr1\""
} >"$tmp/presets.jsonl"
sed -n 5p "$tmp/presets.jsonl" >>"$tmp/presets.jsonl" # published twice: same event_id
publish "$tmp/presets.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "a private preset: updated, description cleared, used once (its second publication skipped)" \
  "$u1|Mine v2||{\"drive\": 0.7}|1|2026-11-25 14:14:00+00|2026-11-25 14:13:00+00" \
  "SELECT user_id, name, description, parameters::text, usage_count, last_used_at, updated_at FROM plugin_presets WHERE id = '$pr1'"
check "a system preset has no user; public and system presets are used by others" "|t|1;$u2|f|1" \
  "SELECT string_agg(concat_ws('|', coalesce(user_id::text, ''), is_system_preset, usage_count), ';' ORDER BY name) FROM plugin_presets WHERE id IN ('$pr2', '$pr3')"
grep -q 'event published twice; applied once' "$tmp/mat.log" && ok "the second publication is logged" || bad "duplicate log"
dead_lettered "using another user's private preset is dead-lettered" "prime.error.message=the preset is another user's and not public"

# Collaboration: started (the starter is the host), joins (a rejoin replaces
# the entry), a leave, the end; a join after the end is refused.
c1=c1c1c1c1-c1c1-4c1c-8c1c-c1c1c1c1c1c1
{
  ev collab.started "$u1" 14:20 "\"collab_session_id\":\"$c1\",\"project_id\":\"$p1\",\"session_name\":\"Vocal comp\""
  ev collab.participant_joined "$u1" 14:21 "\"collab_session_id\":\"$c1\",\"user_id\":\"$u2\",\"role\":\"viewer\""
  ev collab.participant_joined "$u1" 14:22 "\"collab_session_id\":\"$c1\",\"user_id\":\"$u3\",\"role\":\"commenter\""
  ev collab.participant_joined "$u1" 14:23 "\"collab_session_id\":\"$c1\",\"user_id\":\"$u2\",\"role\":\"editor\",\"permissions\":{\"mix\":true}"
  ev collab.participant_left "$u1" 14:24 "\"collab_session_id\":\"$c1\",\"user_id\":\"$u3\""
  ev collab.ended "$u1" 14:25 "\"collab_session_id\":\"$c1\",\"notes\":\"Comped verse 2\""
  ev collab.participant_joined "$u1" 14:26 "\"collab_session_id\":\"$c1\",\"user_id\":\"$u3\",\"role\":\"viewer\""
} >"$tmp/collab.jsonl"
publish "$tmp/collab.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "a collaboration session from start to end" \
  "$p1|Vocal comp|$u1|f|2026-11-25 14:20:00+00|2026-11-25 14:25:00+00|Comped verse 2" \
  "SELECT project_id, session_name, started_by, is_active, started_at, ended_at, notes FROM collaboration_sessions WHERE id = '$c1'"
check "participants: the host, then the rejoined editor with permissions" \
  "[{\"role\": \"host\", \"user_id\": \"$u1\", \"joined_at\": \"2026-11-25T14:20:00.000000Z\", \"permissions\": null}, {\"role\": \"editor\", \"user_id\": \"$u2\", \"joined_at\": \"2026-11-25T14:23:00.000000Z\", \"permissions\": {\"mix\": true}}]" \
  "SELECT participants::text FROM collaboration_sessions WHERE id = '$c1'"
dead_lettered "a join after the end is dead-lettered" "prime.error.message=the collaboration session has ended"

# Auth: a credential (created, verified, reset, password changed) and the
# login that names it; a session (started, refreshed, revoked; a refresh
# after the revoke is refused). Only hashes are stored.
cr1=c7c7c7c7-c7c7-4c7c-8c7c-c7c7c7c7c7c7 as1=a5a5a5a5-a5a5-4a5a-8a5a-a5a5a5a5a5a5
h() { printf 'sha256:%064d' "$1"; }
tokens="\"access_token_hash\":\"$(h 3)\",\"refresh_token_hash\":\"$(h 4)\",\"access_token_expires_at\":\"2026-11-25T16:00:00Z\",\"refresh_token_expires_at\":\"2026-12-25T15:00:00Z\""
{
  ev user.logged_in "$u2" 14:29 "\"credential_id\":\"$cr1\""   # names u1's credential: refused once it exists
  ev auth.credential_created "$u1" 14:30 "\"credential_id\":\"$cr1\",\"credential_type\":\"email_password\",\"email\":\"nova@example.com\",\"password_hash\":\"$(h 1)\",\"salt\":\"s1\",\"verification_token_hash\":\"$(h 2)\",\"verification_expires_at\":\"2026-11-26T14:30:00Z\""
  ev auth.credential_verified "$u1" 14:31 "\"credential_id\":\"$cr1\""
  ev auth.reset_requested "$u1" 14:32 "\"credential_id\":\"$cr1\",\"reset_token_hash\":\"$(h 5)\",\"reset_expires_at\":\"2026-11-25T15:32:00Z\""
  ev auth.password_changed "$u1" 14:33 "\"credential_id\":\"$cr1\",\"password_hash\":\"$(h 6)\",\"salt\":null"
  ev user.logged_in "$u1" 14:34 "\"credential_id\":\"$cr1\""
  ev auth.session_started "$u1" 14:35 "\"session_id\":\"$as1\",\"session_token_hash\":\"$(h 7)\",\"device_name\":\"Studio Mac\",\"device_type\":\"desktop\",$tokens,\"ip_address\":\"192.0.2.7\",\"user_agent\":\"Prime/1.0\""
  ev auth.session_refreshed "$u1" 14:36 "\"session_id\":\"$as1\",${tokens//$(h 3)/$(h 8)}"
  ev auth.session_revoked "$u1" 14:37 "\"session_id\":\"$as1\",\"reason\":\"logout\""
  ev auth.session_refreshed "$u1" 14:38 "\"session_id\":\"$as1\",$tokens"
} >"$tmp/auth.jsonl"
publish "$tmp/auth.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "a credential: verified, reset requested, password changed (reset cleared), last login" \
  "$u1|email_password|nova@example.com|$(h 6)||t|||||2026-11-25 14:33:00+00|2026-11-25 14:34:00+00" \
  "SELECT user_id, credential_type, email, password_hash, salt, email_verified, verification_token, verification_expires_at, reset_token, reset_expires_at, updated_at, last_login_at FROM auth_credentials WHERE id = '$cr1'"
check "verifying the credential verifies the user's email" "t" "SELECT email_verified FROM prime_users WHERE id = '$u1'"
check "a session: started on the envelope's device, refreshed, revoked" \
  "$u1|$(h 7)|dev-1|Studio Mac|desktop|$(h 8)|192.0.2.7|Prime/1.0|t|2026-11-25 14:36:00+00|2026-11-25 14:35:00+00" \
  "SELECT user_id, session_token, device_id, device_name, device_type, access_token_hash, ip_address, user_agent, is_revoked, last_activity_at, created_at FROM auth_sessions WHERE id = '$as1'"
dead_lettered "a refresh after the revoke is dead-lettered" "prime.error.message=the session is revoked"
dead_lettered "a login naming another user's credential is dead-lettered (after waiting for it)" \
  "prime.error.message=the auth_credentials row belongs to $u1, the event names $u2"

# The bounded wait: the orphan is dead-lettered once it has waited too long,
# with no new traffic (the runtime's idle housekeeping call).
stop_kept
PRIME_DB=$PRIME_TEST_DB "$PRIME_MATERIALIZER" --group mat-1 --park-max-seconds 1 "${group_x[@]}" >>"$tmp/mat.log" 2>&1 &
pid=$!
for _ in $(seq 150); do
  dead_letters | grep -q "prime_users:$u3 was not written" && break
  sleep 0.1
done
kill -TERM "$pid"; wait "$pid"
dead_lettered "a parked event past --park-max-seconds is dead-lettered as unresolved, without new traffic" \
  "prime.error.message=unresolved: prime_users:$u3 was not written within 1 seconds"
check "and is no longer parked" "0" "SELECT count(*) FROM prime_pipeline.parked_events WHERE group_id = 'mat-1'"

# Determinism: the same topics into a fresh database give the same bytes.
psql -qc "CREATE DATABASE replay" >/dev/null
replay_db="${PRIME_TEST_DB/dbname=prime/dbname=replay}"
"$PRIME_MIGRATE" --db "$replay_db" >/dev/null
run_materializer "$replay_db" mat-replay replay
digest() { psql -d "$1" -qAtc "SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM $2 t"; }
for table in prime_users studio_projects session_states audio_files plugin_presets collaboration_sessions \
  auth_credentials auth_sessions; do
  a=$(digest prime "$table") b=$(digest replay "$table")
  if [ -n "$a" ] && [ "$a" = "$b" ]; then
    ok "replay into a fresh database: $table identical ($a)"
  else
    bad "replay $table: $a vs $b"
    diff <(psql -d prime -qAtc "SELECT t::text FROM $table t ORDER BY id") \
         <(psql -d replay -qAtc "SELECT t::text FROM $table t ORDER BY id") | head -10
  fi
done

# The usual remedy for a dead letter (after the replay above: the database's
# refusal depends on what else its batch holds, so a replay batched
# otherwise may differ): its cause fixed (the stem deleted), the refused delete
# published again (same event_id) applies; the database's refusal did not
# take its id in.
{
  ev audio.file_deleted "$u1" 14:07 "\"file_id\":\"$f2\""
  grep "audio.file_deleted.*\"file_id\":\"$f1\"" "$tmp/audio.jsonl"
} >"$tmp/fix.jsonl"
publish "$tmp/fix.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "a dead letter the database refused, published again once its cause is fixed, applies" "0" \
  "SELECT count(*) FROM audio_files WHERE id IN ('$f1', '$f2')"

# Deleting a user removes the user and (cascade) the projects.
ev user.deleted "$u1" 13:00 "\"reason\":\"request\"" >"$tmp/events.jsonl"
publish "$tmp/events.jsonl"
run_materializer "$PRIME_TEST_DB" mat-1
check "user.deleted removes the user and cascades to every table that names them" "0|0|0|0|0|0|0|0|0" \
  "SELECT (SELECT count(*) FROM prime_users WHERE id = '$u1'), (SELECT count(*) FROM studio_projects WHERE user_id = '$u1'),
          (SELECT count(*) FROM session_states WHERE user_id = '$u1' OR project_id = '$p1'),
          (SELECT count(*) FROM mixx_recall WHERE user_id = '$u1'), (SELECT count(*) FROM audio_files WHERE user_id = '$u1'),
          (SELECT count(*) FROM plugin_presets WHERE user_id = '$u1'), (SELECT count(*) FROM collaboration_sessions WHERE project_id = '$p1'),
          (SELECT count(*) FROM auth_credentials WHERE user_id = '$u1'), (SELECT count(*) FROM auth_sessions WHERE user_id = '$u1')"
check "other users stay" "1" "SELECT count(*) FROM prime_users WHERE id = '$u2'"
stop_kept

if [ "$failed" != 0 ]; then
  echo "--- the materializer's warnings and errors:"
  grep -E 'level=(warn|error)' "$tmp/mat.log" | tail -40
  echo "--- dead letters:"
  dead_letters | sed 's/prime.error.message=/\n  /' | grep '^  ' | tail -40
fi
finish
