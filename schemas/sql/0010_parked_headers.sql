-- Parked events keep the Kafka headers they came with (issue 12 item 9): a
-- parked event dead-lettered after its wait carries them, as the original
-- record's dead letter would (a trace id, the producer's own headers).
-- Packed by prime_record_headers_pack() (prime/worker.h); NULL when none,
-- or parked before this column existed.
ALTER TABLE prime_pipeline.parked_events ADD COLUMN record_headers BYTEA;

-- A stream's parked events (topic and key, in source order): what a new
-- arrival of the stream waits behind, and how many it has parked (bounded
-- by --park-max-per-stream).
CREATE INDEX idx_parked_events_stream
  ON prime_pipeline.parked_events (group_id, source_topic, record_key, source_partition, source_offset);
