"""``GET /api/tracks/{id}/audio`` and ``/waveform`` against real PostgreSQL and Redis: the original from the
library mount with HTTP Range, only for tracks the sidecar knows, never a file outside the mount (the stems file
route shares the code); the stored waveform, revalidated by its ETag."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.waveform import WaveformAnalyzer
from sidecar.api.app import create_app
from sidecar.demo.encode import write_audio
from sidecar.domain import WaveformResult
from sidecar.services.runtime import Runtime
from sidecar.settings import get_settings
from sidecar.storage import analyses, status, tracks
from sidecar.storage.db import transaction

TOKEN = "audio-token-" + "z" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    library: Path


@pytest.fixture
async def api(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> AsyncIterator[Api]:
    library = tmp_path / "library"
    library.mkdir()
    monkeypatch.setenv("SONANTICA_API__TOKEN", TOKEN)
    monkeypatch.setenv("SONANTICA_LIBRARY_DIR", str(library))
    get_settings.cache_clear()
    app = create_app(get_settings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(client, app.state.runtime, library)


async def _host_track(runtime: Runtime, name: str, path: Path | None) -> int:
    async with transaction(runtime.pool) as conn:
        saved = await tracks.upsert_track(
            conn,
            tracks.TrackUpsert(
                host="navidrome", host_track_id=name, title=name, path=None if path is None else str(path)
            ),
        )
    return saved.track_id


def _flac(path: Path) -> Path:
    t = np.arange(44100) / 44100
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    written = write_audio(np.stack([tone, tone], axis=1), 44100, path)
    os.chmod(written, 0o444)
    return written


async def test_the_original_is_served_whole_and_in_ranges(api: Api) -> None:
    (api.library / "a").mkdir()
    original = _flac(api.library / "a" / "song.flac")
    content = original.read_bytes()
    track_id = await _host_track(api.runtime, "song", original)
    whole = await api.client.get(f"/api/tracks/{track_id}/audio", headers=AUTH)
    assert whole.status_code == 200
    assert whole.content == content
    assert whole.headers["content-type"] == "audio/flac"
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-disposition"].startswith("inline")
    part = await api.client.get(f"/api/tracks/{track_id}/audio", headers=AUTH | {"Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.content == content[100:1100]
    assert part.headers["content-range"] == f"bytes 100-1099/{len(content)}"
    assert part.headers["content-type"] == "audio/flac"
    tail = await api.client.get(f"/api/tracks/{track_id}/audio", headers=AUTH | {"Range": "bytes=-10"})
    assert tail.status_code == 206
    assert tail.content == content[-10:]
    beyond = await api.client.get(
        f"/api/tracks/{track_id}/audio", headers=AUTH | {"Range": f"bytes={len(content) + 5}-"}
    )
    assert beyond.status_code == 416
    assert original.read_bytes() == content  # read-only and untouched


async def test_audio_needs_the_token(api: Api) -> None:
    original = _flac(api.library / "song.flac")
    track_id = await _host_track(api.runtime, "song", original)
    answer = await api.client.get(f"/api/tracks/{track_id}/audio")
    assert answer.status_code == 401


async def test_unknown_tracks_and_tracks_without_a_file_are_404(api: Api) -> None:
    assert (await api.client.get("/api/tracks/999999/audio", headers=AUTH)).status_code == 404
    unmapped = await _host_track(api.runtime, "unmapped", None)
    answer = await api.client.get(f"/api/tracks/{unmapped}/audio", headers=AUTH)
    assert answer.status_code == 404
    assert "no readable file" in answer.json()["detail"]
    gone = await _host_track(api.runtime, "gone", api.library / "gone.flac")
    answer = await api.client.get(f"/api/tracks/{gone}/audio", headers=AUTH)
    assert answer.status_code == 404
    assert "gone" in answer.json()["detail"]
    assert (await api.client.get("/api/tracks/0/audio", headers=AUTH)).status_code == 422


async def test_files_outside_the_mount_and_special_files_are_refused(api: Api, tmp_path: Path) -> None:
    secret = tmp_path / "outside" / "secret.flac"
    secret.parent.mkdir()
    secret.write_bytes(b"not for the browser")
    direct = await _host_track(api.runtime, "direct", secret)
    answer = await api.client.get(f"/api/tracks/{direct}/audio", headers=AUTH)
    assert answer.status_code == 403
    assert "outside the library" in answer.json()["detail"]
    link = api.library / "link.flac"
    link.symlink_to(secret)
    linked = await _host_track(api.runtime, "linked", link)
    answer = await api.client.get(f"/api/tracks/{linked}/audio", headers=AUTH)
    assert answer.status_code == 403
    assert b"not for the browser" not in answer.content
    folder = await _host_track(api.runtime, "folder", api.library)
    answer = await api.client.get(f"/api/tracks/{folder}/audio", headers=AUTH)
    assert answer.status_code == 403
    assert "not a regular file" in answer.json()["detail"]


async def test_the_waveform_is_stored_served_and_revalidated(api: Api) -> None:
    track_id = await _host_track(api.runtime, "wave", _flac(api.library / "wave.flac"))
    assert (await api.client.get("/api/tracks/999999/waveform", headers=AUTH)).status_code == 404
    missing = await api.client.get(f"/api/tracks/{track_id}/waveform", headers=AUTH)
    assert missing.status_code == 404
    assert "no waveform yet" in missing.json()["detail"]
    analysis = analyze_file(api.library / "wave.flac", [WaveformAnalyzer()])
    async with transaction(api.runtime.pool) as conn:
        await status.ensure_status(conn, {"waveform": WaveformAnalyzer.version}, track_ids=[track_id])
        await analyses.store_results(
            conn, track_id, results=analysis.results, versions={"waveform": WaveformAnalyzer.version}
        )
    answer = await api.client.get(f"/api/tracks/{track_id}/waveform", headers=AUTH)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["version"], body["points"], body["bucket_s"]) == (1, 100, pytest.approx(0.01))
    assert max(body["maximum"]) == pytest.approx(0.1, abs=1e-3)  # the 0.1 tone of _flac
    assert min(body["minimum"]) == pytest.approx(-0.1, abs=1e-3)
    assert answer.headers["cache-control"] == "private, no-cache"
    again = await api.client.get(
        f"/api/tracks/{track_id}/waveform", headers=AUTH | {"If-None-Match": answer.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.content == b""
    assert (await api.client.get(f"/api/tracks/{track_id}/waveform")).status_code == 401
    async with transaction(api.runtime.pool) as conn:
        old = WaveformResult(bucket_s=1.0, minimum=np.zeros(1, np.float32), maximum=np.zeros(1, np.float32))
        await analyses.store_results(conn, track_id, results={"waveform": old}, versions={"waveform": 0})
    assert (await api.client.get(f"/api/tracks/{track_id}/waveform", headers=AUTH)).json()["points"] == 100


async def test_a_failed_waveform_says_so_instead_of_soon(api: Api) -> None:
    track_id = await _host_track(api.runtime, "broken", _flac(api.library / "broken.flac"))
    async with transaction(api.runtime.pool) as conn:
        await status.ensure_status(conn, {"waveform": WaveformAnalyzer.version}, track_ids=[track_id])
        await status.mark_failed(conn, track_id, {"waveform": "not a decodable audio file: /music/broken.flac"})
    answer = await api.client.get(f"/api/tracks/{track_id}/waveform", headers=AUTH)
    assert answer.status_code == 404
    assert answer.json()["detail"] == f"track {track_id} has no waveform: its analysis failed (`sonantica failed`)"
