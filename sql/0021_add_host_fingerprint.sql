-- A 64-bit hash of what the host last reported about a track (id, title, tags, duration, path, size, created, the
-- mapped file), written with the row by a sync that found the file readable on the mount. A later sync that gets
-- the same facts skips the mount stat and the row comparison for that track. NULL: unknown (a new row, a missing
-- track, a file that was not readable, another writer, or a row stored before this migration): the next sync
-- checks the track in full.
ALTER TABLE tracks ADD COLUMN host_fingerprint bigint;

-- Per host: when the last complete deep sync (every listed file stat-ed, fingerprints ignored) ended, and when the
-- last complete listing of any kind, and the last complete full listing, began (the scheduler's incremental syncs
-- ask the host for what changed since the former). NULL: never.
CREATE TABLE host_sync_state (
    host text PRIMARY KEY,
    deep_synced_at timestamptz,
    listed_at timestamptz,
    full_listed_at timestamptz
);
