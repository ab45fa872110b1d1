"""The analysis worker: claims jobs from Redis, analyses tracks, stores results."""
