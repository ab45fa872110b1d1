-- The library listing's title and album orders (sidecar/storage/library.py, `_KEYS`) read from an index, as the
-- artist order is (migration 0022): without them `sort=title` / `sort=album` sorted every present track for each
-- page (issue 16, docs/benchmarks/scale.md).
CREATE INDEX tracks_title_order_idx
    ON tracks (lower(title), lower(coalesce(artist, '')), id)
    WHERE NOT is_missing;
CREATE INDEX tracks_album_order_idx
    ON tracks (lower(coalesce(album, '')), lower(title), id)
    WHERE NOT is_missing;
