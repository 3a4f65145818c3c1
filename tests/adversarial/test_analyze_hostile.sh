#!/usr/bin/env bash
# Red team, theme the analyzer's input: files that are not what they claim.
# prime-analyze must answer each with either an analysis (exit 0) or one
# line naming the file and a reason class in parentheses (exit 1), within
# seconds, and never crash or read forever (DESIGN.md 3.5, 3.6). Budget
# options with hostile values are usage errors (exit 2). No servers.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
cd "$tmp" || exit 1
python3 - <<'PY'
import struct, math
def wav(data, nch=1, sr=8000, bits=16, datalen=None, riff=None, br=None, fmt_tag=1):
    datalen = len(data) if datalen is None else datalen
    fmt = struct.pack('<HHIIHH', fmt_tag, nch, sr, br if br is not None else (sr * nch * bits // 8) & 0xffffffff,
                      (nch * bits // 8) & 0xffff, bits)
    return (b'RIFF' + struct.pack('<I', riff if riff is not None else 36 + len(data)) + b'WAVEfmt ' +
            struct.pack('<I', 16) + fmt + b'data' + struct.pack('<I', datalen) + data)
tone = b''.join(struct.pack('<h', int(10000 * math.sin(2 * math.pi * 440 * i / 8000))) for i in range(8000))
files = {
  'ok.wav': wav(tone),
  'huge-datalen.wav': wav(tone, datalen=0xffffffff, riff=0xffffffff),
  'zero-channels.wav': wav(tone, nch=0),
  'zero-rate.wav': wav(tone, sr=0),
  'huge-rate.wav': wav(tone, sr=0xffffffff, br=0),
  'one-hz.wav': wav(tone, sr=1),
  'wav-header-mp3-body.wav': wav(b'')[:40] + struct.pack('<I', 4000) + b'\xff\xfb\x90\x64' * 1000,
  'mp3-named.wav': b'ID3\x03\x00\x00\x00\x00\x00\x00\xff\xfb\x90\x64' + b'\x55' * 5000,
  'empty.wav': b'',
  'header-only.wav': wav(b''),
  'nan-float.wav': wav(struct.pack('<f', float('nan')) * 100 + struct.pack('<f', float('inf')) * 100, bits=32, fmt_tag=3),
}
si = bytearray(34)
struct.pack_into('>HH', si, 0, 4096, 4096)
si[10:18] = ((44100 << 44) | (15 << 36) | (2**36 - 1)).to_bytes(8, 'big')  # 2^36-1 samples declared
files['huge-count.flac'] = b'fLaC\x80' + (34).to_bytes(3, 'big') + bytes(si) + b'\xff\xf8' + b'\x00' * 100
for name, data in files.items():
    open(name, 'wb').write(data)
PY
mkfifo fifo.wav; ln -s /dev/zero zero.wav; ln -s /dev/urandom urandom.wav; mkdir dir.wav; ln -s dir.wav link-to-dir.wav
ln -s nowhere.wav dangling.wav; ln -s loop.wav loop.wav
n=0 unanswered=0
for f in *; do
  n=$((n + 1))
  start=$(date +%s)
  timeout 60 "$PRIME_ANALYZE" --max-seconds 600 "$f" >out 2>err </dev/null
  rc=$? took=$(( $(date +%s) - start ))
  if [ "$rc" = 0 ] && grep -q '"analysis"' out; then
    ok "$f: analysed (${took}s)"
  elif [ "$rc" = 1 ] && grep -qE "^prime-analyze: $f: .+ \([a-z_]+\)$" err; then
    ok "$f: refused: $(head -c 120 err)"
  else
    unanswered=$((unanswered + 1))
    bad "$f: exit $rc after ${took}s: $(head -c 200 err)"
  fi
done
"$PRIME_ANALYZE" --max-samples 100 ok.wav >/dev/null 2>err
[ $? = 1 ] && grep -q '(over_budget)' err && ok "--max-samples 100 refuses 8000 samples (over_budget)" || bad "--max-samples 100: $(cat err)"
for opt in "--max-samples -1" "--max-samples 1e3" "--max-samples 99999999999999999999999" "--max-cpu-seconds 0" \
           "--max-cpu-seconds nan" "--max-seconds inf" "--max-seconds -5"; do
  # shellcheck disable=SC2086
  "$PRIME_ANALYZE" $opt ok.wav >/dev/null 2>err
  rc=$?
  [ "$rc" = 2 ] && grep -q -- "${opt%% *}" err && ok "$opt: usage error naming the option" || bad "$opt: exit $rc: $(cat err)"
done
# Figures: the hostile files and option values; lost: files left unanswered
# (neither an analysis nor a reason).
attack_summary analyze_hostile "$((n + 8))" "$unanswered" -
finish
