-- What prime-recall knows of a user's projects, presets and files, learned
-- from the user's own events in their stream's order (docs/recall.md,
-- "Context"): a project's musical settings, a preset's plugin and
-- parameters, whether a file is its project's mix. A save, a preset's use
-- or an analysis then gets the context it had when it happened, live and
-- in a replay alike, instead of the materializer's row as it is when
-- prime-recall gets to it. prime-recall is its only writer. No foreign key
-- to prime_users: a user's events may come before the materializer has
-- written the user; user.deleted deletes the user's rows.
CREATE TABLE prime_pipeline.recall_context (
  user_id UUID NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('project', 'preset', 'file')),
  ref_id UUID NOT NULL,
  facts JSONB NOT NULL,
  PRIMARY KEY (user_id, kind, ref_id)
);
-- Another user's shared preset is found by its id alone.
CREATE INDEX recall_context_ref ON prime_pipeline.recall_context (kind, ref_id);
