#!/usr/bin/env bash
# prime-analyzer end to end: uploads published to prime.audio, files in a
# storage root, answers on prime.analysis, and the materializer storing
# them. Checks each outcome (analysed; missing, unsupported, corrupt; a path
# leading outside the root through a symlink refused, one staying inside
# followed), that a request published twice is analysed once, and that the
# mix's loudness reaches its project.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1

root=$tmp/storage
mkdir -p "$root/u1" "$tmp/outside"
sox -R -n -r 44100 -c 2 -b 24 "$root/u1/mix.wav" synth 8 pinknoise tremolo 2 50 vol -16dB || exit 1
echo "not audio, just words" >"$root/u1/garbage.wav"
head -c 20000 "$root/u1/mix.wav" >"$root/u1/cut.wav"
sox -R -n -r 44100 -c 1 "$tmp/outside/secret.wav" synth 1 sine 440
ln -s ../../outside/secret.wav "$root/u1/escape.wav"
ln -s mix.wav "$root/u1/alias.wav"

u1=11111111-1111-4111-8111-111111111111 p1=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
n=0
ev() { # TYPE TIME JSON-FIELDS
  n=$((n + 1))
  printf '{"type":"%s","event_id":"00000000-0000-4000-8000-%012d","occurred_at":"2026-11-25T%s:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"mac",%s}\n' \
    "$1" "$n" "$2" "$u1" "$u1" "$3"
}
upload() { # TIME FILE_ID PATH IS_MIX
  ev audio.file_uploaded "$1" "\"file_id\":\"$2\",\"project_id\":\"$p1\",\"filename\":\"${3##*/}\",\"file_path\":\"$3\",\"file_size_bytes\":1000,\"mime_type\":\"audio/wav\",\"duration_seconds\":8.0,\"sample_rate\":44100,\"bit_depth\":24,\"channels\":2,\"format\":\"wav\",\"tags\":[],\"is_mix\":$4"
}
f() { printf 'f%07d-0000-4000-8000-000000000000' "$1"; }
{
  ev user.registered 10:00 "\"email\":\"nova@example.com\",\"username\":\"nova\",\"display_name\":\"Nova\",\"email_verified\":false"
  ev project.created 10:01 "\"project_id\":\"$p1\",\"name\":\"Mix\",\"project_data\":{}"
  upload 10:02 "$(f 1)" u1/mix.wav true
  upload 10:03 "$(f 2)" u1/missing.wav false
  upload 10:04 "$(f 3)" u1/garbage.wav false
  upload 10:05 "$(f 4)" u1/cut.wav false
  upload 10:06 "$(f 5)" u1/escape.wav false
  upload 10:07 "$(f 6)" u1/alias.wav false
} >"$tmp/events.jsonl"
sed -n 3p "$tmp/events.jsonl" >>"$tmp/events.jsonl" # the mix's upload published twice: one request
"$PRIME_PUBLISH" "$tmp/events.jsonl" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }

"$PRIME_ANALYZER" --storage-root "$root" --threads 2 -X session.timeout.ms=6000 >"$tmp/analyzer.log" 2>&1 &
apid=$!
for _ in $(seq 300); do
  [ "$(psql -qAtc "SELECT count(*) FROM prime_pipeline.analysis_requests")" = 6 ] && break
  sleep 0.1
done
# A second answer to the duplicate would come after the first: wait until
# the analyzer has committed every record of prime.audio.
audio_consumed() {
  [ "$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets
                   WHERE group_id = 'prime-analyzer' AND topic = 'prime.audio'")" = "$(on_topic prime.audio)" ]
}
wait_until 30 audio_consumed || bad "the analyzer did not consume all of prime.audio"
kill -TERM "$apid"; wait "$apid"
check "each request answered once, with its outcome" \
  "$(f 1)|analyzed;$(f 2)|missing;$(f 3)|unsupported;$(f 4)|corrupt;$(f 5)|path_rejected;$(f 6)|analyzed" \
  "SELECT string_agg(file_id || '|' || outcome, ';' ORDER BY file_id) FROM prime_pipeline.analysis_requests"
answers=$(kcat -b "$PRIME_BROKERS" -C -t prime.analysis -o beginning -e -q -f '%h\n' 2>/dev/null | grep -c prime.event_type)
[ "$answers" = 6 ] && ok "six answers on prime.analysis (the duplicate upload was not analysed again)" || bad "answers: $answers"
grep -q 'request answered before; not analysed again' "$tmp/analyzer.log" && ok "the duplicate is logged" || bad "duplicate log"
grep -q 'reason=path_rejected' "$tmp/analyzer.log" && ok "the symlink out of the root is refused" || bad "escape"

"$PRIME_MATERIALIZER" -X session.timeout.ms=6000 --linger-ms 200 >"$tmp/mat.log" 2>&1 &
mpid=$!
for _ in $(seq 300); do
  [ "$(psql -qAtc "SELECT count(*) FROM audio_files WHERE audio_analysis IS NOT NULL")" = 2 ] && break
  sleep 0.1
done
kill -TERM "$mpid"; wait "$mpid"
check "the analyses are stored with the analyzer's version" "1.0.0|1.0.0" \
  "SELECT string_agg(audio_analysis->>'analyzer_version', '|' ORDER BY id) FROM audio_files WHERE audio_analysis IS NOT NULL"
lufs=$("$PRIME_ANALYZE" "$root/u1/mix.wav" | /usr/bin/python3 -c 'import json, sys; a = json.load(sys.stdin)["analysis"]; print("%.2f|%.2f" % (a["loudness"]["integrated_lufs"], a["dynamics"]["dr"]))')
check "the mix's integrated loudness and DR reach the project (as prime-analyze measures them)" "$lufs" \
  "SELECT current_lufs || '|' || dynamic_range FROM studio_projects WHERE id = '$p1'"
check "failed analyses change no row" "0" \
  "SELECT count(*) FROM audio_files WHERE audio_analysis IS NOT NULL AND id NOT IN ('$(f 1)', '$(f 6)')"
if [ "$failed" != 0 ]; then
  grep -E 'level=(warn|error)' "$tmp/analyzer.log" "$tmp/mat.log" | tail -20
fi
finish
