#!/usr/bin/env bash
# prime-analyzer end to end: uploads published to prime.audio, files in a
# storage root, answers on prime.analysis, and the materializer storing
# them. Checks each outcome (analysed; missing, unsupported, corrupt; a path
# leading outside the root through a symlink refused, one staying inside
# followed; a FIFO refused at once; a file over the budget of decoded
# samples), the poison matrix (odd rates, a full-scale 8-channel square, a
# float file at +18 dBFS, a long multibyte path: each answered, the analyzer
# still running, the next upload answered), that a request published twice
# is analysed once, and that the mix's loudness reaches its project.
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
mkfifo "$root/u1/fifo.wav" # opening it for reading waited for a writer, holding the worker
# 60 s of 8-channel 384 kHz silence in 33 KB: 184 million samples, over the budget given below
ffmpeg -v error -f lavfi -i anullsrc=r=384000:cl=7.1 -t 60 -c:a flac -sample_fmt s16 "$root/u1/huge.flac" || exit 1
# The poison matrix (issue 12 item 2): files whose analysis the schema of
# audio.analyzed refused, so that the analyzer exited on every restart.
sox -R -n -r 12000 -c 2 -b 16 "$root/u1/12k.wav" synth 4 pinknoise vol -16dB
sox -R -n -r 7350 -c 1 -b 16 "$root/u1/7350.wav" synth 4 sine 440 vol -12dB
sox -R -n -r 48000 -c 8 -b 16 "$root/u1/square.wav" synth 4 square 100 vol 0.999   # +10 LUFS, true peak > 0 dBTP
/usr/bin/python3 - "$root/u1/hot.wav" <<'PY' # a float sine of amplitude 8: +18.06 dBFS, +18.06 LUFS
import struct, sys, numpy as np
x = np.repeat((8 * np.sin(2 * np.pi * 997 * np.arange(4 * 48000) / 48000))[:, None], 2, axis=1).astype("<f4").tobytes()
fmt = struct.pack("<HHIIHH", 3, 2, 48000, 48000 * 8, 8, 32)
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", 36 + len(x)) + b"WAVEfmt " + struct.pack("<I", 16) + fmt
                              + b"data" + struct.pack("<I", len(x)) + x)
PY
long=$(printf '\xe9\x9f\xb3%.0s' $(seq 80)) # 80 three-byte characters: 240 bytes a directory
deep="u1/$long/$long/$long/$long"
mkdir -p "$root/$deep" && cp "$root/u1/mix.wav" "$root/$deep/mix.wav"

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
  upload 10:08 "$(f 7)" u1/fifo.wav false
  upload 10:09 "$(f 8)" u1/huge.flac false
  upload 10:10 "$(f 9)" u1/12k.wav false
  upload 10:11 "$(f 10)" u1/7350.wav false
  upload 10:12 "$(f 11)" u1/square.wav false
  upload 10:13 "$(f 12)" u1/hot.wav false
  upload 10:14 "$(f 13)" "$deep/mix.wav" false      # a 985-byte path
  upload 10:15 "$(f 14)" "$deep/missing.wav" false  # its message, cut to 512 bytes, was cut inside a character
} >"$tmp/events.jsonl"
sed -n 3p "$tmp/events.jsonl" >>"$tmp/events.jsonl" # the mix's upload published twice: one request
"$PRIME_PUBLISH" "$tmp/events.jsonl" 2>"$tmp/publish.log" || { cat "$tmp/publish.log"; exit 1; }

"$PRIME_ANALYZER" --storage-root "$root" --threads 2 --max-samples 50000000 "${group_x[@]}" \
  >"$tmp/analyzer.log" 2>&1 &
apid=$!
for _ in $(seq 300); do
  [ "$(psql -qAtc "SELECT count(*) FROM prime_pipeline.analysis_requests")" = 14 ] && break
  sleep 0.1
done
kill -0 "$apid" 2>/dev/null && ok "the analyzer is still running after the poison matrix" || bad "the analyzer exited"
# The next upload is answered too.
ev audio.file_uploaded 10:20 "\"file_id\":\"$(f 15)\",\"project_id\":\"$p1\",\"filename\":\"next.wav\",\"file_path\":\"u1/alias.wav\",\"file_size_bytes\":1000,\"mime_type\":\"audio/wav\",\"duration_seconds\":8.0,\"sample_rate\":44100,\"bit_depth\":24,\"channels\":2,\"format\":\"wav\",\"tags\":[],\"is_mix\":false" \
  | "$PRIME_PUBLISH" 2>>"$tmp/publish.log" || bad "publishing the next upload"
for _ in $(seq 300); do
  [ "$(psql -qAtc "SELECT count(*) FROM prime_pipeline.analysis_requests")" = 15 ] && break
  sleep 0.1
done
# A second answer to the duplicate would come after the first: wait until
# the analyzer has committed every record of prime.audio.
audio_consumed() {
  [ "$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets
                   WHERE group_id = 'prime-analyzer' AND topic = 'prime.audio'")" = "$(on_topic prime.audio)" ]
}
wait_until 30 audio_consumed || bad "the analyzer did not consume all of prime.audio"
kill -0 "$apid" 2>/dev/null && ok "still running after the next upload" || bad "the analyzer exited"
kill -TERM "$apid"; wait "$apid"
check "each request answered once, with its outcome" \
  "$(f 1)|analyzed;$(f 2)|missing;$(f 3)|unsupported;$(f 4)|corrupt;$(f 5)|path_rejected;$(f 6)|analyzed;$(f 7)|unreadable;$(f 8)|over_budget;$(f 9)|analyzed;$(f 10)|analyzed;$(f 11)|analyzed;$(f 12)|analyzed;$(f 13)|analyzed;$(f 14)|missing;$(f 15)|analyzed" \
  "SELECT string_agg(file_id || '|' || outcome, ';' ORDER BY file_id) FROM prime_pipeline.analysis_requests"
answers=$(kcat -b "$PRIME_BROKERS" -C -t prime.analysis -o beginning -e -q -f '%h\n' 2>/dev/null | grep -c prime.event_type)
[ "$answers" = 15 ] && ok "fifteen answers on prime.analysis (the duplicate upload was not analysed again)" || bad "answers: $answers"
kcat -b "$PRIME_BROKERS" -C -t prime.analysis -o beginning -e -q -f '%s\n' 2>/dev/null >"$tmp/answers"
grep -a -q 'fifo.wav: not a regular file' "$tmp/answers" && ok "the FIFO is refused without waiting for a writer" || bad "fifo"
grep -a -q 'budget of 50000000 decoded samples' "$tmp/answers" \
  && ok "the tiny huge FLAC is answered over_budget, with the budget in the message" || bad "over_budget message"
grep -q 'request answered before; not analysed again' "$tmp/analyzer.log" && ok "the duplicate is logged" || bad "duplicate log"
grep -q 'reason=path_rejected' "$tmp/analyzer.log" && ok "the symlink out of the root is refused" || bad "escape"

"$PRIME_MATERIALIZER" "${group_x[@]}" --linger-ms 200 >"$tmp/mat.log" 2>&1 &
mpid=$!
for _ in $(seq 300); do
  [ "$(psql -qAtc "SELECT count(*) FROM audio_files WHERE audio_analysis IS NOT NULL")" = 8 ] && break
  sleep 0.1
done
kill -TERM "$mpid"; wait "$mpid"
version=$("$PRIME_ANALYZE" --version)
check "the analyses are stored with the analyzer's version ($version)" "8|$version" \
  "SELECT count(*) || '|' || string_agg(DISTINCT audio_analysis->>'analyzer_version', '|') FROM audio_files WHERE audio_analysis IS NOT NULL"
# Every answer, analysed or failed, carries it in its analyzer_version field
# (a string field: its length as a zig-zag varint, then the bytes).
kcat -b "$PRIME_BROKERS" -C -t prime.analysis -o beginning -e -q -f '%s<<END>>' 2>/dev/null | /usr/bin/python3 -c '
import sys
version = sys.argv[1].encode()
field = bytes([2 * len(version)]) + version
answers = [m for m in sys.stdin.buffer.read().split(b"<<END>>") if m]
print(len(answers), sum(field in m for m in answers))' "$version" >"$tmp/versions"
[ "$(cat "$tmp/versions")" = "15 15" ] && ok "all 15 answers, analysed and failed, carry version $version" \
  || bad "answers carrying the version: $(cat "$tmp/versions")"
check "measured figures as they are: 12 kHz, 7350 Hz; +18 LUFS; the square's DR 0" "12000|7350|18.06|0.00" \
  "SELECT (SELECT sample_rate FROM audio_files WHERE id = '$(f 9)') || '|' || (SELECT sample_rate FROM audio_files WHERE id = '$(f 10)')
     || '|' || (SELECT round((audio_analysis->'loudness'->>'integrated_lufs')::numeric, 2) FROM audio_files WHERE id = '$(f 12)')
     || '|' || (SELECT to_char((audio_analysis->'dynamics'->>'dr')::numeric, 'FM0.00') FROM audio_files WHERE id = '$(f 11)')"
lufs=$("$PRIME_ANALYZE" "$root/u1/mix.wav" | /usr/bin/python3 -c 'import json, sys; a = json.load(sys.stdin)["analysis"]; print("%.2f|%.2f" % (a["loudness"]["integrated_lufs"], a["dynamics"]["dr"]))')
check "the mix's integrated loudness and DR reach the project (as prime-analyze measures them)" "$lufs" \
  "SELECT current_lufs || '|' || dynamic_range FROM studio_projects WHERE id = '$p1'"
check "failed analyses change no row" "0" \
  "SELECT count(*) FROM audio_files WHERE audio_analysis IS NOT NULL AND id NOT IN ('$(f 1)', '$(f 6)', '$(f 9)', '$(f 10)', '$(f 11)', '$(f 12)', '$(f 13)', '$(f 15)')"
if [ "$failed" != 0 ]; then
  grep -E 'level=(warn|error)' "$tmp/analyzer.log" "$tmp/mat.log" | tail -20
fi
# Figures: the uploads (the poison matrix among them, one published twice,
# one after them); lost: uploads without an answer.
attack_summary analyzer_poison "$(( $(grep -c audio.file_uploaded "$tmp/events.jsonl") + 1 ))" \
  "$(( 15 - $(psql -qAtc "SELECT count(*) FROM prime_pipeline.analysis_requests WHERE outcome IS NOT NULL") ))" -
finish
