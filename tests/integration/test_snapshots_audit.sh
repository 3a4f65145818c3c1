#!/usr/bin/env bash
# Snapshots and the audit log, end to end on the dev broker and an ephemeral
# PostgreSQL, with the three workers running side by side (materializer,
# snapshot writer, audit writer): saves crossing the auto-snapshot policy,
# manual and milestone snapshots carrying the mix's analysis, restores (one
# waiting for a snapshot not yet written), one audit record per change,
# stale saves and dead letters audited, no secret in any audit record, the
# append-only log, prime-audit verify catching a record altered or removed
# behind the trigger's back, and a replay of the topics into a fresh database.
set -uo pipefail
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

workers() { # DB GROUP-SUFFIX: the three workers, in the background
  local common=(--linger-ms 100 "${group_x[@]}")
  PRIME_DB=$1 "$PRIME_MATERIALIZER" --group "mat-$2" "${common[@]}" >>"$tmp/mat.log" 2>&1 & pids+=($!)
  PRIME_DB=$1 "$PRIME_SNAPSHOT_WRITER" --group "snap-$2" "${common[@]}" >>"$tmp/snap.log" 2>&1 & pids+=($!)
  PRIME_DB=$1 "$PRIME_AUDIT" writer --group "audit-$2" "${common[@]}" >>"$tmp/audit.log" 2>&1 & pids+=($!)
}
stop_workers() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  pids=()
}
wait_for() { # NAME EXPECTED SQL [DBNAME]: poll until the query gives EXPECTED (30 s)
  local got
  for _ in $(seq 300); do
    got=$(psql -d "${4:-prime}" -qAtc "$3" 2>&1)
    [ "$got" = "$2" ] && { ok "$1"; return 0; }
    sleep 0.1
  done
  bad "$1: expected [$2], got [$got]"
}
snapshot_id() { # PROJECT VERSION TYPE: UUIDv5 as docs/audit.md defines it
  /usr/bin/python3 -c 'import sys, uuid; print(uuid.uuid5(uuid.UUID("a3e83a1e-1208-578c-9f96-dac03b1527bf"), "\n".join(sys.argv[1:])))' "$@"
}
n=0
ev() { # TYPE OWNER MINUTE FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:%02dZ","actor_user_id":"%s","owner_user_id":"%s","device_id":"desk-1",%s}\n' \
    "$1" "$n" "$(($3 / 60))" "$(($3 % 60))" "$2" "$2" "$4"
}
publish() { "$PRIME_PUBLISH" "$1" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }; }
settled() { # NAME GROUP-SUFFIX [DBNAME]: outboxes empty, then the audit writer at the end of prime.audit
  wait_for "$1: outboxes relayed" "0" "SELECT count(*) FROM prime_pipeline.outbox" "${3:-prime}"
  wait_for "$1: every audit record consumed" "$(on_topic prime.audit)" \
    "SELECT sum(next_offset) FROM prime_pipeline.consumer_offsets WHERE group_id = 'audit-$2'" "${3:-prime}"
}

u1=11111111-1111-4111-8111-111111111111 u2=22222222-2222-4222-8222-222222222222
p1=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa p2=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb f1=dddddddd-dddd-4ddd-8ddd-dddddddddddd
cr1=eeeeeeee-eeee-4eee-8eee-eeeeeeeeeeee
secret=sha256:$(printf 'c0ffee%058d' 7)

# --- clear errors -----------------------------------------------------------------------
usage_error() { # NAME PATTERN CMD...: exit status 2 and a message matching PATTERN
  local name=$1 pattern=$2 out rc
  shift 2
  out=$("$@" 2>&1); rc=$?
  [ "$rc" = 2 ] && grep -qE -- "$pattern" <<<"$out" && ok "$name" || bad "$name: exit $rc, said: $out"
}
usage_error "prime-audit without a command: usage, exit 2" "usage: prime-audit writer" "$PRIME_AUDIT"
usage_error "prime-audit with an unknown command" "unknown command 'check'" "$PRIME_AUDIT" check
usage_error "prime-audit verify with an unknown option" "unknown argument '--all'" "$PRIME_AUDIT" verify --all
usage_error "prime-audit verify with no database to reach" "prime-audit verify: " "$PRIME_AUDIT" verify --db "host=127.0.0.1 port=1 connect_timeout=2"
usage_error "--snapshot-every takes a count" "--snapshot-every: expected an integer from 0 to 1000000, got 'ten'" "$PRIME_MATERIALIZER" --snapshot-every ten

workers "$PRIME_TEST_DB" 1

# --- a project, its mix analysed, 24 saves -----------------------------------------
{
  ev user.registered "$u1" 1 '"email":"nova@example.com","username":"nova","display_name":"Nova","email_verified":false'
  ev user.registered "$u2" 2 '"email":"echo@example.com","username":"echo","display_name":"Echo","email_verified":false'
  ev project.created "$u1" 3 "\"project_id\":\"$p1\",\"name\":\"Midnight\",\"project_data\":{\"v\":1}"
  ev project.created "$u2" 4 "\"project_id\":\"$p2\",\"name\":\"Other\",\"project_data\":{\"other\":true}"
  ev audio.file_uploaded "$u1" 5 "\"file_id\":\"$f1\",\"project_id\":\"$p1\",\"filename\":\"mix.wav\",\"file_path\":\"nova/mix.wav\",\"file_size_bytes\":1000,\"mime_type\":\"audio/wav\",\"duration_seconds\":1.5,\"sample_rate\":48000,\"bit_depth\":24,\"channels\":2,\"format\":\"wav\",\"tags\":[],\"is_mix\":true,\"musical_context\":{\"bpm\":140}"
  ev audio.analyzed "$u1" 6 "\"file_id\":\"$f1\",\"request_event_id\":\"$f1\",\"analyzer_version\":\"1.0.0\",\"audio_analysis\":{\"integrated_lufs\":-9.5},\"duration_seconds\":1.5,\"sample_rate\":48000,\"channels\":2,\"integrated_lufs\":-9.5,\"dynamic_range\":7"
  ev auth.credential_created "$u1" 7 "\"credential_id\":\"$cr1\",\"credential_type\":\"email_password\",\"email\":\"nova@example.com\",\"password_hash\":\"$secret\",\"salt\":\"s1\",\"verification_token_hash\":\"$secret\",\"verification_expires_at\":\"2026-11-26T14:30:00Z\""
  # Quotes, a backslash, commas and parentheses: the row
  # goes to row_hash() as a composite literal, which must keep them.
  ev user.profile_updated "$u2" 8 '"display_name":"Echo \"The\" (back\\slash), inc","bio":"a, b (c)"'
  ev preset.created "$u1" 8 '"preset_id":"abababab-abab-4bab-8bab-abababababab","name":"Warm","plugin_type":"MixxDrive","parameters":{"drive":0.3},"is_public":false,"is_system_preset":false,"tags":[]'
  ev preset.deleted "$u1" 9 '"preset_id":"abababab-abab-4bab-8bab-abababababab"'
} >"$tmp/setup.jsonl"
publish "$tmp/setup.jsonl"
wait_for "the mix's analysis reached the project" "-9.50" "SELECT current_lufs FROM studio_projects WHERE id = '$p1'"

{
  for v in $(seq 1 24); do
    ev project.saved "$u1" $((100 + v)) "\"project_id\":\"$p1\",\"base_version\":$v,\"project_data\":{\"v\":$((v + 1))}"
  done
  ev project.saved "$u1" 130 "\"project_id\":\"$p1\",\"base_version\":3,\"project_data\":{\"stale\":true}"
  ev project.snapshot_requested "$u1" 131 "\"project_id\":\"$p1\",\"snapshot_type\":\"manual\",\"snapshot_name\":\"Before mixdown\",\"description\":\"rough mix\""
  ev project.snapshot_requested "$u1" 132 "\"project_id\":\"$p1\",\"snapshot_type\":\"milestone\",\"snapshot_name\":\"v1 release\""
} >"$tmp/saves.jsonl"
publish "$tmp/saves.jsonl"
wait_for "24 saves: version 25" "25" "SELECT project_version FROM studio_projects WHERE id = '$p1'"
wait_for "auto snapshots at versions 10 and 20, a manual and a milestone one at 25" \
  "10|auto||
20|auto||
25|manual|Before mixdown|rough mix
25|milestone|v1 release|" \
  "SELECT project_version, snapshot_type, snapshot_name, description FROM project_snapshots WHERE project_id = '$p1' ORDER BY project_version, snapshot_type"
s10=$(snapshot_id "$p1" 10 auto)
check "snapshot ids are UUIDv5 of project, version and type" "$s10" \
  "SELECT id FROM project_snapshots WHERE project_id = '$p1' AND project_version = 10"
check "a snapshot holds the project as it was, its owner, creator and time, and the mix's analysis" \
  "{\"v\": 10}|$u1|$u1|2026-11-25 10:01:49+00|{\"integrated_lufs\": -9.5, \"analyzer_version\": \"1.0.0\"}|{\"bpm\": 140}" \
  "SELECT project_data, user_id, created_by, created_at, audio_analysis, musical_context FROM project_snapshots WHERE id = '$s10'"

# --- restores: to a stored snapshot; to one that does not exist yet; to another project's --
s26=$(snapshot_id "$p1" 26 milestone) s_other=$(snapshot_id "$p2" 1 manual)
{
  ev project.restored "$u1" 140 "\"project_id\":\"$p1\",\"snapshot_id\":\"$s10\""
  # The milestone of version 26 is written by the snapshot writer after the
  # materializer emits it: the restore after it waits in parking meanwhile.
  ev project.snapshot_requested "$u1" 141 "\"project_id\":\"$p1\",\"snapshot_type\":\"milestone\",\"snapshot_name\":\"restored\""
  ev project.restored "$u1" 142 "\"project_id\":\"$p1\",\"snapshot_id\":\"$s26\""
  ev project.snapshot_requested "$u2" 143 "\"project_id\":\"$p2\",\"snapshot_type\":\"manual\""
} >"$tmp/restore.jsonl"
publish "$tmp/restore.jsonl"
wait_for "a restore is a new save with the snapshot's data, the version moving forward" '27|{"v": 10}|2026-11-25 10:02:22+00' \
  "SELECT project_version, project_data, last_saved_at FROM studio_projects WHERE id = '$p1'"
wait_for "the restore that waited for its snapshot went through once the snapshot writer wrote it" "0" \
  "SELECT count(*) FROM prime_pipeline.parked_events"
wait_for "another user's snapshot is stored" "1" "SELECT count(*) FROM project_snapshots WHERE id = '$s_other'"
{
  ev project.restored "$u1" 150 "\"project_id\":\"$p1\",\"snapshot_id\":\"$s_other\""
} >"$tmp/bad.jsonl"
publish "$tmp/bad.jsonl"
printf 'not an event\n' | kcat -b "$PRIME_BROKERS" -P -t prime.projects -k "$u1" 2>/dev/null
wait_for "a restore to another project's snapshot is refused (dead letter) and audited" \
  "dead_lettered|event|00000000-0000-4000-8000-$(printf %012d "$n")" \
  "SELECT operation, entity_type, entity_id FROM prime_pipeline.audit_log WHERE detail LIKE '%is of project%'"
wait_for "an unreadable record is dead-lettered and audited by its coordinates" "1" \
  "SELECT count(*) FROM prime_pipeline.audit_log WHERE operation = 'dead_lettered' AND entity_id LIKE 'prime.projects/%' AND actor_user_id IS NULL"
check "the project did not move" "27" "SELECT project_version FROM studio_projects WHERE id = '$p1'"

# --- the audit log -----------------------------------------------------------------
settled "the audit log" 1
check "every version change has one audit record (24 saves, 2 restores)" "26" \
  "SELECT count(*) FROM prime_pipeline.audit_log WHERE entity_type = 'studio_projects' AND operation = 'update' AND 'project_version' = ANY (changed_columns)"
check "inserts audited with the columns they wrote" "insert|prime_users|$u1|desk-1|{id,email,email_verified,username,display_name,preferred_genres,devices,last_active_device_id,created_at,updated_at}" \
  "SELECT operation, entity_type, entity_id, device_id, changed_columns FROM prime_pipeline.audit_log WHERE entity_type = 'prime_users' AND entity_id = '$u1'"
check "a save's record: actor, time, the columns that changed (not the size: same length), source" \
  "update|$u1|2026-11-25 10:01:41+00|{project_data,project_version,updated_at,last_saved_at}|prime.projects" \
  "SELECT operation, actor_user_id, occurred_at, changed_columns, source_topic FROM prime_pipeline.audit_log a WHERE entity_id = '$p1' AND occurred_at = '2026-11-25 10:01:41+00'"
check "a delete is audited: no columns, no row hash (deleting a preset)" "insert|
delete|{}|" \
  "SELECT operation, CASE operation WHEN 'delete' THEN changed_columns::text || '|' || coalesce(row_hash, '') END FROM prime_pipeline.audit_log WHERE entity_type = 'plugin_presets' ORDER BY occurred_at"
check "the stale save is audited as rejected, with both versions" \
  "rejected|stale save: based on version 3, the project is at version 25" \
  "SELECT operation, detail FROM prime_pipeline.audit_log WHERE operation = 'rejected'"
check "the analysis's change to the project is audited" "{current_lufs,dynamic_range}" \
  "SELECT changed_columns FROM prime_pipeline.audit_log WHERE entity_type = 'studio_projects' AND source_topic = 'prime.analysis'"
check "snapshots stored by the snapshot writer are audited" "6" \
  "SELECT count(*) FROM prime_pipeline.audit_log WHERE entity_type = 'project_snapshots' AND operation = 'insert'"
check "one record per change: no two for the same source event and row" "0" \
  "SELECT count(*) FROM (SELECT 1 FROM prime_pipeline.audit_log GROUP BY source_topic, source_partition, source_offset, entity_type, entity_id HAVING count(*) > 1) d"
if psql -qAt -c "SELECT a::text FROM prime_pipeline.audit_log a" | grep -q c0ffee; then
  bad "a secret (password or token hash) appears in audit_log"
else
  ok "no secret (password or token hashes) in audit_log"
fi
if kcat -b "$PRIME_BROKERS" -C -t prime.audit -o beginning -e -q 2>/dev/null | grep -aq c0ffee; then
  bad "a secret appears on prime.audit"
else
  ok "no secret on prime.audit"
fi
check "values with quotes, a backslash, commas and parentheses, stored as given" \
  'Echo "The" (back\slash), inc|a, b (c)' "SELECT display_name, bio FROM prime_users WHERE id = '$u2'"
check "the credential's change is audited, its secrets named but not shown" "{id,user_id,credential_type,email,password_hash,salt,email_verified,verification_token,verification_expires_at,created_at,updated_at}" \
  "SELECT changed_columns FROM prime_pipeline.audit_log WHERE entity_type = 'auth_credentials'"

"$PRIME_AUDIT" verify --rows >"$tmp/verify.out" 2>&1 && ok "prime-audit verify --rows: chains intact, rows as audited ($(head -1 "$tmp/verify.out"))" \
  || bad "prime-audit verify: $(cat "$tmp/verify.out")"
# A relay that crashed after Kafka took its messages sends them again: the
# same record, a second time, is stored once.
records=$(psql -qAtc "SELECT count(*) FROM prime_pipeline.audit_log")
read -r rpart roff <<<"$(psql -qAtc "SELECT audit_partition, audit_offset FROM prime_pipeline.audit_log WHERE operation = 'rejected'" | tr '|' ' ')"
kcat -b "$PRIME_BROKERS" -C -t prime.audit -p "$rpart" -o "$roff" -c 1 -e -q -f '%s' >"$tmp/again.bin" 2>/dev/null
kcat -b "$PRIME_BROKERS" -C -t prime.audit -p "$rpart" -o "$roff" -c 1 -e -q -f '%k' >"$tmp/again.key" 2>/dev/null
kcat -b "$PRIME_BROKERS" -P -t prime.audit -p "$rpart" -k "$(cat "$tmp/again.key")" "$tmp/again.bin" 2>/dev/null
wait_for "the audit writer consumed the repeated record" "$(on_topic prime.audit)" \
  "SELECT sum(next_offset) FROM prime_pipeline.consumer_offsets WHERE group_id = 'audit-1'"
check "a record relayed twice is stored once" "$records" "SELECT count(*) FROM prime_pipeline.audit_log"
grep -q "audit records relayed twice; stored once.*records=1" "$tmp/audit.log" && ok "the writer says it saw it twice" \
  || bad "the repeated record was not recognised: $(grep -E 'level=(warn|error)' "$tmp/audit.log" | tail -2)"
"$PRIME_AUDIT" verify >/dev/null && ok "and the chain still holds" || bad "chain broken by a repeated record"
stop_workers

# --- append-only, tamper-evident ----------------------------------------------------------
psql -qAtc "UPDATE prime_pipeline.audit_log SET detail = 'x'" >/dev/null 2>"$tmp/update.err" \
  && bad "UPDATE on audit_log was allowed" || { grep -q "append-only" "$tmp/update.err" && ok "UPDATE on audit_log is refused"; }
psql -qAtc "DELETE FROM prime_pipeline.audit_log" >/dev/null 2>&1 && bad "DELETE on audit_log was allowed" || ok "DELETE on audit_log is refused"
# Behind the trigger's back (a superuser disabling triggers): an edit.
target=$(psql -qAtc "SELECT audit_partition || ' ' || audit_offset || ' ' || audit_id FROM prime_pipeline.audit_log WHERE operation = 'rejected'")
read -r tpart toff tid <<<"$target"
psql -qAt >/dev/null <<SQL
SET session_replication_role = replica;
UPDATE prime_pipeline.audit_log SET detail = 'nothing to see' WHERE audit_id = '$tid';
SQL
"$PRIME_AUDIT" verify >"$tmp/verify.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "partition $tpart offset $toff (audit_id $tid): record_hash does not match" "$tmp/verify.out" \
  && ok "verify names the altered record: $(cat "$tmp/verify.out")" || bad "altered record not caught (exit $rc): $(cat "$tmp/verify.out")"
psql -qAt >/dev/null <<SQL
SET session_replication_role = replica;
UPDATE prime_pipeline.audit_log SET detail = 'stale save: based on version 3, the project is at version 25' WHERE audit_id = '$tid';
SQL
"$PRIME_AUDIT" verify >/dev/null && ok "put back, the chain holds again" || bad "chain still broken after putting the record back"
# A record removed from the middle of its partition's chain.
read -r dpart doff next <<<"$(psql -qAtc "SELECT audit_partition, audit_offset, lead(audit_offset) OVER w FROM prime_pipeline.audit_log WINDOW w AS (PARTITION BY audit_partition ORDER BY audit_offset) ORDER BY audit_partition, audit_offset" | awk -F'|' '$3 != "" { print $1, $2, $3; exit }')"
psql -qAt >/dev/null <<SQL
SET session_replication_role = replica;
DELETE FROM prime_pipeline.audit_log WHERE audit_partition = $dpart AND audit_offset = $doff;
SQL
"$PRIME_AUDIT" verify >"$tmp/verify.out" 2>&1
rc=$?
[ "$rc" = 1 ] && grep -q "partition $dpart offset $next .*: prev_hash" "$tmp/verify.out" \
  && ok "verify names the link after a removed record: $(cat "$tmp/verify.out")" || bad "removed record not caught (exit $rc): $(cat "$tmp/verify.out")"
# A row changed behind the pipeline's back.
psql -qAtc "UPDATE studio_projects SET name = 'edited by hand' WHERE id = '$p1'" >/dev/null
"$PRIME_AUDIT" verify --rows >"$tmp/verify.out" 2>&1
grep -q "studio_projects $p1 differs from its latest audit record" "$tmp/verify.out" \
  && ok "verify --rows names a row changed without an audit record" || bad "hand edit not caught: $(cat "$tmp/verify.out")"

# --- replay: the topics into a fresh database -------------------------------------------
psql -qAtc "CREATE DATABASE replay" >/dev/null || exit 1
replay_db=${PRIME_TEST_DB/dbname=prime/dbname=replay}
"$PRIME_MIGRATE" --db "$replay_db" >/dev/null || exit 1
workers "$replay_db" 2
wait_for "replay: the project reaches version 27 again (its restores waiting for the replayed snapshots)" "27" \
  "SELECT project_version FROM studio_projects WHERE id = '$p1'" replay
wait_for "replay: the same snapshots" "$(psql -qAtc "SELECT count(*) FROM project_snapshots")" "SELECT count(*) FROM project_snapshots" replay
settled "replay" 2 replay
stop_workers
psql -qAtc "UPDATE studio_projects SET name = 'Midnight' WHERE id = '$p1'" >/dev/null
digest() { psql -d "$1" -qAtc "SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '-') FROM $2 t"; }
for table in project_snapshots studio_projects prime_users audio_files; do
  a=$(digest prime "$table") b=$(digest replay "$table")
  [ "$a" = "$b" ] && ok "replay: $table identical ($a)" || bad "replay: $table differs: $a vs $b"
done
PRIME_DB=$replay_db "$PRIME_AUDIT" verify --rows >"$tmp/verify.out" 2>&1 && ok "replay: its audit log verifies, rows as audited" \
  || bad "replay verify: $(cat "$tmp/verify.out")"

grep -E "level=(error|fatal)" "$tmp"/*.log | head -3 | grep -q . && bad "worker errors: $(grep -hE "level=(error|fatal)" "$tmp"/*.log | head -3)" || ok "no worker errors"
finish
