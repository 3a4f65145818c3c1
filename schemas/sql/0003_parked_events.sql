-- Events whose parent row is not there yet (events are ordered per owner,
-- not across topics): kept, in the same transaction as the batch's rows,
-- until the parent is written, then applied in source order; dead-lettered
-- after a bounded wait. parked_at is wall-clock time and only bounds the
-- wait; it never reaches a seed table.
CREATE TABLE prime_pipeline.parked_events (
  group_id TEXT NOT NULL,
  source_topic TEXT NOT NULL,
  source_partition INTEGER NOT NULL,
  source_offset BIGINT NOT NULL,
  waiting_for TEXT NOT NULL,
  record_key BYTEA,
  record_value BYTEA NOT NULL,
  reason TEXT NOT NULL,
  parked_at TIMESTAMPTZ NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, source_topic, source_partition, source_offset)
);

CREATE INDEX idx_parked_events_waiting ON prime_pipeline.parked_events (group_id, waiting_for);
CREATE INDEX idx_parked_events_age ON prime_pipeline.parked_events (group_id, parked_at);
