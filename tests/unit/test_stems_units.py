"""Demucs weights (published names, checksums, import, offline errors), the stems folder's path checks, and the
block-wise separation with the tiny local model (Opus and FLAC output, sample counts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pytest
import torch

from sidecar.analyzers.audio import AudioReader
from sidecar.demo.encode import write_audio
from sidecar.settings import Settings
from sidecar.stems import STEM_NAMES
from sidecar.stems import models as stems_models
from sidecar.stems.files import StemsPathError, clear_partials, inside, new_partial_dir, publish, stem_file
from sidecar.stems.separate import SeparationConfig, separate_file
from tests.stems_model import TINY_MODEL, build_tiny_repository


def _settings(tmp_path: Path, **stems: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", stems=stems)


def test_published_files_name_the_htdemucs_weights_and_their_url() -> None:
    [file] = stems_models.model_files("htdemucs")
    assert file.filename == "955717e8-8726e21a.th"
    assert file.url == "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/955717e8-8726e21a.th"
    assert file.checksum == "8726e21a"
    assert len(stems_models.model_files("htdemucs_ft")) == 4
    assert all(f.url.startswith(stems_models.ROOT_URL + "mdx_final/") for f in stems_models.model_files("mdx_extra"))
    with pytest.raises(stems_models.StemsModelError, match="unknown Demucs model 'nope'"):
        stems_models.model_files("nope")
    with pytest.raises(stems_models.StemsModelError, match="unknown"):
        stems_models.model_files("../etc/passwd")


def test_import_checks_the_name_and_the_sha256_prefix(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    stranger = tmp_path / "weights.th"
    stranger.write_bytes(b"abc")
    with pytest.raises(stems_models.StemsModelError, match="not a published Demucs weights file"):
        stems_models.import_file(stranger, settings)
    fake = tmp_path / "955717e8-8726e21a.th"
    fake.write_bytes(b"not the weights")
    with pytest.raises(stems_models.StemsModelChecksumError, match="does not start with 8726e21a"):
        stems_models.import_file(fake, settings)
    assert list(stems_models.cache_dir(settings).iterdir()) == []  # nothing partial or wrong is kept
    assert stems_models.cached_status("htdemucs", settings) == {"955717e8-8726e21a.th": "missing"}
    (stems_models.cache_dir(settings) / "955717e8-8726e21a.th").write_bytes(b"corrupt")
    assert stems_models.cached_status("htdemucs", settings) == {"955717e8-8726e21a.th": "corrupt"}


def test_offline_without_weights_names_the_file_and_the_commands(tmp_path: Path) -> None:
    settings = _settings(tmp_path, model="htdemucs_ft", offline=True)
    with pytest.raises(stems_models.StemsModelMissingError) as caught:
        stems_models.load_model(settings)
    message = str(caught.value)
    assert "f7e0c4bc-ba3fe64a.th" in message
    assert "https://dl.fbaipublicfiles.com/demucs/hybrid_transformer/f7e0c4bc-ba3fe64a.th" in message
    assert "sonantica models fetch --stems" in message
    assert "sonantica models import --stems FILE" in message


def test_a_missing_local_repository_or_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(stems_models.StemsModelMissingError, match="is not a folder"):
        stems_models.load_model(_settings(tmp_path, repo=tmp_path / "absent"))
    repo = build_tiny_repository(tmp_path / "repo")
    with pytest.raises(stems_models.StemsModelError, match="'other_model'"):
        stems_models.load_model(_settings(tmp_path, repo=repo, model="other_model"))


def test_paths_outside_the_stems_folder_are_refused(tmp_path: Path) -> None:
    root = tmp_path / "stems"
    root.mkdir()
    assert inside(root, root / "5" / "vocals.flac") == (root / "5" / "vocals.flac").resolve()
    for bad in (root, root / ".." / "x", tmp_path / "music" / "a.flac"):
        with pytest.raises(StemsPathError):
            inside(root, bad)
    (root / "7").symlink_to(tmp_path)
    with pytest.raises(StemsPathError):
        inside(root, root / "7" / "vocals.flac")
    with pytest.raises(StemsPathError, match="unknown stem"):
        stem_file(root, str(root / "5"), "../../etc/passwd", ".flac")


def test_partial_folders_are_published_atomically_and_leftovers_cleared(tmp_path: Path) -> None:
    root = tmp_path / "stems"
    leftover = new_partial_dir(root, 3)
    (leftover / "vocals.flac").write_bytes(b"half")
    other = new_partial_dir(root, 4)
    assert clear_partials(root, 3) == 1
    assert not leftover.exists()
    assert other.exists()
    (other / "vocals.flac").write_bytes(b"full")
    target = publish(root, other, 4)
    assert target == root / "4"
    assert (target / "vocals.flac").read_bytes() == b"full"
    replacement = new_partial_dir(root, 4)
    (replacement / "vocals.flac").write_bytes(b"newer")
    publish(root, replacement, 4)
    assert (root / "4" / "vocals.flac").read_bytes() == b"newer"
    assert list((root / ".partial").iterdir()) == []


@pytest.fixture
def one_thread() -> Iterator[None]:
    """Torch on one thread (far faster than two on a busy two-core machine); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.usefixtures("one_thread")
@pytest.mark.parametrize("fmt", ["flac", "opus"])
def test_block_wise_separation_writes_every_stem_of_the_full_length(
    tmp_path: Path, fmt: Literal["flac", "opus"]
) -> None:
    repo = build_tiny_repository(tmp_path / "repo")
    model = stems_models.load_model(_settings(tmp_path, repo=repo, model=TINY_MODEL))
    rng = np.random.default_rng(3)
    seconds = 23.5  # two full 10 s blocks and a short last one
    audio = (0.05 * rng.standard_normal((int(seconds * 22050), 1))).astype(np.float32)  # mono, 22.05 kHz
    source = write_audio(audio, 22050, tmp_path / "in.flac")
    out = tmp_path / fmt
    out.mkdir()
    progress: list[float] = []
    result = separate_file(str(source), out, model, SeparationConfig(block_s=10, fmt=fmt), on_block=progress.append)
    assert progress == [10.0, 20.0, 23.5]
    assert result.duration_s == pytest.approx(seconds)
    assert set(result.files) == set(STEM_NAMES)
    for name, size in result.files.items():
        path = out / f"{name}.{fmt}"
        assert path.stat().st_size == size
        assert size > 0
        with AudioReader(path) as reader:
            assert reader.info.channels == 2
            assert reader.info.sample_rate_hz == (48000 if fmt == "opus" else 44100)
            decoded_s = sum(block.native.shape[1] for block in reader.blocks()) / reader.info.sample_rate_hz
        assert decoded_s == pytest.approx(seconds, abs=0.03)
