-- Stems on demand (issue 14): the request's state, what made the files and what they weigh, next to the
-- bookkeeping of 0006. 'ready' is exactly is_separated; 'queued'/'running' mark a separation asked for once, so a
-- second request (or a second user) does not queue another.
ALTER TABLE stems
    ADD COLUMN state text NOT NULL DEFAULT 'none'
        CHECK (state IN ('none', 'queued', 'running', 'ready', 'failed')),
    ADD COLUMN purpose text CHECK (purpose IN ('studio', 'karaoke')),
    ADD COLUMN model text,
    ADD COLUMN model_version text,
    ADD COLUMN format text CHECK (format IN ('flac', 'opus')),
    ADD COLUMN files jsonb,
    ADD COLUMN attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN last_error text,
    ADD COLUMN requested_at timestamptz;

UPDATE stems SET state = 'ready' WHERE is_separated;

ALTER TABLE stems ADD CONSTRAINT stems_ready_is_separated CHECK ((state = 'ready') = is_separated);

CREATE INDEX stems_state_idx ON stems (state) WHERE state IN ('queued', 'running');
