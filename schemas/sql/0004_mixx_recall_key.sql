-- Mixx Recall rows are keyed by what the preference is about: owner,
-- category and recall_key (for example a plugin name). The row id is
-- UUIDv5 of that natural key (docs/materializer.md); the column and unique
-- index make the key visible and enforced. Added only: no seed column
-- changes.
ALTER TABLE public.mixx_recall ADD COLUMN recall_key TEXT;
CREATE UNIQUE INDEX idx_mixx_recall_natural_key ON public.mixx_recall (user_id, category, recall_key);
