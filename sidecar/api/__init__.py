"""The Sonic Match HTTP API (FastAPI)."""
