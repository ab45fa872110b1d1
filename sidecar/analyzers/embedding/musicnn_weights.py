"""Where the MusiCNN weights come from: the ``MSD_musicnn`` TensorFlow checkpoint of the pinned ``musicnn`` wheel.

The wheel (``musicnn==0.1.0``, ISC licence, installed by the Makefile with ``--no-deps``: its TensorFlow and old
numpy requirements are not ours) ships the checkpoint as ``musicnn/MSD_musicnn/.index`` and
``musicnn/MSD_musicnn/.data-00000-of-00001``. The files are looked up, in order,

1. in the model cache, ``<model_dir>/musicnn/MSD_musicnn/`` (for an install without the wheel: copy both files there);
2. in the installed ``musicnn`` package (package data; the package's Python modules are never imported beyond its
   empty ``__init__``).

Both files must match the SHA-256 published in the wheel's ``RECORD``; a mismatch, a truncated file or a checkpoint
without the expected variables is an error naming the file. No TensorFlow is needed (:mod:`.musicnn_checkpoint`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from sidecar.analyzers.embedding.musicnn_checkpoint import CheckpointError, read_checkpoint
from sidecar.analyzers.embedding.weights import (
    WeightsChecksumError,
    WeightsError,
    WeightsFormatError,
    WeightsMissingError,
)

if TYPE_CHECKING:  # PyTorch is imported only when the network is built
    from sidecar.analyzers.embedding.musicnn import MusicnnNetwork

WHEEL = "musicnn==0.1.0"
CHECKPOINT_DIR = "MSD_musicnn"
INDEX_FILE = ".index"
DATA_FILE = ".data-00000-of-00001"
SHA256: dict[str, str] = {
    INDEX_FILE: "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
    DATA_FILE: "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
}
"""SHA-256 of the two checkpoint files, as recorded in the ``musicnn-0.1.0`` wheel's ``RECORD``."""


@dataclass(frozen=True, slots=True)
class CheckpointFiles:
    """The two files of one checkpoint and where they were found (``model cache`` or ``musicnn package``)."""

    index: Path
    data: Path
    origin: str


def cache_dir(model_dir: Path) -> Path:
    """The model-cache folder the checkpoint files may be copied into."""
    return model_dir / "musicnn" / CHECKPOINT_DIR


def _package_dir() -> Path | None:
    try:
        root = resources.files("musicnn")
    except ModuleNotFoundError:
        return None
    return Path(str(root.joinpath(CHECKPOINT_DIR)))


def locate(model_dir: Path | None) -> CheckpointFiles:
    """The checkpoint files (model cache first, then the installed wheel); ``WeightsMissingError`` saying how to
    install them when neither has both."""
    candidates: list[tuple[Path, str]] = []
    if model_dir is not None:
        candidates.append((cache_dir(model_dir), "model cache"))
    package = _package_dir()
    if package is not None:
        candidates.append((package, "musicnn package"))
    for folder, origin in candidates:
        index, data = folder / INDEX_FILE, folder / DATA_FILE
        if index.is_file() and data.is_file():
            return CheckpointFiles(index, data, origin)
    looked = ", ".join(str(folder) for folder, _ in candidates) or "nowhere (no model cache, no musicnn package)"
    raise WeightsMissingError(
        f"MusiCNN weights not found (looked in {looked}). Install them with "
        f"`pip install --no-deps {WHEEL}` (`make install` does), or copy {CHECKPOINT_DIR}/{INDEX_FILE} and "
        f"{CHECKPOINT_DIR}/{DATA_FILE} from that wheel into "
        f"{cache_dir(model_dir) if model_dir is not None else '<model_dir>/musicnn/MSD_musicnn'}"
    )


def verify(files: CheckpointFiles) -> None:
    """``WeightsChecksumError`` naming the file when either file differs from the published SHA-256."""
    for path, name in ((files.index, INDEX_FILE), (files.data, DATA_FILE)):
        digest = hashlib.sha256()
        try:
            with path.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
        except OSError as exc:
            raise WeightsFormatError(f"cannot read MusiCNN weights file {path}: {exc.strerror or exc}") from None
        if digest.hexdigest() != SHA256[name]:
            raise WeightsChecksumError(
                f"MusiCNN weights file {path} ({files.origin}) is corrupt or not the {WHEEL} one: SHA-256 "
                f"{digest.hexdigest()}, expected {SHA256[name]}. Reinstall with "
                f"`pip install --force-reinstall --no-deps {WHEEL}` or replace the file."
            )


def status(model_dir: Path | None) -> str:
    """One line for ``sonantica models list``: where the weights are and whether they check out."""
    try:
        files = locate(model_dir)
        verify(files)
    except WeightsError as exc:
        return f"weights unusable: {exc}"
    return f"weights ok: {files.index.parent} ({files.origin}, {WHEEL})"


def load_network(model_dir: Path | None) -> MusicnnNetwork:
    """The ``MSD_musicnn`` network with its verified weights, in eval mode on the CPU."""
    from sidecar.analyzers.embedding.musicnn import MusicnnNetwork, load_weights

    files = locate(model_dir)
    verify(files)
    network = MusicnnNetwork()
    try:
        tensors = read_checkpoint(files.index, files.data)
        load_weights(network, tensors, source=str(files.index))
    except (CheckpointError, ValueError) as exc:
        raise WeightsFormatError(f"MusiCNN weights unusable: {exc}") from None
    return network
