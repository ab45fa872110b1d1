"""`sonantica analyze` as a user runs it: JSON lines, album gain, the table, and clear per-file errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.demo.encode import FORMATS, suffix_for, write_audio
from sidecar.demo.library import render_to_file
from sidecar.demo.music import PieceSpec, render
from sidecar.domain import KeySignature

FIELDS = {
    "path",
    "duration_s",
    "sample_rate_hz",
    "channels",
    "bpm",
    "bpm_confidence",
    "bpm_alternative",
    "bpm_missing_reason",
    "key",
    "key_confidence",
    "camelot",
    "key_missing_reason",
    "loudness_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "replaygain_track_gain_db",
    "replaygain_track_peak",
}

SPEC = PieceSpec(
    title="cli", bpm=120.0, key=KeySignature("A", "minor"), groove="rock", duration_s=12.0, seed=3, gain_db=-4.0
)


@pytest.fixture(scope="module")
def piece(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_to_file(SPEC, tmp_path_factory.mktemp("piece") / "piece.flac")


def _lines(output: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in output.splitlines() if line.strip()]


def test_analyze_json_prints_every_field_for_every_format(tmp_path: Path) -> None:
    audio = render(SPEC)
    paths = [write_audio(audio, 44100, tmp_path / f"t-{n}{suffix_for(n)}", format_name=n) for n in sorted(FORMATS)]
    result = CliRunner().invoke(app, ["analyze", "--json", *map(str, paths)])
    assert result.exit_code == 0, result.output
    rows = _lines(result.stdout)
    assert [r["path"] for r in rows] == [str(p) for p in paths]
    for row in rows:
        assert row.keys() >= FIELDS, row
        assert isinstance(row["bpm"], float), row
        assert abs(row["bpm"] - 120.0) <= 0.04 * 120.0, row
        assert (row["key"], row["camelot"]) == ("A minor", "8A"), row
        assert (row["bpm_missing_reason"], row["key_missing_reason"]) == (None, None), row
        assert isinstance(row["duration_s"], float), row
        assert abs(row["duration_s"] - 12.0) < 0.2, row
        assert isinstance(row["loudness_lufs"], float)
        assert -40.0 < row["loudness_lufs"] < 0.0


def test_analyze_gain_is_reference_minus_loudness(piece: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", "--json", str(piece)])
    (row,) = _lines(result.stdout)
    assert isinstance(row["loudness_lufs"], float)
    assert isinstance(row["replaygain_track_gain_db"], float)
    assert abs(row["replaygain_track_gain_db"] - (-18.0 - row["loudness_lufs"])) <= 0.011
    assert isinstance(row["true_peak_dbtp"], float)
    assert isinstance(row["sample_peak_dbfs"], float)
    assert row["true_peak_dbtp"] >= row["sample_peak_dbfs"] - 0.01


def test_analyze_album_adds_album_gain_to_every_track(tmp_path: Path) -> None:
    loud = write_audio(0.5 * render(SPEC), 44100, tmp_path / "loud.flac")
    quiet = write_audio(0.25 * render(SPEC), 44100, tmp_path / "quiet.flac")
    result = CliRunner().invoke(app, ["analyze", "--json", "--album", str(loud), str(quiet)])
    assert result.exit_code == 0, result.output
    rows = _lines(result.stdout)
    gains = {r["replaygain_album_gain_db"] for r in rows}
    peaks = {r["replaygain_album_peak"] for r in rows}
    assert len(gains) == 1
    assert len(peaks) == 1
    (album_gain,) = gains
    track_gains = sorted(float(str(r["replaygain_track_gain_db"])) for r in rows)
    assert isinstance(album_gain, float)
    assert track_gains[0] < album_gain < track_gains[1]
    assert peaks == {max(float(str(r["replaygain_track_peak"])) for r in rows)}


def test_analyze_reports_bad_files_and_goes_on(tmp_path: Path, piece: Path) -> None:
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    text = tmp_path / "notes.mp3"
    text.write_text("not audio at all\n" * 50)
    missing = tmp_path / "missing.flac"
    result = CliRunner().invoke(app, ["analyze", "--json", str(empty), str(piece), str(text), str(missing)])
    assert result.exit_code == 1
    rows = _lines(result.stdout)
    assert [r["path"] for r in rows] == [str(empty), str(piece), str(text), str(missing)]
    assert "empty" in str(rows[0]["error"])
    assert "error" not in rows[1]
    assert rows[1]["bpm"] is not None
    assert "not a decodable audio file" in str(rows[2]["error"])
    assert "does not exist" in str(rows[3]["error"]) or "not found" in str(rows[3]["error"])


def test_analyze_table_is_readable(piece: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", str(piece)])
    assert result.exit_code == 0, result.output
    header, rule, row = result.stdout.splitlines()
    assert header.split()[:3] == ["file", "length", "s"]
    assert set(rule) == {"-"}
    assert row.startswith("piece.flac")
    assert " A minor " in row
    assert " 8A " in row


def test_analyze_folder_in_parallel_processes(tmp_path: Path) -> None:
    audio = render(SPEC)
    (tmp_path / "album").mkdir()
    for i in range(3):
        write_audio(audio[: 44100 * (4 + i)], 44100, tmp_path / "album" / f"{i}.flac")
    (tmp_path / "album" / "cover.jpg").write_bytes(b"\xff\xd8")
    result = CliRunner().invoke(app, ["analyze", "--json", "-j", "2", str(tmp_path / "album")])
    assert result.exit_code == 0, result.output
    rows = _lines(result.stdout)
    assert [Path(str(r["path"])).name for r in rows] == ["0.flac", "1.flac", "2.flac"]
    assert [round(float(str(r["duration_s"]))) for r in rows] == [4, 5, 6]


def test_analyze_runs_as_a_console_command(piece: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "sidecar", "analyze", "--json", str(piece)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert _lines(done.stdout)[0]["key"] == "A minor"


def test_analyze_never_modifies_the_file(piece: Path) -> None:
    before = (piece.stat().st_mtime_ns, piece.read_bytes())
    CliRunner().invoke(app, ["analyze", "--json", str(piece)])
    assert (piece.stat().st_mtime_ns, piece.read_bytes()) == before


def test_analyze_silence_gives_defined_values(tmp_path: Path) -> None:
    path = write_audio(np.zeros((44100 * 3, 2), np.float32), 44100, tmp_path / "silence.flac")
    result = CliRunner().invoke(app, ["analyze", "--json", str(path)])
    assert result.exit_code == 0, result.output
    (row,) = _lines(result.stdout)
    assert (row["bpm"], row["bpm_missing_reason"]) == (None, "too_short")  # 3 s: under 2.2 beats at 40 BPM
    assert (row["key"], row["key_missing_reason"]) == (None, "few_tonal_frames")
    assert row["loudness_lufs"] is None
    assert row["replaygain_track_gain_db"] is None
    assert row["duration_s"] == 3.0
