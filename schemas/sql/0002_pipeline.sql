-- The pipeline's own tables, kept in their own schema so that the ten seed
-- tables in "public" stay exactly as the architecture document has them.
-- (prime_pipeline.schema_migrations is created by prime-migrate itself.)
CREATE SCHEMA IF NOT EXISTS prime_pipeline;

-- Where each consumer group stands in each partition. Workers write it in
-- the same transaction as the rows the consumed events produced, and seek
-- to it on partition assignment: that is what makes a crash lose nothing
-- and apply nothing twice.
CREATE TABLE prime_pipeline.consumer_offsets (
  group_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  kafka_partition INTEGER NOT NULL CHECK (kafka_partition >= 0),
  next_offset BIGINT NOT NULL CHECK (next_offset >= 0),
  PRIMARY KEY (group_id, topic, kafka_partition)
);

-- Every change the pipeline applied or refused, as carried by prime.audit.
-- Append-only: the trigger below refuses UPDATE, DELETE and TRUNCATE, and
-- record_hash chains each record to the previous one of its partition so
-- that a row altered behind the trigger's back is detected.
CREATE TABLE prime_pipeline.audit_log (
  audit_id UUID PRIMARY KEY,
  entity_type TEXT NOT NULL,
  entity_id TEXT NOT NULL,
  operation TEXT NOT NULL
    CHECK (operation IN ('insert', 'update', 'delete', 'rejected', 'dead_lettered')),
  actor_user_id UUID,
  device_id TEXT,
  occurred_at TIMESTAMPTZ NOT NULL,
  changed_columns TEXT[] NOT NULL DEFAULT '{}',
  source_topic TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset BIGINT NOT NULL,
  row_hash TEXT,
  detail TEXT,
  audit_partition INTEGER NOT NULL,
  audit_offset BIGINT NOT NULL,
  prev_hash TEXT,
  record_hash TEXT NOT NULL,
  UNIQUE (audit_partition, audit_offset)
);

CREATE INDEX idx_audit_log_entity ON prime_pipeline.audit_log (entity_type, entity_id, occurred_at);
CREATE INDEX idx_audit_log_actor ON prime_pipeline.audit_log (actor_user_id, occurred_at);

CREATE FUNCTION prime_pipeline.audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE ON prime_pipeline.audit_log
  FOR EACH ROW EXECUTE FUNCTION prime_pipeline.audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate
  BEFORE TRUNCATE ON prime_pipeline.audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION prime_pipeline.audit_log_append_only();
