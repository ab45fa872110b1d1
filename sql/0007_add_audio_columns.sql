-- What the decoder read from the file, stored with the results: codec, sample rate, channels (the decoder's
-- duration replaces the host's in tracks.duration_s when it knows one).
ALTER TABLE tracks
    ADD COLUMN codec text,
    ADD COLUMN sample_rate_hz integer CHECK (sample_rate_hz > 0),
    ADD COLUMN channels integer CHECK (channels > 0);
