#!/usr/bin/env bash
# prime-verify on two databases of one ephemeral PostgreSQL: equal copies,
# a changed value (named by column, a secret never printed), a row on one
# side only, a column dropped, a table dropped, rows in another order, and
# clear errors with exit status 2.
set -uo pipefail
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
. "$(dirname "$0")/../support/testlib.sh"
export PRIME_DB=$PRIME_TEST_DB
A="$PRIME_TEST_DB dbname=verify_a" B="$PRIME_TEST_DB dbname=verify_b"
psql -qc 'CREATE DATABASE verify_a' -c 'CREATE DATABASE verify_b' || exit 1
"$PRIME_MIGRATE" --db "$A" >/dev/null && "$PRIME_MIGRATE" --db "$B" >/dev/null || exit 1

canary_a='$argon2id$v=19$canary-of-A' canary_b='$argon2id$v=19$canary-of-B'
fill() { # CONNINFO PASSWORD-HASH [ORDER]: the same rows, inserted in the given order
  local order=${3:-ASC}
  psql -d "$1" -qv ON_ERROR_STOP=1 <<SQL
INSERT INTO prime_users (id, email, username, display_name, created_at, updated_at)
  SELECT ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, 'u' || g || '@example.com', 'user' || g,
         'User ' || g, '2026-11-25 10:00:00+00', '2026-11-25 10:00:00+00'
  FROM generate_series(1, 50) g ORDER BY g $order;
INSERT INTO auth_credentials (id, user_id, credential_type, email, password_hash, created_at, updated_at)
  VALUES ('10000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000001', 'email_password',
          'u1@example.com', '$2', '2026-11-25 10:00:00+00', '2026-11-25 10:00:00+00');
SQL
}
fill "$A" "$canary_a" || exit 1
fill "$B" "$canary_a" DESC || exit 1

verify() { "$PRIME_VERIFY" "$@" >"$tmp/out" 2>"$tmp/err"; echo $?; }
expect() { # NAME STATUS ARGS...
  local name=$1 want=$2 got
  shift 2
  got=$(verify "$@")
  if [ "$got" = "$want" ]; then ok "$name (exit $got)"; else bad "$name: exit $got, expected $want: $(cat "$tmp/out" "$tmp/err")"; fi
}
has() { # NAME PATTERN: the last output holds PATTERN
  if grep -qF -- "$2" "$tmp/out"; then ok "$1"; else bad "$1: no [$2] in: $(cat "$tmp/out" "$tmp/err")"; fi
}
hasnt() { # NAME TEXT: neither output holds TEXT
  if grep -qF -- "$2" "$tmp/out" "$tmp/err"; then bad "$1: [$2] printed"; else ok "$1"; fi
}

expect "same rows inserted in another order are equal" 0 "$A" "$B"
has "every materialized table is compared" "studio_projects"
has "the audit log is compared" "prime_pipeline.audit_log"
has "the summary says equal" "prime-verify: "

# A secret that differs: found, and its values never printed.
psql -d "$B" -qc "UPDATE auth_credentials SET password_hash = '$canary_b'" || exit 1
expect "a differing password hash is a difference" 1 --diff "$A" "$B"
has "the secret column is named" "password_hash: A (secret, not shown), B (secret, not shown)"
hasnt "the secret of A is not printed" "$canary_a"
hasnt "the secret of B is not printed" "$canary_b"
psql -d "$B" -qc "UPDATE auth_credentials SET password_hash = '$canary_a'" || exit 1
expect "equal again once restored" 0 "$A" "$B"

# A changed value and a row on one side only, by primary key.
psql -d "$B" -qc "UPDATE prime_users SET username = 'renamed' WHERE email = 'u7@example.com'" \
  -c "DELETE FROM prime_users WHERE email = 'u9@example.com'" || exit 1
expect "a changed value and a missing row differ" 1 --diff "$A" "$B"
has "the changed column with both values" 'username: A "user7", B "renamed"'
has "the missing row by its key" "(00000000-0000-4000-8000-000000000009): only in A"
has "the table is marked" "DIFFERENT"
expect "without --diff only the summary" 1 "$A" "$B"
if grep -q "only in A" "$tmp/out"; then bad "rows listed without --diff"; else ok "rows listed only with --diff"; fi
expect "--table limits the comparison to equal tables" 0 --table studio_projects --table prime_pipeline.audit_log "$A" "$B"
expect "--diff=1 shows one row" 1 --diff=1 --table prime_users "$A" "$B"
if [ "$(grep -c 'prime_users (' "$tmp/out")" = 1 ]; then ok "--diff=1 stops after one row"; else bad "--diff=1: $(cat "$tmp/out")"; fi

# Schema drift: a column or a table on one side only.
psql -d "$B" -qc "ALTER TABLE plugin_presets DROP COLUMN description" -c "DROP TABLE collaboration_sessions" || exit 1
expect "a dropped column and a dropped table differ" 1 "$A" "$B"
has "the column is named" "column description only in A"
has "the table is named" "collaboration_sessions: table only in A"

# Clear errors, exit status 2.
expect "one database is a usage error" 2 "$A"
has_err() { if grep -qF -- "$2" "$tmp/err"; then ok "$1"; else bad "$1: no [$2] in: $(cat "$tmp/err")"; fi; }
has_err "the message says two are expected" "expected two databases"
expect "an unknown option" 2 --bogus "$A" "$B"
expect "a bad --diff" 2 --diff=0 "$A" "$B"
expect "an unknown table" 2 --table no_such_table "$A" "$B"
has_err "the unknown table is named" "--table no_such_table: no such table"
expect "an unreachable database" 2 "$A" "host=127.0.0.1 port=1 dbname=x connect_timeout=2"
has_err "the unreachable side is named" "database B: cannot connect"

# A read-only role is enough.
psql -qc "CREATE ROLE verify_reader LOGIN" -d verify_a -c "GRANT USAGE ON SCHEMA prime_pipeline TO verify_reader" \
  -c "GRANT SELECT ON ALL TABLES IN SCHEMA public, prime_pipeline TO verify_reader" \
  -c "GRANT EXECUTE ON FUNCTION prime_pipeline.row_hash(jsonb) TO verify_reader" >/dev/null || exit 1
expect "a read-only role compares a database with itself" 0 "$A user=verify_reader" "$A user=verify_reader"
finish
