-- What prime-recall has learned of each Mixx Recall item: its decayed
-- evidence, counts of the settings used, sums for running means, the pin a
-- recall.set made (docs/recall.md). mixx_recall's seed columns (data,
-- confidence, usage_count, last_used_at) are what readers use; this is the
-- exact state they are computed from, so that any batching of the same
-- events gives the same numbers. prime-recall is its only writer. A table
-- of its own, not a column: mixx_recall's row type stays the seed's (plus
-- recall_key), which the materializer's audit of cascaded deletes relies
-- on. Deleting the row (recall.forgotten, or its user) deletes its state.
CREATE TABLE prime_pipeline.recall_state (
  id UUID PRIMARY KEY REFERENCES public.mixx_recall (id) ON DELETE CASCADE,
  state JSONB NOT NULL
);
