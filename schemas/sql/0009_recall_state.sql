-- What prime-recall has learned of each Mixx Recall item: its decayed
-- evidence, counts of the settings used, sums for running means, the pin a
-- recall.set made (docs/recall.md). The seed columns (data, confidence,
-- usage_count, last_used_at) are what readers use; this is the exact state
-- they are computed from, so that any batching of the same events gives the
-- same numbers. prime-recall is the only writer. A row written before has
-- no state: it starts from its usage_count, with no evidence. Added only:
-- no seed column changes.
ALTER TABLE public.mixx_recall ADD COLUMN recall_state JSONB;
