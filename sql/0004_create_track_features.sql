-- The analysis values playlists filter on, in typed columns, with the analyzer version each group came from.
CREATE TABLE track_features (
    track_id bigint PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    bpm double precision CHECK (bpm > 0),
    bpm_confidence double precision CHECK (bpm_confidence BETWEEN 0 AND 1),
    tempo_version integer,
    key text,
    camelot text CHECK (camelot ~ '^(1[0-2]|[1-9])[AB]$'),
    key_confidence double precision CHECK (key_confidence BETWEEN 0 AND 1),
    key_version integer,
    loudness_lufs double precision,
    loudness_range_lu double precision,
    true_peak_dbtp double precision,
    sample_peak_dbfs double precision,
    replaygain_track_gain_db double precision,
    replaygain_track_peak double precision,
    loudness_version integer,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX track_features_bpm_idx ON track_features (bpm);
CREATE INDEX track_features_camelot_idx ON track_features (camelot);
