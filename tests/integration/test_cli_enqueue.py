"""``sonantica enqueue`` on real PostgreSQL + Redis as a user types it: a mistyped path is refused, not queued."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.demo.encode import write_audio
from sidecar.services.runtime import open_runtime
from sidecar.settings import get_settings
from sidecar.storage import tracks
from sidecar.storage.db import transaction


def _known_paths() -> set[str | None]:
    async def read() -> set[str | None]:
        async with open_runtime(get_settings()) as runtime, transaction(runtime.pool) as conn:
            found = [await tracks.get_track(conn, track_id) for track_id in range(1, 10)]
        return {track.path for track in found if track is not None}

    return asyncio.run(read())


def test_enqueue_refuses_a_file_that_does_not_exist(service_env: dict[str, str], tmp_path: Path) -> None:
    real = write_audio(np.zeros((44100, 2), np.float32), 44100, tmp_path / "real.flac", format_name="flac")
    typo = tmp_path / "no such file.flac"
    result = CliRunner().invoke(app, ["enqueue", str(real), str(typo)])
    assert result.exit_code == 1, result.output
    assert f"error: {typo}: no such file; not queued" in result.stderr
    assert "queued 1 of 2 tracks at scan priority (0 current, 1 without a readable file)" in result.stdout
    assert _known_paths() == {str(real.resolve())}


def test_enqueue_names_only_the_priorities_it_takes(service_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["enqueue", "--priority", "stems", "x.flac"])
    assert result.exit_code == 2
    assert "unknown queue 'stems': use on-play or scan" in " ".join(result.stderr.split())


def test_enqueue_of_a_folder_without_audio_says_so(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("no music here")
    result = CliRunner().invoke(app, ["enqueue", str(tmp_path)])
    assert result.exit_code == 2
    assert "Invalid value: no audio files found" in result.stderr
