-- Why the tempo or key analyzer found no value, so the user can tell a track without a beat from one too short to
-- measure, and decide whether to set the value by hand (`PATCH /api/tracks/{id}/overrides`). Written with the
-- group's other columns by an analysis (NULL when the value was found) and set to NULL by an override, whose
-- `analyzed` values keep the analyzer's reason. NULL for rows analysed before this migration: `sonantica reanalyze
-- --analyzer tempo` (or `key`) fills it in.
ALTER TABLE track_features
    ADD COLUMN bpm_missing_reason text
        CHECK (bpm_missing_reason IN ('too_short', 'no_onsets', 'no_periodicity')),
    ADD COLUMN key_missing_reason text
        CHECK (key_missing_reason IN ('few_tonal_frames', 'weak_tonality')),
    ADD CHECK (bpm IS NULL OR bpm_missing_reason IS NULL),
    ADD CHECK (key IS NULL OR key_missing_reason IS NULL);
