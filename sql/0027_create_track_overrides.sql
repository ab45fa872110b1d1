-- BPM and key set by the user (`PATCH /api/tracks/{id}/overrides`, `sonantica override`): the analyzers' readings
-- are not always right (half or double tempo, a relative key), and users ask to correct them. track_features keeps
-- the values every query reads, so an override is written there; this table says which groups are the user's and
-- keeps the analyzer's own values of those groups (`analyzed`: column -> value, from track_features), so that a
-- later analysis does not overwrite the user's value and removing the override puts the analyzer's values back.
CREATE TABLE track_overrides (
    track_id bigint PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    bpm double precision CHECK (bpm > 0 AND bpm <= 1000),
    key text,
    analyzed jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz NOT NULL DEFAULT now(),
    CHECK (bpm IS NOT NULL OR key IS NOT NULL)
);
