-- Analysis requests the analyzer has answered (with audio.analyzed or
-- audio.analysis_failed), written in the batch's transaction with its
-- offsets: a request is analysed once, even when it is delivered again
-- (another worker's batch after a crash, or the same upload published
-- twice). The answer's event id is derived from the request's, so an
-- answer sent twice before a crash collapses downstream.
CREATE TABLE prime_pipeline.analysis_requests (
  group_id TEXT NOT NULL,
  request_event_id UUID NOT NULL,
  file_id UUID NOT NULL,
  outcome TEXT NOT NULL,
  PRIMARY KEY (request_event_id, group_id)
);
