-- The tempo analyzer (version 2) reports the runner-up metrical level's tempo when its confidence is low, so
-- playlists can accept either reading of a track whose octave is ambiguous (NULL when the choice is clear).
ALTER TABLE track_features
    ADD COLUMN bpm_alternative double precision CHECK (bpm_alternative > 0);
