#!/usr/bin/env bash
# Red team, theme forged single-object messages on the wire: raw bytes
# published with kcat -P (no producer library to clean them up) onto
# prime.projects, read by a running prime-materializer. Each one must be
# dead-lettered with a reason (DESIGN.md 3.3, 3.6) and the good event after
# them applied: no crash, no silent loss. Then prime-dlq, on a terminal,
# must not print the raw control bytes a hostile header carried, nor a
# secret a dead letter holds.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_BROKERS=$PRIME_TEST_BROKERS PRIME_DB=$PRIME_TEST_DB
"$PRIME_MIGRATE" >/dev/null || exit 1
ua=aaaaaaaa-1111-4111-8111-111111111111 pa=aaaaaaaa-aaaa-4aaa-8aaa-aaaaaaaaaaaa
ev() { printf '{"type":"%s","event_id":"0000000e-0000-4000-8000-%012d","occurred_at":"2026-11-25T10:%02d:00Z","actor_user_id":"%s","owner_user_id":"%s","device_id":"dev-1",%s}\n' "$1" "$2" "$2" "$ua" "$ua" "$3"; }
ev user.registered 1 '"email":"a@example.com","username":"alice","display_name":"A","preferred_genres":[],"email_verified":false' >"$tmp/user.json"
ev project.created 2 "\"project_id\":\"$pa\",\"name\":\"P\",\"tags\":[\"x\",\"y\"],\"project_data\":{}" >"$tmp/good.json"
"$PRIME_CODEC" encode "$tmp/user.json" >"$tmp/user.bin" && "$PRIME_CODEC" encode "$tmp/good.json" >"$tmp/good.bin" || exit 1
# The forgeries, from the good message's bytes.
python3 - "$tmp" <<'PY'
import sys, subprocess, os
d = sys.argv[1]
m = open(f'{d}/good.bin', 'rb').read()
codec = os.environ['PRIME_CODEC']
fps = {l.split()[0]: bytes.fromhex(l.split()[2])[::-1] for l in subprocess.run([codec, 'list'], capture_output=True, text=True).stdout.splitlines() if l.strip()}
def zz(v):
    u = ((v << 1) ^ (v >> 63)) & (2**64 - 1); out = b''
    while True:
        b = u & 0x7f; u >>= 7
        if not u: return out + bytes([b])
        out += bytes([b | 0x80])
body = m[10:]
tags = body.index(b'\x04\x02x\x02y\x00')  # the tags array: block of 2, "x", "y", end
forged = {
  'magic-only': b'\xc3\x01',
  'unknown-fingerprint': b'\xc3\x01' + b'\x11' * 8 + body,
  'other-type-fingerprint': b'\xc3\x01' + fps['user.deleted'] + body,
  'truncated': m[:len(m) // 2],
  'trailing-byte': m + b'\x00',
  'huge-string-length': m[:10] + zz(2**62) + m[11:],
  'negative-string-length': m[:10] + zz(-5) + m[11:],
  'negative-block-lying-size': m[:10] + body[:tags] + zz(-2) + zz(1000) + b'\x02x\x02y\x00' + body[tags + 6:],
  'negative-block-min': m[:10] + body[:tags] + b'\xff' * 9 + b'\x01' + body[tags + 6:],
  'block-count-huge': m[:10] + body[:tags] + zz(2**40) + b'\x02x\x02y\x00' + body[tags + 6:],
  'varint-11-bytes': m[:10] + b'\xff' * 11 + m[11:],
  'garbage': bytes(range(256)) * 4,
}
for name, data in forged.items():
    open(f'{d}/forged-{name}.bin', 'wb').write(data)
PY
nforged=$(ls "$tmp"/forged-*.bin | wc -l)
# A secret in a dead letter: a password change with one byte too many.
hash='$argon2id$v=19$m=65536,t=3,p=4$c2FsdC0SECRET$d96028e16e03cad9adb54f3bad63bd3a'
ev auth.password_changed 3 "\"credential_id\":\"$pa\",\"password_hash\":\"$hash\",\"salt\":null" >"$tmp/pw.json"
"$PRIME_CODEC" encode "$tmp/pw.json" >"$tmp/pw.bin" || exit 1
printf '\0' >>"$tmp/pw.bin"
esc=$'\e]0;pwned\a\e[2J\e[31m'
kcat -b "$PRIME_BROKERS" -P -t prime.users -k "$ua" "$tmp/user.bin" || exit 1
for f in "$tmp"/forged-*.bin; do
  kcat -b "$PRIME_BROKERS" -P -t prime.projects -k "$ua" -H "x-evil=$esc" -H "trace=$esc$(basename "$f")" "$f" || exit 1
done
kcat -b "$PRIME_BROKERS" -P -t prime.projects -k "$ua" "$tmp/good.bin" || exit 1
kcat -b "$PRIME_BROKERS" -P -t prime.auth -k "$ua" "$tmp/pw.bin" || exit 1
nforged=$((nforged + 1))
published=$(( $(on_topic prime.users) + $(on_topic prime.projects) + $(on_topic prime.auth) ))
[ "$published" = $((nforged + 2)) ] && ok "$nforged forgeries and two good events on the topics" ||
  bad "$published records on the topics for $nforged forgeries and two good events"
"$PRIME_MATERIALIZER" --group forged --linger-ms 200 "${group_x[@]}" >"$tmp/mat.log" 2>&1 &
pid=$!
got=0
for _ in $(seq 300); do
  got=$(psql -qAtc "SELECT coalesce(sum(next_offset), 0) FROM prime_pipeline.consumer_offsets WHERE group_id = 'forged'")
  [ "$got" -ge "$published" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$pid" 2>/dev/null; then
  ok "the materializer is alive after $nforged forgeries"
  kill -TERM "$pid"; wait "$pid"; rc=$?
  [ "$rc" = 0 ] && ok "it stops cleanly" || bad "it exits $rc on TERM"
else
  wait "$pid"; bad "the materializer died (exit $?): $(tail -5 "$tmp/mat.log")"
fi
[ "$got" -ge "$published" ] && ok "all $published records taken in" || bad "the materializer took in $got of $published"
check "the good project after the forgeries is applied" "P|{x,y}" "SELECT name, tags FROM studio_projects WHERE id = '$pa'"
n=$(dead_letters | grep -c 'prime.error.message=')
[ "$n" = "$nforged" ] && ok "$nforged dead letters, each with a message" || bad "$n dead letters with a message for $nforged forgeries"
if kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%h\n' 2>/dev/null | grep -q 'prime.error.class=decode'; then
  ok "forgeries classed as decode errors"; else bad "no dead letter classed decode"; fi
# prime-dlq on a terminal: no raw ESC or BEL from a hostile header.
"$PRIME_DLQ" list >"$tmp/list.out" 2>&1; rc=$?
[ "$rc" = 0 ] && ok "prime-dlq list exits 0" || bad "prime-dlq list exits $rc: $(head -c 300 "$tmp/list.out")"
off=$(kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%p:%o\n' 2>/dev/null | head -1)
"$PRIME_DLQ" show "$off" >"$tmp/show.out" 2>&1; rc=$?
[ "$rc" = 0 ] && ok "prime-dlq show $off exits 0" || bad "prime-dlq show exits $rc: $(head -c 300 "$tmp/show.out")"
pw=$(kcat -b "$PRIME_BROKERS" -C -t prime.dlq -o beginning -e -q -f '%p:%o %h\n' 2>/dev/null | grep 'prime.source.topic=prime.auth' | cut -d' ' -f1)
"$PRIME_DLQ" show "$pw" >"$tmp/pw.out" 2>&1
grep -q 'auth.password_changed' "$tmp/pw.out" && ok "prime-dlq show $pw shows the password change" || bad "prime-dlq show $pw: $(head -c 300 "$tmp/pw.out")"
grep -q 'SECRET' "$tmp/pw.out" "$tmp/list.out" && bad "prime-dlq prints the password hash" || ok "prime-dlq withholds the password hash"
grep -q 'SECRET' "$tmp/mat.log" && bad "the materializer logs the password hash" || ok "the materializer's log holds no password hash"
for f in list show; do
  if LC_ALL=C grep -q $'[\x1b\x07]' "$tmp/$f.out"; then
    bad "prime-dlq $f prints raw ESC/BEL from a header: $(LC_ALL=C grep -a $'[\x1b\x07]' "$tmp/$f.out" | head -1 | od -c | head -2 | tr -s ' ')"
  else
    ok "prime-dlq $f prints no raw control bytes"
  fi
done
# Figures: the forgeries; lost: forgeries neither dead-lettered nor taken in,
# and the good event if not applied; secrets: the hash in the materializer's
# log, the dead letters' headers and prime-dlq's output.
dead_letters >"$tmp/dlq-headers"
attack_summary forged_avro "$nforged" \
  "$(( (nforged > n ? nforged - n : 0) + (published > got ? published - got : 0)
       + 1 - $(psql -qAtc "SELECT count(*) FROM studio_projects WHERE id = '$pa'") ))" \
  "$(count_in c2FsdC0SECRET "$tmp/mat.log" "$tmp/dlq-headers" "$tmp/list.out" "$tmp/show.out" "$tmp/pw.out")"
finish
