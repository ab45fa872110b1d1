"""Use cases that tie adapters, storage, the queue and analyzers together."""
