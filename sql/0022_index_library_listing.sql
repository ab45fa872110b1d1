-- The web client's library listing at library scale (issue 16, docs/benchmarks/scale.md): its default order
-- (artist, album, title, id: sidecar/storage/library.py) read from an index instead of sorting every present
-- track for each page, and the loudness filter served by an index like BPM and key already are.
CREATE INDEX tracks_library_order_idx
    ON tracks (lower(coalesce(artist, '')), lower(coalesce(album, '')), lower(title), id)
    WHERE NOT is_missing;
CREATE INDEX track_features_loudness_idx ON track_features (loudness_lufs);
