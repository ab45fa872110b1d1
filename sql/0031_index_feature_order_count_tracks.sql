-- The library listing at library scale, continued (docs/benchmarks/scale.md, "Playlists and client routes at 1M").
--
-- `sort=bpm` / `sort=loudness` order by the feature, then the track id: the BPM and loudness indexes get the id
-- as a second column, so the first pages walk them (sidecar/storage/library.py) instead of sorting every present
-- track. They still serve the range filters, which is all the one-column indexes did.
DROP INDEX track_features_bpm_idx;
CREATE INDEX track_features_bpm_idx ON track_features (bpm, track_id);
DROP INDEX track_features_loudness_idx;
CREATE INDEX track_features_loudness_idx ON track_features (loudness_lufs, track_id);

-- The number of present tracks (not is_missing), the unfiltered listing's total, kept by statement-level triggers
-- as signed deltas (no shared counter row that concurrent syncs would queue on), as analysis_status_counts
-- (migration 0015). Readers sum the rows; sidecar.storage.library.fold_present_count folds them into one.
CREATE TABLE present_track_counts (row_count bigint NOT NULL);

CREATE FUNCTION present_track_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO present_track_counts (row_count)
    SELECT count(*) FROM inserted_rows WHERE NOT is_missing HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION present_track_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO present_track_counts (row_count)
    SELECT sum(delta)
    FROM (SELECT 1 AS delta FROM new_rows WHERE NOT is_missing
          UNION ALL SELECT -1 FROM old_rows WHERE NOT is_missing) AS changes
    HAVING sum(delta) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION present_track_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO present_track_counts (row_count)
    SELECT -count(*) FROM deleted_rows WHERE NOT is_missing HAVING count(*) > 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION present_track_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM present_track_counts;
    RETURN NULL;
END
$$;

CREATE TRIGGER present_track_count_insert AFTER INSERT ON tracks
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION present_track_count_inserted();
CREATE TRIGGER present_track_count_update AFTER UPDATE ON tracks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION present_track_count_updated();
CREATE TRIGGER present_track_count_delete AFTER DELETE ON tracks
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT EXECUTE FUNCTION present_track_count_deleted();
CREATE TRIGGER present_track_count_truncate AFTER TRUNCATE ON tracks
    FOR EACH STATEMENT EXECUTE FUNCTION present_track_count_truncated();

INSERT INTO present_track_counts (row_count) SELECT count(*) FROM tracks WHERE NOT is_missing;
