"""The Jellyfin webhook for a track the sidecar does not know yet (issue 12, item 15): the API fetches it from
Jellyfin (the fake server), stores it and queues it on-play, as the now-playing poll does; real PostgreSQL+Redis."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from adapters.jellyfin import JellyfinAdapter
from adapters.jellyfin.webhook import AUTH_HEADER
from sidecar.api.app import create_app
from sidecar.settings import get_settings
from tests.integration.test_api import _all_properties_body
from tests.integration.test_host_sync import (  # noqa: F401  (fixtures)
    _tracks,
    adapter,
    fake,
    library_dir,
    runtime_env,
    seeded,
)

SECRET = "hook-secret"


async def test_webhook_fetches_an_unknown_track_from_jellyfin_and_queues_it_on_play(
    monkeypatch: pytest.MonkeyPatch,
    runtime_env: dict[str, str],  # noqa: F811
    adapter: JellyfinAdapter,  # noqa: F811
    seeded: dict[str, str],  # noqa: F811
    library_dir: Path,  # noqa: F811
    database_url: str,
) -> None:
    monkeypatch.setenv("SONANTICA_JELLYFIN__WEBHOOK_SECRET", SECRET)
    get_settings.cache_clear()
    app = create_app(get_settings(), host_adapter=adapter)
    headers = {AUTH_HEADER: SECRET}
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as client,
    ):
        runtime = app.state.runtime
        assert seeded["t1"] not in _tracks(database_url)  # never synced
        played = await client.post("/hooks/jellyfin", content=_all_properties_body(seeded["t1"]), headers=headers)
        assert played.status_code == 202, played.text
        assert played.json()["state"] == "queued"
        assert played.json()["status_url"] == f"/api/tracks/jellyfin/{seeded['t1']}/analysis"
        assert _tracks(database_url)[seeded["t1"]][0] == str(library_dir / "Artist" / "01.flac")
        assert (await runtime.queue.depths())["on_play"] == 1

        unreadable = await client.post("/hooks/jellyfin", content=_all_properties_body(seeded["evil"]), headers=headers)
        assert (unreadable.status_code, unreadable.json()["state"]) == (202, "ignored")
        assert "not readable" in unreadable.json()["detail"]

        unknown_id = uuid.UUID(int=99).hex
        unknown = await client.post("/hooks/jellyfin", content=_all_properties_body(unknown_id), headers=headers)
        assert (unknown.status_code, unknown.json()["state"]) == (202, "ignored")
        assert "does not know" in unknown.json()["detail"]
        assert (await runtime.queue.depths())["on_play"] == 1
