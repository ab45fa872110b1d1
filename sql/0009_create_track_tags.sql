-- Mood, genre, instrumentation and era tags with their probabilities (MusiCNN's 50 MSD tags), one row per tag.
-- `model` names the model that produced them and `version` the analyzer version (like track_features' *_version);
-- the tag's category (mood, genre, ...) is fixed by the sidecar's vocabulary, so it is not stored.
CREATE TABLE track_tags (
    track_id bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    tag text NOT NULL CHECK (tag = lower(tag)),
    probability real NOT NULL CHECK (probability BETWEEN 0 AND 1),
    model text NOT NULL,
    version integer NOT NULL CHECK (version >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, tag)
);

CREATE INDEX track_tags_tag_probability_idx ON track_tags (tag, probability);
CREATE INDEX track_tags_model_idx ON track_tags (model);
