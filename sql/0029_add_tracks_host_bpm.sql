-- The BPM the host reports from the file's own tags (Navidrome's `bpm`; Jellyfin reports none), kept so the user
-- can see it beside the analyzer's reading and take it as an override with one click. NULL when the host reports
-- none (or 0). A sync stores it with the track's other facts.
ALTER TABLE tracks ADD COLUMN host_bpm double precision CHECK (host_bpm IS NULL OR host_bpm > 0);
