-- The tempo analyzer's beat grid: the time of its first beat (beats at beat_offset_s + k * 60 / bpm), written with
-- the tempo group so the web client's Studio pulses on the beat (NULL until the track's tempo is analysed again).
ALTER TABLE track_features
    ADD COLUMN beat_offset_s double precision CHECK (beat_offset_s >= 0);
