"""The real-recordings tempo benchmark (scripts/bench_tempo_real.py) cuts its excerpts through the product's decoder:
a file the bundled FFmpeg refuses but libsndfile reads is cut, not skipped; its package sets are reported one by one
and together. Nothing is downloaded here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from scripts.bench_tempo_real import (
    EXCERPT_RATE_HZ,
    MIN_SOURCE_S,
    PACKAGES,
    PACKAGES_MORE,
    PACKAGES_THIRD,
    SETS,
    Row,
    Track,
    _cut,
    _report,
    add_set_option,
    agreed_tempi,
    report_sets,
)
from sidecar.analyzers.audio import AudioReader
from sidecar.domain import KeySignature


def _mat5(path: Path, duration_s: float) -> npt.NDArray[np.int16]:
    """A stereo 44.1 kHz MATLAB 5 sound file (FFmpeg has no demuxer for it, libsndfile reads it); its samples."""
    rng = np.random.default_rng(11)
    samples = rng.integers(-20000, 20000, size=(round(duration_s * EXCERPT_RATE_HZ), 2)).astype(np.int16)
    soundfile.write(path, samples, EXCERPT_RATE_HZ, format="MAT5", subtype="PCM_16")
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(path))
    return samples


def test_a_file_ffmpeg_refuses_is_cut_not_skipped(tmp_path: Path) -> None:
    samples = _mat5(tmp_path / "take.mat", MIN_SOURCE_S + 1.0)
    excerpt = tmp_path / "excerpt.flac"
    assert _cut(tmp_path / "take.mat", excerpt, excerpt_s=10.0)
    with AudioReader(excerpt) as reader:
        assert (reader.info.sample_rate_hz, reader.info.channels) == (EXCERPT_RATE_HZ, 2)
        cut = np.concatenate([block.native for block in reader.blocks()], axis=1).T
    start = round(15.5 * EXCERPT_RATE_HZ)  # a 41-s file: its middle 10 s (they start before 20 s in)
    np.testing.assert_array_equal(cut, samples[start : start + 10 * EXCERPT_RATE_HZ].astype(np.float32) / 32768.0)


def test_short_and_unreadable_files_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _mat5(tmp_path / "jingle.mat", MIN_SOURCE_S - 1.0)
    assert not _cut(tmp_path / "jingle.mat", tmp_path / "jingle.flac", excerpt_s=10.0)
    (tmp_path / "notes.ogg").write_text("not audio")
    assert not _cut(tmp_path / "notes.ogg", tmp_path / "notes.flac", excerpt_s=10.0)
    assert not (tmp_path / "jingle.flac").exists()
    assert not (tmp_path / "notes.flac").exists()
    assert capsys.readouterr().out.count("skipped") == 1  # the unreadable file; a short one is left out silently


def test_the_second_set_is_disjoint_and_all_is_both_in_order() -> None:
    assert not set(PACKAGES) & set(PACKAGES_MORE)
    assert SETS["all"] == PACKAGES + PACKAGES_MORE
    assert list(report_sets("all")) == ["first", "more", "all"]
    assert report_sets("more") == {"more": PACKAGES_MORE}
    assert report_sets("third") == {"third": PACKAGES_THIRD}
    assert not set(PACKAGES_THIRD) & set(SETS["all"])  # never in the sets the octave model is fitted on
    with pytest.raises(KeyError):
        report_sets("second")


def test_the_set_option_defaults_to_all_and_refuses_other_names() -> None:
    parser = argparse.ArgumentParser()
    add_set_option(parser, "--real-set")
    assert parser.parse_args([]).real_set == "all"
    assert parser.parse_args(["--real-set", "first"]).real_set == "first"
    with pytest.raises(SystemExit):
        parser.parse_args(["--real-set", "second"])


def _row(name: str, bpm: float | None, essentia_bpm: float, cnn_bpm: float, key: str | None) -> Row:
    track = Track("pkg", Path(name), Path(f"{name}.flac"))
    entry = {"essentia_bpm": essentia_bpm, "tempocnn_cnn": cnn_bpm, "essentia_key": "A minor"}
    return (track, bpm, 0.5, None, KeySignature.parse(key) if key else None, entry)


def test_a_set_report_counts_the_agreed_tracks_and_lists_each_disagreement(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [
        _row("right", 120.0, 120.0, 121.0, "A minor"),
        _row("double", 200.0, 100.0, 100.0, "C major"),
        _row("peers-differ", 90.0, 90.0, 140.0, None),
    ]
    _report("demo", rows, ["pkg"], "cnn", lists=True)
    out = capsys.readouterr().out
    assert "## Tempo: 2 of 3 tracks where Essentia and tempo-CNN (cnn) agree" in out
    assert "| Essentia = tempo-CNN | 2 | 0.500 (1) | 1.000 | 0 |" in out
    assert "| all tracks | 3 | 0.667 (2) | 1.000 | 0 |" in out
    assert "| pkg | 3 | 2 | 0.50 |" in out
    assert "| double | 100.0 | 100.0 | 200.0 | 2.00 | 0.50 | - |" in out
    assert "same key on 1 of 3 (0.333)" in out
    assert "| peers-differ | A minor | None | 0.0 |" in out
    _report("demo", rows, ["pkg"], "cnn", lists=False)
    assert "| double |" not in capsys.readouterr().out


def test_agreed_tempi_are_the_excerpts_the_peers_agree_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    names = ["pkg--a.flac", "pkg--b.flac", "pkg--c.flac"]
    tracks = [Track("pkg", tmp_path / name, tmp_path / name) for name in names]
    monkeypatch.setattr("scripts.bench_tempo_real.real_tracks", lambda cache, packages, excerpt_s: tracks)
    peers = {
        "pkg--a.flac": {"essentia_bpm": 120.0, "tempocnn_cnn": 121.0},  # within 4 %: agreed
        "pkg--b.flac": {"essentia_bpm": 120.0, "tempocnn_cnn": 60.0},
        "pkg--c.flac": {"essentia_bpm": 90.0, "tempocnn_cnn": 90.0},
    }
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "peers-60s.json").write_text(json.dumps(peers))
    assert agreed_tempi(tmp_path, ["pkg"]) == [(tracks[0], 120.0), (tracks[2], 90.0)]
    del peers["pkg--c.flac"]["tempocnn_cnn"]
    (tmp_path / "real" / "peers-60s.json").write_text(json.dumps(peers))
    with pytest.raises(SystemExit, match=r"pkg--c\.flac"):
        agreed_tempi(tmp_path, ["pkg"])
