"""Where the MusiCNN weights come from: the ``MSD_musicnn`` (or ``MTT_musicnn``) TensorFlow checkpoint of the pinned
``musicnn`` wheel.

The wheel (``musicnn==0.1.0``, ISC licence, installed by the Makefile with ``--no-deps``: its TensorFlow and old
numpy requirements are not ours) ships each checkpoint as ``musicnn/<checkpoint>/.index`` and
``musicnn/<checkpoint>/.data-00000-of-00001`` (``MSD_musicnn``: Million Song Dataset tags; ``MTT_musicnn``: the same
architecture trained on MagnaTagATune tags). The files are looked up, in order,

1. in the model cache, ``<model_dir>/musicnn/<checkpoint>/`` (for an install without the wheel: copy both files
   there);
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
MSD_CHECKPOINT = "MSD_musicnn"
MTT_CHECKPOINT = "MTT_musicnn"
CHECKPOINT_DIR = MSD_CHECKPOINT
"""The checkpoint used when none is named."""
INDEX_FILE = ".index"
DATA_FILE = ".data-00000-of-00001"
SHA256: dict[str, dict[str, str]] = {
    MSD_CHECKPOINT: {
        INDEX_FILE: "87f3e0f3550c8d3bafc840374003e5c8af5eeb5ecf6add61af09a7822d3282c8",
        DATA_FILE: "8579734ee6388f799ed0def4bbd0d1fdcbeaf213ef2a9dc860917bd76a303de6",
    },
    MTT_CHECKPOINT: {
        INDEX_FILE: "da2d7bb670b2b31e9bc441bb1bd75eca31b5b061f963cc1f9630c1aff3238f57",
        DATA_FILE: "041f3935e981a65cea739842d30c188d3a7d2adf4410955c8668eb3de4a5acab",
    },
}
"""SHA-256 of each checkpoint's two files, as recorded in the ``musicnn-0.1.0`` wheel's ``RECORD``."""


@dataclass(frozen=True, slots=True)
class CheckpointFiles:
    """The two files of one checkpoint and where they were found (``model cache`` or ``musicnn package``)."""

    index: Path
    data: Path
    origin: str
    checkpoint: str = CHECKPOINT_DIR


def cache_dir(model_dir: Path, checkpoint: str = CHECKPOINT_DIR) -> Path:
    """The model-cache folder the checkpoint files may be copied into."""
    return model_dir / "musicnn" / checkpoint


def _package_dir() -> Path | None:
    try:
        root = resources.files("musicnn")
    except ModuleNotFoundError:
        return None
    return Path(str(root))


def locate(model_dir: Path | None, checkpoint: str = CHECKPOINT_DIR) -> CheckpointFiles:
    """The files of ``checkpoint`` (model cache first, then the installed wheel); ``WeightsMissingError`` saying how
    to install them when neither has both; ``ValueError`` for a checkpoint not in :data:`SHA256`."""
    if checkpoint not in SHA256:
        raise ValueError(f"not a known MusiCNN checkpoint: {checkpoint!r}")
    candidates: list[tuple[Path, str]] = []
    if model_dir is not None:
        candidates.append((cache_dir(model_dir, checkpoint), "model cache"))
    package = _package_dir()
    if package is not None:
        candidates.append((package / checkpoint, "musicnn package"))
    for folder, origin in candidates:
        index, data = folder / INDEX_FILE, folder / DATA_FILE
        if index.is_file() and data.is_file():
            return CheckpointFiles(index, data, origin, checkpoint)
    looked = ", ".join(str(folder) for folder, _ in candidates) or "nowhere (no model cache, no musicnn package)"
    raise WeightsMissingError(
        f"MusiCNN weights not found (looked in {looked}). Install them with "
        f"`pip install --no-deps {WHEEL}` (`make install` does), or copy {checkpoint}/{INDEX_FILE} and "
        f"{checkpoint}/{DATA_FILE} from that wheel into "
        f"{cache_dir(model_dir, checkpoint) if model_dir is not None else f'<model_dir>/musicnn/{checkpoint}'}"
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
        expected = SHA256[files.checkpoint][name]
        if digest.hexdigest() != expected:
            raise WeightsChecksumError(
                f"MusiCNN weights file {path} ({files.origin}) is corrupt or not the {WHEEL} one: SHA-256 "
                f"{digest.hexdigest()}, expected {expected}. Reinstall with "
                f"`pip install --force-reinstall --no-deps {WHEEL}` or replace the file."
            )


def status(model_dir: Path | None, checkpoint: str = CHECKPOINT_DIR) -> str:
    """One line for ``sonantica models list``: where the weights are and whether they check out."""
    try:
        files = locate(model_dir, checkpoint)
        verify(files)
    except WeightsError as exc:
        return f"weights unusable: {exc}"
    return f"weights ok: {files.index.parent} ({files.origin}, {WHEEL})"


def load_network(model_dir: Path | None, checkpoint: str = CHECKPOINT_DIR) -> MusicnnNetwork:
    """The network of ``checkpoint`` with its verified weights, in eval mode on the CPU."""
    from sidecar.analyzers.embedding.musicnn import MusicnnNetwork, load_weights

    files = locate(model_dir, checkpoint)
    verify(files)
    network = MusicnnNetwork()
    try:
        tensors = read_checkpoint(files.index, files.data)
        load_weights(network, tensors, source=str(files.index))
    except (CheckpointError, ValueError) as exc:
        raise WeightsFormatError(f"MusiCNN weights unusable: {exc}") from None
    return network
