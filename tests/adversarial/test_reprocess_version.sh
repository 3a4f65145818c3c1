#!/usr/bin/env bash
# Red team, theme operator tools (failed on main at 85ca8cd).
# prime-reprocess --older-than-version takes any non-empty text. A tired
# operator's "v1.1.0" compares byte-wise below every real version ('1' <
# 'v'), so every file analysed by 1.1.0 counts as older and is analysed
# again. DESIGN.md 3.5: bad input to a CLI gets a message naming the field
# and a non-zero exit; here it should be a usage error (exit 2) before
# anything is read. No servers: PostgreSQL is pointed nowhere, so a value
# that gets past the options fails to connect (exit 1) instead.
set -uo pipefail
. "$(dirname "$0")/../support/testlib.sh"
export PGHOST=/nonexistent PGPORT=1
for v in v1.1.0 banana 1.1.x "1.1.0 " -1 1..0; do
  "$PRIME_REPROCESS" --older-than-version "$v" --dry-run >/dev/null 2>err </dev/null
  rc=$?
  [ "$rc" = 2 ] && grep -q -- '--older-than-version' err && ok "'$v': usage error naming the option" ||
    bad "'$v': exit $rc, expected 2: $(head -1 err)"
done
"$PRIME_REPROCESS" --older-than-version 1.1.0 --dry-run >/dev/null 2>err </dev/null
[ $? = 1 ] && grep -q 'PostgreSQL' err && ok "1.1.0 is taken (and the connection fails)" || bad "1.1.0: $(head -1 err)"
rm -f err
attack_summary reprocess_version 6 - -
finish
