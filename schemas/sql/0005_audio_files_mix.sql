-- Which upload is its project's mix: the analysis of that file sets
-- studio_projects.current_lufs and dynamic_range (docs/materializer.md).
-- The upload event says so (audio.file_uploaded.is_mix); the analysis
-- arrives later, from another topic, and needs to know. Added only: no
-- seed column changes.
ALTER TABLE public.audio_files ADD COLUMN is_mix BOOLEAN NOT NULL DEFAULT false;
