-- Strict Sonic Match filters at library scale (issue 16, docs/benchmarks/scale.md "Strict filters with per-key
-- indexes"): each track's Camelot key on its embedding rows, so a model can have one partial HNSW index per key
-- (24, `WHERE model = ... AND camelot = ...`) and a Camelot-compatible query searches only the compatible keys'
-- small graphs (sidecar.storage.vectors). `embedding_models.key_indexed` says whether a model has them; only the
-- rows of such models carry the key (NULL for the others), so that keeping it costs nothing for a model without
-- them. The triggers keep `embeddings.camelot` equal to `track_features.camelot` for key-indexed models.
ALTER TABLE embedding_models ADD COLUMN key_indexed boolean NOT NULL DEFAULT false;
ALTER TABLE embeddings ADD COLUMN camelot text;

CREATE FUNCTION embeddings_take_camelot() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM embedding_models m WHERE m.model = NEW.model AND m.key_indexed) THEN
        NEW.camelot := (SELECT f.camelot FROM track_features f WHERE f.track_id = NEW.track_id);
    ELSE
        NEW.camelot := NULL;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER embeddings_take_camelot BEFORE INSERT ON embeddings
    FOR EACH ROW EXECUTE FUNCTION embeddings_take_camelot();

CREATE FUNCTION track_features_give_camelot() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        UPDATE embeddings e SET camelot = NULL WHERE e.track_id = OLD.track_id AND e.camelot IS NOT NULL;
        RETURN OLD;
    END IF;
    UPDATE embeddings e SET camelot = NEW.camelot
    FROM embedding_models m
    WHERE e.track_id = NEW.track_id AND m.model = e.model AND m.key_indexed
      AND e.camelot IS DISTINCT FROM NEW.camelot;
    RETURN NEW;
END
$$;

CREATE TRIGGER track_features_give_camelot AFTER INSERT OR DELETE ON track_features
    FOR EACH ROW EXECUTE FUNCTION track_features_give_camelot();
CREATE TRIGGER track_features_change_camelot AFTER UPDATE OF camelot ON track_features
    FOR EACH ROW WHEN (OLD.camelot IS DISTINCT FROM NEW.camelot) EXECUTE FUNCTION track_features_give_camelot();
