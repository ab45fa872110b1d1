-- One row per track as a host knows it: (host, host_track_id) is the identity; path/size/mtime detect a changed
-- file. norm_artist / norm_title are the duplicate-version keys used by similar-tracks queries.

CREATE FUNCTION normalize_for_dedup(value text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE STRICT
AS $$
    SELECT btrim(regexp_replace(
        regexp_replace(
            regexp_replace(
                regexp_replace(lower(value), '\s*[\(\[][^\)\]]*[\)\]]', ' ', 'g'),
                '\s+-\s+[^-]*\m(remaster|remastered|live|edit|version|mono|stereo|mix|remix|demo|acoustic)\M.*$', ' '),
            '\s+(feat\.?|ft\.?|featuring)\s.*$', ' '),
        '[^[:alnum:]]+', ' ', 'g'))
$$;

COMMENT ON FUNCTION normalize_for_dedup(text) IS
    'Lower-case, without bracketed parts, " - Remastered"-style suffixes, "feat." credits and punctuation.';

CREATE TABLE tracks (
    id bigserial PRIMARY KEY,
    host text NOT NULL,
    host_track_id text NOT NULL,
    path text,
    host_path text,
    size_bytes bigint CHECK (size_bytes >= 0),
    mtime_ns bigint,
    title text NOT NULL DEFAULT '',
    artist text,
    album text,
    album_artist text,
    genres text[] NOT NULL DEFAULT '{}',
    duration_s double precision CHECK (duration_s >= 0),
    library text,
    is_missing boolean NOT NULL DEFAULT false,
    norm_artist text GENERATED ALWAYS AS (coalesce(normalize_for_dedup(coalesce(album_artist, artist)), '')) STORED,
    norm_title text GENERATED ALWAYS AS (coalesce(normalize_for_dedup(title), '')) STORED,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tracks_host_track_key UNIQUE (host, host_track_id)
);

CREATE INDEX tracks_path_idx ON tracks (path);
CREATE INDEX tracks_dedup_idx ON tracks (norm_artist, norm_title);
