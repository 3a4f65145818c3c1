#!/usr/bin/env bash
# Red team, theme a closed or full stdout (failed on main at
# 85ca8cd). A program whose answer is what it prints must not exit 0 when
# the answer could not be written (DESIGN.md 3.3/3.5: never silent loss).
# prime-codec already does this right (exit 1 on /dev/full); prime-publish
# --dry-run and --example, and prime-analyze, exit 0 with their output lost.
# No servers.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
"$PRIME_CODEC" example user.registered 1 >"$tmp/ev.json" || exit 1
python3 -c 'import struct,math,sys
d=b"".join(struct.pack("<h",int(9000*math.sin(i/3))) for i in range(8000))
sys.stdout.buffer.write(b"RIFF"+struct.pack("<I",36+len(d))+b"WAVEfmt "+struct.pack("<IHHIIHH",16,1,1,8000,16000,2,16)+b"data"+struct.pack("<I",len(d))+d)' >"$tmp/tone.wav"
lost_silently=0
expect_fail() { # NAME CMD...: exit non-zero when stdout is /dev/full
  local name=$1; shift
  "$@" >/dev/full 2>"$tmp/err"; local rc=$?
  [ "$rc" = 0 ] && lost_silently=$((lost_silently + 1))
  [ "$rc" != 0 ] && ok "$name: exit $rc on a full stdout" || bad "$name: exit 0 with its output lost"
}
expect_fail "prime-codec decode (control)" sh -c '"$0" encode "$1" | "$0" decode' "$PRIME_CODEC" "$tmp/ev.json"
expect_fail "prime-publish --dry-run" "$PRIME_PUBLISH" --dry-run "$tmp/ev.json"
expect_fail "prime-publish --example" "$PRIME_PUBLISH" --example user.registered
expect_fail "prime-analyze" "$PRIME_ANALYZE" "$tmp/tone.wav"
# Figures: the programs run on a full stdout; lost: answers lost with exit 0.
attack_summary stdout_full 4 "$lost_silently" -
finish
