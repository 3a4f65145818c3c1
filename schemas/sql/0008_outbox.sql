-- Derived events (audit records, snapshots) leave through an outbox: a
-- worker writes them here in the same transaction as the changes they
-- describe, and relays them to Kafka after the commit, deleting each row
-- once Kafka has confirmed it. A crash leaves them here (relayed again,
-- with the same event ids) or gone with the changes (never emitted): never
-- a change without its audit record, nor an audit record without its change.
-- docs/audit.md says why an outbox rather than Kafka transactions.
CREATE TABLE prime_pipeline.outbox (
  group_id TEXT NOT NULL,
  seq BIGSERIAL NOT NULL,
  topic TEXT NOT NULL,
  record_key BYTEA NOT NULL,
  record_value BYTEA NOT NULL,
  event_type TEXT NOT NULL,
  PRIMARY KEY (group_id, seq)
);

-- The hash of a row as an audit record carries it: SHA-256 of PostgreSQL's
-- jsonb text of the row (keys in jsonb's canonical order, values in their
-- column types' canonical output), without the columns that hold secrets
-- (token and password hashes), so that no audit record is a function of a
-- secret. The workers hash a row's state after each change with it, and
-- "prime-audit verify --rows" hashes the tables' rows with it.
CREATE FUNCTION prime_pipeline.row_hash(row_json JSONB) RETURNS TEXT
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT encode(sha256(convert_to((row_json - ARRAY[
    'password_hash', 'salt', 'verification_token', 'reset_token', 'oauth_data',
    'session_token', 'access_token_hash', 'refresh_token_hash'
  ])::text, 'UTF8')), 'hex')
$$;

-- The pipeline inserts into audit_log and never changes a row: the trigger
-- of migration 0002 refuses UPDATE, DELETE and TRUNCATE to every role, and
-- no role but the owner is granted anything beyond reading and appending.
REVOKE ALL ON prime_pipeline.audit_log FROM PUBLIC;
