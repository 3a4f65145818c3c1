#!/usr/bin/env bash
# Red team, theme secrets (failed on main at 85ca8cd). A line
# whose JSON breaks inside or right before a token hash must not have any
# part of the hash quoted back: prime-publish's "near '...'" snippet prints
# the 12 bytes at the error, which are the hash's. DESIGN.md 3.8: secrets
# never reach an error message. Needs no servers (--dry-run).
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
hash=5ec7e7d0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c
base=$("$PRIME_CODEC" example auth.session_started 1)
line=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d["session_token_hash"]=sys.argv[2]; print(json.dumps(d))' "$base" "$hash")
# 1: an invalid escape in the middle of the hash.
printf '%s\n' "${line/$hash/${hash:0:40}\\q${hash:40}}" >"$tmp/escape.jsonl"
# 2: the line cut inside the hash (the string never closes).
printf '%s\n' "${line%%"$hash"*}${hash}" >"$tmp/cut.jsonl"
leaked_total=0
for f in escape cut; do
  "$PRIME_PUBLISH" --dry-run "$tmp/$f.jsonl" >/dev/null 2>"$tmp/$f.err"
  rc=$?
  [ "$rc" = 1 ] && ok "$f: refused (exit 1)" || bad "$f: exit $rc"
  leaked=$(python3 -c 'import sys; h,e=sys.argv[1],open(sys.argv[2]).read()
print(max([n for n in range(6,len(h)+1) for i in range(len(h)-n+1) if h[i:i+n] in e] or [0]))' "$hash" "$tmp/$f.err")
  leaked_total=$((leaked_total + leaked))
  [ "$leaked" = 0 ] && ok "$f: no 6 bytes of the hash on stderr" ||
    bad "$f: $leaked bytes of the hash on stderr: $(head -c 200 "$tmp/$f.err")"
done
# Figures: the two broken lines; secrets: the longest run of the hash's
# bytes quoted on stderr, in both.
attack_summary secret_near 2 - "$leaked_total"
finish
