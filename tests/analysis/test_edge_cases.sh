#!/usr/bin/env bash
# prime-analyze on the files that gave confident wrong numbers or wrong
# refusals (issue 16 item 9), each checked against ffmpeg's ebur128
# (peak=true) and drmeter where ffmpeg can measure it: a VBR MP3 without a
# Xing header, files of unknown length (WAV and FLAC written to a pipe), an
# 8-channel plain WAV, files shorter than the loudness windows, a float file
# above full scale, a full-scale square (DR), and NaN or infinite samples.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
py=/usr/bin/python3

# ffmpeg's figures for FILE as "I LRA TP DR SAMPLES MAXM MAXS" (frame
# metadata: three decimals; M and S are -inf or -120.7 until their window
# is full; the maxima are of the frames' values).
ffmpeg_figures() {
  ffmpeg -nostats -hide_banner -i "$1" \
    -af "ebur128=peak=true:metadata=1,ametadata=mode=print:file=$tmp/meta.txt,drmeter,astats=metadata=0:measure_perchannel=none" \
    -f null - >"$tmp/ffmpeg.log" 2>&1
  awk -F= -v dr="$(sed -n 's/.*Overall DR: //p' "$tmp/ffmpeg.log")" \
    -v n="$(sed -n 's/.*Number of samples: //p' "$tmp/ffmpeg.log" | tail -1)" '
    function num(v) { return v == "-inf" || v == "inf" || v == "nan" ? -999 : v + 0 }
    BEGIN { m = -999; s = -999 }
    /lavfi.r128.I=/ { i = $2 } /lavfi.r128.LRA=/ { lra = $2 } /lavfi.r128.true_peak=/ { tp = $2 }
    /lavfi.r128.M=/ { if (num($2) > m) m = num($2) } /lavfi.r128.S=/ { if (num($2) > s) s = num($2) }
    END { printf "%s %s %s %s %s %s %s", i, lra, tp, dr, n, m, s }' "$tmp/meta.txt"
}

# prime-analyze's JSON for FILE, or the refusal on stderr.
ours() { "$PRIME_ANALYZE" "$1" 2>"$tmp/stderr"; }

# Checks written in python: FIGURES from ffmpeg, JSON ours, then the checks.
judge() { # LABEL JSON FIGURES PYTHON-CHECKS
  $py - "$1" "$2" "$3" "$4" <<'PY'
import json, math, sys
label, text, figures, checks = sys.argv[1:5]
a = json.loads(text)["analysis"] if text else None
f = figures.split()
I, LRA, TP, DR, N, M, S = (float(x) if x not in ("", "-inf", "nan") else float("nan") for x in (f + [""] * 7)[:7])
L = a["loudness"] if a else None
for line in checks.strip().split("\n"):
    name, expr = line.split(":", 1)
    try:
        ok = eval(expr)
    except Exception as e:
        ok, expr = False, "%s (%s)" % (expr, e)
    print("%s %s: %s" % ("ok  " if ok else "FAIL", label, name if ok else name + ": " + expr.strip()))
PY
}

run() { # LABEL FILE CHECKS
  local json figures
  json=$(ours "$2")
  figures=$(ffmpeg_figures "$2")
  judge "$1" "$json" "$figures" "$3"
  [ -n "$json" ] || echo "     (refused: $(cat "$tmp/stderr"))"
}

# A VBR MP3 without a Xing header: quiet for a second, then loud, so the
# first frame's bit rate makes the size-based length estimate far too short.
ffmpeg -v error -y -f lavfi -i "anoisesrc=d=5.04:c=pink:a=0.3:seed=7,volume='if(lt(t,1),0.001,1)':eval=frame" \
  -ar 44100 -ac 2 -c:a libmp3lame -q:a 2 -write_xing 0 "$tmp/vbr.mp3"
results=$(run "VBR MP3 without Xing" "$tmp/vbr.mp3" '
format mp3:a["format"] == "mp3"
every frame the decoder yields (as ffmpeg):a["frames"] == N
duration is the decoded one:abs(a["duration_seconds"] - N / 44100) < 0.001
integrated as ffmpeg:abs(L["integrated_lufs"] - I) <= 0.1
true peak as ffmpeg:abs(L["true_peak_dbtp"] - 20 * math.log10(TP)) <= 0.3')

# Unknown length: WAV (size 0xFFFFFFFF) and FLAC (total samples 0) written
# to a pipe.
ffmpeg -v error -f lavfi -i "anoisesrc=d=6:c=pink:a=0.2:seed=3" -ar 48000 -ac 2 -f wav - | cat >"$tmp/pipe.wav"
ffmpeg -v error -f lavfi -i "anoisesrc=d=6:c=pink:a=0.2:seed=3" -ar 48000 -ac 2 -f flac - | cat >"$tmp/pipe.flac"
# sox writes 0x7FFFF000 for the same case.
sox -R -n -r 48000 -c 2 -b 16 -t wav - synth 6 pinknoise vol -14dB 2>/dev/null | cat >"$tmp/soxpipe.wav"
for f in pipe.wav pipe.flac soxpipe.wav; do
  results+=$'\n'$(run "$f (length unknown)" "$tmp/$f" '
analysed to its end:a["frames"] == N == 288000
integrated as ffmpeg:abs(L["integrated_lufs"] - I) <= 0.1
LRA as ffmpeg:abs(L["loudness_range_lu"] - LRA) <= 0.25')
done

# 8 channels, plain WAV (no channel map), each channel a different level of
# noise: every channel weighs in (ffmpeg guesses 7.1: LFE out, the four
# surrounds +1.5 dB).
$py - "$tmp/eight.wav" <<'PY'
import sys, wave, numpy as np
rng = np.random.default_rng(8)
levels = np.array([-30, -28, -40, -20, -35, -33, -18, -16.0])
x = rng.uniform(-1, 1, (48000 * 8, 8)) * 10 ** (levels / 20)
w = wave.open(sys.argv[1], "wb"); w.setnchannels(8); w.setsampwidth(2); w.setframerate(48000)
w.writeframes((x * 32767).astype("<i2").tobytes()); w.close()
PY
results+=$'\n'$(run "8-channel plain WAV" "$tmp/eight.wav" '
integrated as ffmpeg (channels 7 and 8 count):abs(L["integrated_lufs"] - I) <= 0.1')

# The same levels in a WAVE_FORMAT_EXTENSIBLE file with sox's channel mask
# for 8 channels: the map's roles give the weights.
sox -R "$tmp/eight.wav" -t wavpcm -b 16 "$tmp/eight-raw.wav" && sox -R "$tmp/eight-raw.wav" -t wav "$tmp/eight-mask.wav"
results+=$'\n'$(run "8-channel WAV with a channel mask" "$tmp/eight-mask.wav" '
integrated as ffmpeg:abs(L["integrated_lufs"] - I) <= 0.1')

# Shorter than the windows: 2 s (no 3 s short-term window) and 0.3 s (no
# 400 ms momentary window): no figure, as ffmpeg has none, and a reason.
sox -R -n -r 48000 -c 2 -b 24 "$tmp/two.wav" synth 2 pinknoise vol -12dB
sox -R -n -r 48000 -c 2 -b 24 "$tmp/short.wav" synth 0.3 pinknoise vol -12dB
results+=$'\n'$(run "2 s file" "$tmp/two.wav" '
ffmpeg has no short-term value:S < -100
max short-term null:L["max_short_term_lufs"] is None
with its reason:"3 s" in L["null_reasons"]["max_short_term_lufs"]
max momentary as ffmpeg:abs(L["max_momentary_lufs"] - M) <= 0.1')
results+=$'\n'$(run "0.3 s file" "$tmp/short.wav" '
ffmpeg has no momentary value:M < -100
max momentary null:L["max_momentary_lufs"] is None
with its reason:"400 ms" in L["null_reasons"]["max_momentary_lufs"]
DR not negative:a["dynamics"]["dr"] >= 0')

# A float file 18 dB above full scale: measured as it is (a 997 Hz sine of
# amplitude 8 on both channels reads 20 log10(8) = 18.06 LUFS, EBU Tech
# 3341; ffmpeg cannot say: its loudness histogram ends at +10 LUFS).
$py - "$tmp/hot.wav" <<'PY'
import sys, numpy as np, struct
rate, n = 48000, 48000 * 5
t = np.arange(n) / rate
x = (8 * np.sin(2 * np.pi * 997 * t)).astype("<f4")
data = np.repeat(x[:, None], 2, axis=1).tobytes()
fmt = struct.pack("<HHIIHH", 3, 2, rate, rate * 8, 8, 32)
open(sys.argv[1], "wb").write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
    + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
PY
results+=$'\n'$(run "float file at +18 dBFS" "$tmp/hot.wav" '
integrated +18.06 LUFS:abs(L["integrated_lufs"] - 18.06) <= 0.1
true peak as ffmpeg:abs(L["true_peak_dbtp"] - 20 * math.log10(TP)) <= 0.3
sample peak +18 dBFS:abs(L["sample_peak_dbfs"] - 18.06) <= 0.01')

# A full-scale square in 8 channels: its RMS with the meter's +3 dB is 3 dB
# over its peak; DR is 0, never negative. (ffmpeg's drmeter says -6.99 here:
# it counts every block of its top RMS bin, and divides by 0.2 n.)
sox -R -n -r 48000 -c 8 -b 16 "$tmp/square.wav" synth 7 square 100 vol 0.999
results+=$'\n'$(run "full-scale square, 8 channels" "$tmp/square.wav" '
crest factor 0 dB:abs(a["dynamics"]["crest_factor_db"]) <= 0.01
DR 0:a["dynamics"]["dr"] == 0 and all(d == 0 for d in a["dynamics"]["dr_channels"])
true peak as ffmpeg:abs(L["true_peak_dbtp"] - 20 * math.log10(TP)) <= 0.3')

# NaN and infinite samples: refused as corrupt (they were read as silence).
$py - "$tmp" <<'PY'
import sys, numpy as np, struct
def write(path, x):
    data = x.astype("<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 48000, 48000 * 4, 4, 32)
    open(path, "wb").write(b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)
write(sys.argv[1] + "/inf.wav", np.full(48000, np.inf))
x = 0.1 * np.sin(np.arange(48000) / 10.0); x[30000] = np.nan
write(sys.argv[1] + "/nan.wav", x)
PY
for f in inf nan; do
  if "$PRIME_ANALYZE" "$tmp/$f.wav" >/dev/null 2>"$tmp/stderr"; then
    results+=$'\n'"FAIL $f.wav analysed: $(cat "$tmp/stderr")"
  elif grep -q '(corrupt)' "$tmp/stderr" && grep -qi "$f" "$tmp/stderr"; then
    results+=$'\n'"ok   $f.wav refused as corrupt: $(cat "$tmp/stderr")"
  else
    results+=$'\n'"FAIL $f.wav: $(cat "$tmp/stderr")"
  fi
done

echo "$results"
passed=$(grep -c '^ok' <<<"$results") failed=$(grep -c '^FAIL' <<<"$results")
[ "$passed" -ge 25 ] || { echo "only $passed checks ran"; failed=$((failed + 1)); }
finish
