-- Row counts of analysis_status per (analyzer, version, state), kept by statement-level triggers, so `sonantica
-- status` and /api/status read a handful of rows instead of scanning every status row (5 per track: millions at
-- library scale). The triggers only append signed deltas (no shared counter row that concurrent workers would
-- queue on); readers sum them, and sidecar.storage.status folds them back into one row per group.
CREATE TABLE analysis_status_counts (
    analyzer text NOT NULL,
    version integer NOT NULL,
    state text NOT NULL,
    row_count bigint NOT NULL
);

CREATE FUNCTION analysis_status_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analysis_status_counts (analyzer, version, state, row_count)
    SELECT analyzer, version, state, count(*) FROM inserted_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;

CREATE FUNCTION analysis_status_count_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analysis_status_counts (analyzer, version, state, row_count)
    SELECT analyzer, version, state, sum(delta)
    FROM (SELECT analyzer, version, state, 1 AS delta FROM new_rows
          UNION ALL SELECT analyzer, version, state, -1 FROM old_rows) AS changes
    GROUP BY 1, 2, 3
    HAVING sum(delta) <> 0;
    RETURN NULL;
END
$$;

CREATE FUNCTION analysis_status_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO analysis_status_counts (analyzer, version, state, row_count)
    SELECT analyzer, version, state, -count(*) FROM deleted_rows GROUP BY 1, 2, 3;
    RETURN NULL;
END
$$;

CREATE FUNCTION analysis_status_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM analysis_status_counts;
    RETURN NULL;
END
$$;

CREATE TRIGGER analysis_status_count_insert AFTER INSERT ON analysis_status
    REFERENCING NEW TABLE AS inserted_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_status_count_inserted();
CREATE TRIGGER analysis_status_count_update AFTER UPDATE ON analysis_status
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION analysis_status_count_updated();
CREATE TRIGGER analysis_status_count_delete AFTER DELETE ON analysis_status
    REFERENCING OLD TABLE AS deleted_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_status_count_deleted();
CREATE TRIGGER analysis_status_count_truncate AFTER TRUNCATE ON analysis_status
    FOR EACH STATEMENT EXECUTE FUNCTION analysis_status_count_truncated();

INSERT INTO analysis_status_counts (analyzer, version, state, row_count)
SELECT analyzer, version, state, count(*) FROM analysis_status GROUP BY 1, 2, 3;

-- Status counts leave out the rows of missing tracks and of tracks without a readable file; this index finds
-- those tracks without reading the others (few in a healthy library).
CREATE INDEX tracks_absent_idx ON tracks (id) WHERE is_missing OR path IS NULL;
