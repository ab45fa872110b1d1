-- The source of truth for work: one row per (track, analyzer). `version` is the analyzer version the row is
-- about: the one requested while pending/queued/running/failed, the one that produced the results when done.
CREATE TABLE analysis_status (
    track_id bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    analyzer text NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'queued', 'running', 'done', 'failed')),
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, analyzer)
);

CREATE INDEX analysis_status_open_idx ON analysis_status (track_id) WHERE state <> 'done';
CREATE INDEX analysis_status_analyzer_state_idx ON analysis_status (analyzer, state);
