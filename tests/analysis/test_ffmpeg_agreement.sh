#!/usr/bin/env bash
# prime-analyze against an independent implementation, ffmpeg's ebur128 and
# drmeter filters, on programme-like material made by sox (noise of several
# colours, tremolo, level changes; a little over two minutes) at several
# rates and channel counts. Tolerances from the issue: integrated loudness
# 0.1 LU, loudness range 0.25 LU, true peak 0.3 dB, DR 1.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"

compare() { # RATE CHANNELS BITS
  local f="$tmp/programme-$1-$2.wav" ours theirs dr
  sox -R -n -r "$1" -c "$2" -b "$3" "$f" synth 30 pinknoise tremolo 2 60 vol -18dB : synth 30 pinknoise vol -30dB \
    : synth 30 brownnoise tremolo 5 90 vol -12dB : synth 35 whitenoise lowpass 2000 tremolo 0.5 70 vol -20dB \
    || { bad "sox could not make $f"; return; }
  ours=$("$PRIME_ANALYZE" "$f") || { bad "prime-analyze failed on $f"; return; }
  # ffmpeg prints its figures to one decimal; its frame metadata has three.
  dr=$(ffmpeg -nostats -hide_banner -i "$f" -af "ebur128=peak=true:metadata=1,ametadata=mode=print:file=$tmp/meta.txt,drmeter" \
    -f null - 2>&1 | sed -n 's/.*Overall DR: //p')
  theirs=$(awk -F= '/lavfi.r128.I=/ { i = $2 } /lavfi.r128.LRA=/ { lra = $2 } /lavfi.r128.true_peak=/ { tp = $2 }
                    END { printf "%s %s %s", i, lra, tp }' "$tmp/meta.txt")
  /usr/bin/python3 - "$ours" "$theirs $dr" "$1 Hz, $2 channel(s), $3 bits" <<'PY'
import json, math, sys
a = json.loads(sys.argv[1])["analysis"]
i, lra, tp, dr = (float(x) for x in sys.argv[2].split())
label = sys.argv[3]
checks = [
    ("integrated loudness", a["loudness"]["integrated_lufs"], i, 0.1),
    ("loudness range", a["loudness"]["loudness_range_lu"], lra, 0.25),
    ("true peak", a["loudness"]["true_peak_dbtp"], 20 * math.log10(tp), 0.3),
    ("DR", a["dynamics"]["dr"], dr, 1.0),
]
for name, ours, theirs, tolerance in checks:
    verdict = "ok  " if abs(ours - theirs) <= tolerance else "FAIL"
    print("%s %s, %s: ours %.3f, ffmpeg %.3f (within %.2f)" % (verdict, label, name, ours, theirs, tolerance))
PY
}

results=$(compare 44100 2 24; compare 48000 1 16; compare 96000 2 24)
echo "$results"
passed=$(grep -c '^ok' <<<"$results") failed=$(grep -c '^FAIL' <<<"$results")
[ "$passed" = 12 ] || failed=$((failed + 1))
finish
