-- The event_id of every event a consumer group has taken in (applied,
-- refused, or parked), written in the batch's own transaction. Offsets
-- already make a redelivered Kafka record apply once; this makes an event
-- that was *published* twice (a client retrying after a timeout, with the
-- same event_id) apply once too: the second copy is skipped and logged.
-- About 60 bytes an event, kept for good: a replay must skip exactly what
-- the first run skipped, so nothing is pruned behind its back.
CREATE TABLE prime_pipeline.applied_events (
  group_id TEXT NOT NULL,
  event_id UUID NOT NULL,
  -- event_id first: time-ordered ids (the producer's UUIDv7) then append
  -- at the index's right edge instead of splitting pages all over it.
  PRIMARY KEY (event_id, group_id)
);
