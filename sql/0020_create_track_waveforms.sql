-- The waveform analyzer's overview of a track: the lowest and highest sample (full scale 1.0, over all channels)
-- of each successive bucket_s seconds, as two equally long arrays; `version` is the analyzer version.
CREATE TABLE track_waveforms (
    track_id bigint PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    bucket_s double precision NOT NULL CHECK (bucket_s > 0),
    minimum real[] NOT NULL,
    maximum real[] NOT NULL CHECK (cardinality(maximum) = cardinality(minimum)),
    version integer NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
