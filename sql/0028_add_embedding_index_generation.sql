-- Index rebuilds beside the serving indexes (issue 16, docs/operations.md "the index upgrade"): a model's new HNSW
-- indexes are built with CREATE INDEX CONCURRENTLY under the names of the next generation while the old ones keep
-- answering, then embedding_models switches to them in one short transaction (sidecar.storage.vectors.build_index).
-- `index_generation` names the model's indexes (0: the names register_model and the migrations have always used;
-- n >= 1: `embeddings_hnsw_<digest>_<dim>_g<n>` and `..._g<n>_<camelot>`). `keeps_camelot` says that the
-- triggers of 0024 keep `embeddings.camelot` for the model's rows: set when a rebuild towards per-key indexes starts,
-- before `key_indexed` (which queries follow) is set at the switch.
ALTER TABLE embedding_models ADD COLUMN index_generation integer NOT NULL DEFAULT 0 CHECK (index_generation >= 0);
ALTER TABLE embedding_models ADD COLUMN keeps_camelot boolean NOT NULL DEFAULT false;
UPDATE embedding_models SET keeps_camelot = key_indexed;

CREATE OR REPLACE FUNCTION embeddings_take_camelot() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM embedding_models m WHERE m.model = NEW.model AND m.keeps_camelot) THEN
        NEW.camelot := (SELECT f.camelot FROM track_features f WHERE f.track_id = NEW.track_id);
    ELSE
        NEW.camelot := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE OR REPLACE FUNCTION track_features_give_camelot() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE embeddings e SET camelot = NULL WHERE e.track_id = OLD.track_id AND e.camelot IS NOT NULL;
        RETURN OLD;
    END IF;
    UPDATE embeddings e SET camelot = NEW.camelot
    FROM embedding_models m
    WHERE e.track_id = NEW.track_id AND m.model = e.model AND m.keeps_camelot
      AND e.camelot IS DISTINCT FROM NEW.camelot;
    RETURN NEW;
END
$$;
