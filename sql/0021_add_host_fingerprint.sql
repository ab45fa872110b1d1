-- A 64-bit hash of what the host last reported about a track (id, title, tags, duration, path, size, created, the
-- mapped file), written with the row by a sync that found the file readable on the mount. A later sync that gets
-- the same facts skips the mount stat and the row comparison for that track. NULL: unknown (a new row, a missing
-- track, a file that was not readable, another writer, or a row stored before this migration): the next sync
-- checks the track in full.
ALTER TABLE tracks ADD COLUMN host_fingerprint bigint;

-- When a complete deep sync (every listed file stat-ed, fingerprints ignored) last ended, per host.
CREATE TABLE host_sync_state (
    host text PRIMARY KEY,
    deep_synced_at timestamptz NOT NULL
);
