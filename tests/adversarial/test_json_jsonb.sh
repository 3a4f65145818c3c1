#!/usr/bin/env bash
# Red team, theme JSON fidelity: a JSON field (project.created's
# project_data) is accepted by the codec exactly when PostgreSQL's jsonb
# accepts it, and what the codec keeps is, read back as jsonb, what jsonb
# makes of the client's text. Documents at the edges: numbers, nesting,
# duplicate members under different escapes, surrogates, control
# characters, a BOM, overlong UTF-8.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PGDATABASE=${PGDATABASE:-postgres}
line() { # PROJECT_DATA (raw text, spliced as written)
  printf '{"type":"project.created","event_id":"0000000e-0000-4000-8000-000000000001","occurred_at":"2026-11-25T10:00:00Z","actor_user_id":"aaaaaaaa-1111-4111-8111-111111111111","owner_user_id":"aaaaaaaa-1111-4111-8111-111111111111","device_id":null,"project_id":"aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa","name":"n","project_data":%s}' "$1"
}
deep() { printf '%*s' "$1" '' | tr ' ' '['; printf 1; printf '%*s' "$1" '' | tr ' ' ']'; }
docs=(
  '{"a":1,"\u0061":2}' '{"a":1,"a":2}' '{"a":{"b":1,"\u0062":2}}'
  '{"s":"\ud83c\udfb5"}' '{"s":"\ud800"}' '{"s":"\udc00"}' '{"s":"\ud800\u0041"}' '{"s":"\u0000"}'
  '{"n":1e131071}' '{"n":1e131072}' '{"n":-0}' '{"n":1E+2}' '{"n":0.000000000000000000000000001}'
  '{"n":123456789012345678901234567890}' '{"n":1e-16384}' '{"n":1e-16383}' '{"n":01}' '{"n":1.}' '{"n":-.5}'
  '{"n":NaN}' '{"n":Infinity}' '{"n":1e400}' '{"n":-1e-400}'
  "{\"d\":$(deep 500)}" "{\"d\":$(deep 6000)}"
  '{"c":"a	b"}' '{"c":"\t"}' $'{"c":"\x01"}' $'\xef\xbb\xbf{"b":1}' $'{"o":"\xc0\xaf"}' $'{"o":"\xed\xa0\x80"}'
  $'{"o":"\xf4\x90\x80\x80"}' '{"u":"\u00e9","\u00e9":1}' $'{"x":1}\x0b' ' {"x" : [ 1 , 2 ] } ' '{"x":[]}'
)
i=0 changed=0
for d in "${docs[@]}"; do
  i=$((i + 1))
  line "$d" >"$tmp/in.json"
  printf '%s' "$d" >"$tmp/doc"
  pg=$(psql -qAtX -c "SELECT \$rt\$$(cat "$tmp/doc")\$rt\$::jsonb::text" 2>"$tmp/pg.err")
  pg_ok=$?
  "$PRIME_CODEC" encode "$tmp/in.json" >"$tmp/msg" 2>"$tmp/codec.err"
  codec_ok=$?
  label="doc $i ($(head -c 60 "$tmp/doc" | tr -c '[:print:]' '?'))"
  if [ "$pg_ok" = 0 ] && [ "$codec_ok" = 0 ]; then
    # The decoded line read by jsonb itself, so that no third parser
    # (one that reads numbers as doubles) stands between the two.
    kept=$("$PRIME_CODEC" decode "$tmp/msg")
    back=$(psql -qAtX -c "SELECT (\$rt\$$kept\$rt\$::jsonb -> 'project_data')::text" 2>&1)
    if [ "$back" = "$pg" ]; then ok "$label: both accept, same jsonb"; else changed=$((changed + 1)); bad "$label: jsonb [$pg], codec kept [$back]"; fi
  elif [ "$pg_ok" != 0 ] && [ "$codec_ok" = 1 ]; then
    ok "$label: both refuse ($(head -c 80 "$tmp/codec.err"))"
  elif [ "$pg_ok" = 0 ] && [ "$codec_ok" = 1 ] && grep -qE "duplicate member|nested deeper than" "$tmp/codec.err"; then
    # Refused on purpose (docs/foundation.md): duplicate members (jsonb
    # would keep the last one silently) and nesting past cJSON's limit.
    ok "$label: refused by design, with its reason ($(head -c 80 "$tmp/codec.err"))"
  elif [ "$pg_ok" = 0 ]; then
    bad "$label: jsonb accepts it as [$(head -c 80 <<<"$pg")], the codec refuses (rc $codec_ok): $(head -c 200 "$tmp/codec.err")"
  else
    bad "$label: jsonb refuses it ($(head -c 100 "$tmp/pg.err")), the codec accepts it (rc $codec_ok)"
  fi
done
# Figures: the documents; lost: documents accepted and kept as other values.
attack_summary json_jsonb "${#docs[@]}" "$changed" -
finish
