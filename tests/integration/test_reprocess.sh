#!/usr/bin/env bash
# prime-reprocess end to end on the dev broker and an ephemeral PostgreSQL:
# files analysed by this release, then the next release (its version
# bumped) deployed; reprocessing the older ones replaces every result with
# the new version's, a missing file is reported failed with its reason, a
# second run sends nothing, and the selections pick what they say.
set -uo pipefail
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

root=$tmp/storage
mkdir -p "$root/u1" "$root/u2"
sox -R -n -r 44100 -c 2 "$root/u1/mix.wav" synth 2 pinknoise vol -16dB || exit 1
sox -R -n -r 44100 -c 1 "$root/u1/vocals.wav" synth 2 sine 440 vol -20dB || exit 1
sox -R -n -r 48000 -c 2 "$root/u2/beat.wav" synth 2 square 110 vol -12dB || exit 1
sox -R -n -r 48000 -c 2 "$root/u2/gone.wav" synth 2 sine 220 || exit 1

u1=11111111-1111-4111-8111-111111111111 u2=22222222-2222-4222-8222-222222222222
p1=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa p2=bbbbbbbb-bbbb-4bbb-8bbb-bbbbbbbbbbbb
f() { printf 'f%07d-0000-4000-8000-000000000000' "$1"; }
n=0
ev() { # TYPE OWNER MINUTE JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"mac",%s}\n' \
    "$1" "$n" "$3" "$2" "$2" "$4"
}
upload() { # OWNER MINUTE FILE_ID PROJECT PATH
  ev audio.file_uploaded "$1" "$2" "\"file_id\":\"$3\",\"project_id\":\"$4\",\"filename\":\"${5##*/}\",\"file_path\":\"$5\",\"file_size_bytes\":1000,\"mime_type\":\"audio/wav\",\"duration_seconds\":2.0,\"sample_rate\":44100,\"bit_depth\":16,\"channels\":2,\"format\":\"wav\",\"tags\":[],\"is_mix\":false"
}
{
  ev user.registered "$u1" 0 '"email":"nova@example.com","username":"nova","display_name":"Nova","email_verified":false'
  ev user.registered "$u2" 0 '"email":"echo@example.com","username":"echo","display_name":"Echo","email_verified":false'
  ev project.created "$u1" 1 "\"project_id\":\"$p1\",\"name\":\"One\",\"project_data\":{}"
  ev project.created "$u2" 1 "\"project_id\":\"$p2\",\"name\":\"Two\",\"project_data\":{}"
  upload "$u1" 2 "$(f 1)" "$p1" u1/mix.wav
  upload "$u2" 3 "$(f 3)" "$p2" u2/beat.wav
  upload "$u2" 4 "$(f 4)" "$p2" u2/gone.wav
} >"$tmp/events.jsonl"
"$PRIME_PUBLISH" "$tmp/events.jsonl" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }
ev audio.stem_uploaded "$u1" 5 "\"file_id\":\"$(f 2)\",\"project_id\":\"$p1\",\"parent_file_id\":\"$(f 1)\",\"stem_type\":\"vocals\",\"filename\":\"vocals.wav\",\"file_path\":\"u1/vocals.wav\",\"file_size_bytes\":1000,\"mime_type\":\"audio/wav\",\"duration_seconds\":2.0,\"sample_rate\":44100,\"bit_depth\":16,\"channels\":1,\"format\":\"wav\",\"tags\":[]" >"$tmp/stem.jsonl"
"$PRIME_PUBLISH" "$tmp/stem.jsonl" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }

common=("${group_x[@]}")
"$PRIME_MATERIALIZER" --linger-ms 100 "${common[@]}" >"$tmp/mat.log" 2>&1 & pids+=($!)
"$PRIME_ANALYZER" --storage-root "$root" "${common[@]}" >"$tmp/analyzer.log" 2>&1 & apid=$!; pids+=($apid)
versions() { psql -qAtc "SELECT string_agg(id || '=' || coalesce(audio_analysis->>'analyzer_version', '-'), ' ' ORDER BY id) FROM audio_files"; }
wait_versions() { # NAME EXPECTED
  local got
  for _ in $(seq 600); do got=$(versions); [ "$got" = "$2" ] && { ok "$1"; return; }; sleep 0.1; done
  bad "$1: expected [$2], got [$got]"
}
v=$("$PRIME_ANALYZE" --version) # this release's analyzer version
wait_versions "this release analyses every file" "$(f 1)=$v $(f 2)=$v $(f 3)=$v $(f 4)=$v"
old_analysis=$(psql -qAtc "SELECT audio_analysis::text FROM audio_files WHERE id = '$(f 3)'")

# The next release is deployed; a file disappears from storage meanwhile.
kill -TERM "$apid"; wait "$apid"
rm "$root/u2/gone.wav"
"$PRIME_ANALYZER_NEXT" --storage-root "$root" "${common[@]}" >"$tmp/analyzer-next.log" 2>&1 & pids+=($!)

run() { "$PRIME_REPROCESS" "$@" >"$tmp/out" 2>"$tmp/err"; echo $?; }
status() { if [ "$3" = "$2" ]; then ok "$1"; else bad "$1: exit $3, expected $2: $(cat "$tmp/out" "$tmp/err")"; fi; }
has() { if grep -qF -- "$2" "$tmp/out"; then ok "$1"; else bad "$1: no [$2] in: $(cat "$tmp/out" "$tmp/err")"; fi; }

status "dry run of the stems" 0 "$(run --stems-only --older-than-version 99.0.0 --run next --dry-run)"
has "the dry run lists the stem" "would request $(f 2) u1/vocals.wav (analysed by: $v)"
has "and only the stem" "1 selected, 0 answered in an earlier run, 1 would be sent"
status "dry run of one user" 0 "$(run --user "${u2^^}" --older-than-version 99.0.0 --run next --dry-run)"
has "an upper-case id selects the same user" "2 selected"
audio_before=$(on_topic prime.audio)
status "the dry runs sent nothing" "$audio_before" "$(on_topic prime.audio)"

status "reprocessing with a missing file exits 1" 1 "$(run --older-than-version 99.0.0 --run next --rate 20 --timeout 120)"
has "the summary counts each outcome" "4 selected, 0 answered in an earlier run, 4 sent; 3 analysed, 1 failed, 0 pending"
has "failures grouped by reason" "failed: missing"
has "the failed file is named" "$(f 4) u2/gone.wav (missing)"
status "four requests went out" "$((audio_before + 4))" "$(on_topic prime.audio)"
wait_versions "every remaining file has the new version's results" \
  "$(f 1)=99.0.0 $(f 2)=99.0.0 $(f 3)=99.0.0 $(f 4)=$v"
new_analysis=$(psql -qAtc "SELECT audio_analysis::text FROM audio_files WHERE id = '$(f 3)'")
[ "$new_analysis" != "$old_analysis" ] && [ -n "$new_analysis" ] && ok "the old results are replaced" || bad "analysis not replaced"

status "a second run still reports the failure" 1 "$(run --older-than-version 99.0.0 --run next --timeout 30)"
has "and sends nothing" "1 selected, 1 answered in an earlier run, 0 sent"
status "nothing more went out" "$((audio_before + 4))" "$(on_topic prime.audio)"
status "--failed selects the missing file" 0 "$(run --failed --run next --dry-run)"
has "only it" "1 selected, 1 answered in an earlier run, 0 would be sent"

# Clear errors.
status "no selection" 2 "$(run)"
status "a bad user id" 2 "$(run --user nope)"
grep -qF -- "--user: expected a user id (a UUID), got 'nope'" "$tmp/err" && ok "the bad id is named" || bad "message: $(cat "$tmp/err")"
status "a bad rate" 2 "$(run --all --rate 0)"
finish
