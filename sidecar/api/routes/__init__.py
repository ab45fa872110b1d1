"""Every router of the API."""

from __future__ import annotations

from fastapi import APIRouter

from sidecar.api.routes import audio, events, health, hooks, playlists, session, status, stems, tags, tracks

api_router = APIRouter()
for module in (health, session, tracks, playlists, tags, events, status, hooks, stems, audio):
    api_router.include_router(module.router)

__all__ = ["api_router"]
