-- Derived stem files (never inside the music library): where they are, how big, when last used (for eviction).
CREATE TABLE stems (
    track_id bigint PRIMARY KEY REFERENCES tracks (id) ON DELETE CASCADE,
    is_separated boolean NOT NULL DEFAULT false,
    location text,
    size_bytes bigint CHECK (size_bytes >= 0),
    separated_at timestamptz,
    last_accessed_at timestamptz,
    CHECK (NOT is_separated OR location IS NOT NULL)
);

CREATE INDEX stems_last_accessed_idx ON stems (last_accessed_at) WHERE is_separated;
