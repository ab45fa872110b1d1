"""MusiCNN as the embedding analyzer runs it: the networks loaded once, and a per-track session.

A track is summarised from ``patches_per_track`` 3-second patches spread over it (:class:`.windows.WindowSampler`:
silent patches skipped, resampled to 16 kHz with soxr HQ as ``librosa.load`` does for the reference). Models
(:data:`VECTOR_SOURCES`):

- ``musicnn-msd-pool-753``: the mean over patches of each patch's max-pooled mid-end features (``MSD_musicnn``),
  L2-normalised;
- ``musicnn-msd-taggram-50``: the mean over patches of the 50 tag probabilities, L2-normalised as a vector;
- ``musicnn-msd-mtt-harmonic-pool-ln-1506`` (the default): ``musicnn-msd-mtt-harmonic-pool-1506`` computed on the
  patches scaled by one gain to a joint loudness of -14 LUFS (:func:`.level.normalise`), so the vector does not
  depend on the track's playback level;
- ``musicnn-msd-mtt-harmonic-pool-1506``: ``musicnn-msd-pool-753``'s features (``MSD_musicnn`` on the full patches,
  the pass that also gives the tags) beside the same max-pooled features of ``MTT_musicnn`` (same architecture,
  MagnaTagATune tags) on the harmonic part of each patch (:func:`.musicnn.harmonic_power`: drums and onsets
  attenuated), each averaged over patches and L2-normalised, side by side, L2-normalised again.

Every model's result also carries the 50 (tag, mean probability) pairs of ``MSD_musicnn`` on the full patches as
they are (never level-normalised) (:attr:`EmbeddingResult.tags`), the track-level taggram as ``musicnn``'s own
``top_tags`` averages it, so the stored tags do not depend on the embedding model.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.embedding.level import normalise
from sidecar.analyzers.embedding.musicnn_weights import (
    CHECKPOINT_DIR,
    MSD_CHECKPOINT,
    MTT_CHECKPOINT,
    CheckpointFiles,
    load_network,
    locate,
)
from sidecar.analyzers.embedding.weights import WeightsError
from sidecar.analyzers.embedding.windows import WindowSampler
from sidecar.domain import AudioInfo, EmbeddingResult
from sidecar.errors import AnalyzerError, FatalAnalyzerError

if TYPE_CHECKING:  # PyTorch is imported only when MusiCNN is used
    import torch

    from sidecar.analyzers.embedding.musicnn import MusicnnNetwork

log = logging.getLogger(__name__)

POOL_MODEL: Final = "musicnn-msd-pool-753"
TAGS_MODEL: Final = "musicnn-msd-taggram-50"
HARMONIC_MODEL: Final = "musicnn-msd-mtt-harmonic-pool-1506"
LEVELLED_MODEL: Final = "musicnn-msd-mtt-harmonic-pool-ln-1506"
VECTOR_SOURCES: Final[dict[str, tuple[tuple[str, bool, str], ...]]] = {
    LEVELLED_MODEL: ((MSD_CHECKPOINT, False, "max_pool"), (MTT_CHECKPOINT, True, "max_pool")),
    HARMONIC_MODEL: ((MSD_CHECKPOINT, False, "max_pool"), (MTT_CHECKPOINT, True, "max_pool")),
    POOL_MODEL: ((MSD_CHECKPOINT, False, "max_pool"),),
    TAGS_MODEL: ((MSD_CHECKPOINT, False, "tags"),),
}
"""Per model (the default first), the parts of its vector: (checkpoint, harmonic part only, layer), each averaged
over the patches and L2-normalised; several parts are concatenated and L2-normalised again."""
LEVEL_NORMALISED: Final = frozenset({LEVELLED_MODEL})
"""Models whose vector parts are computed on level-normalised patches (:func:`.level.normalise`, one gain per
track); their tags still come from the patches as they are."""
LAYERS: Final = ("max_pool", "mean_pool", "penultimate", "tags")
"""The network outputs :meth:`MusicnnModel.analyze` returns."""
_LAYER_DIMS: Final = {"max_pool": 753, "mean_pool": 753, "penultimate": 200, "tags": 50}
MODEL_DIMS: Final[dict[str, int]] = {
    name: sum(_LAYER_DIMS[layer] for _, _, layer in parts) for name, parts in VECTOR_SOURCES.items()
}
"""The MusiCNN models and their vector lengths."""
SAMPLE_RATE_HZ: Final = 16000
PATCH_S: Final = 48128 / SAMPLE_RATE_HZ
"""One patch: 187 frames of hop 256 plus the 512-sample window (3.008 s)."""


def checkpoints_of(model_name: str) -> tuple[str, ...]:
    """The checkpoints ``model_name`` needs: ``MSD_musicnn`` (for the tags) first, then any other of its parts."""
    others = [checkpoint for checkpoint, _, _ in VECTOR_SOURCES[model_name] if checkpoint != MSD_CHECKPOINT]
    return (MSD_CHECKPOINT, *dict.fromkeys(others))


class MusicnnModel:
    """A MusiCNN network (``checkpoint``: ``MSD_musicnn`` by default), loaded lazily under a lock from its checkpoint
    (:mod:`.musicnn_weights`)."""

    def __init__(
        self, *, model_dir: Path | None, device: torch.device, batch_size: int, checkpoint: str = CHECKPOINT_DIR
    ) -> None:
        self.model_dir = model_dir
        self.checkpoint = checkpoint
        self.device = device
        self.batch_size = batch_size
        self._network: MusicnnNetwork | None = None
        self._lock = threading.Lock()

    def locate(self) -> CheckpointFiles:
        """The checkpoint files (not yet verified); raises WeightsMissingError saying how to install them."""
        return locate(self.model_dir, self.checkpoint)

    def load(self) -> MusicnnNetwork:
        """The network with its verified weights (loaded once; thread-safe); raises WeightsError naming the file."""
        with self._lock:
            if self._network is None:
                network = load_network(self.model_dir, self.checkpoint)
                log.info("loaded MusiCNN %s onto %s", self.checkpoint, self.device)
                self._network = network.to(self.device).eval()
            return self._network

    def mel(self, patches: npt.NDArray[np.float32], *, harmonic: bool = False) -> torch.Tensor:
        """16 kHz patches (k, 48128) -> log-mel patches (k, 187, 96) on the device; ``harmonic``: of the patches'
        harmonic part (:func:`.musicnn.harmonic_power`). The front end has no weights: any checkpoint's will do."""
        import torch

        network = self.load()
        with torch.inference_mode():
            audio = torch.from_numpy(np.ascontiguousarray(patches)).to(self.device)
            return network.patches(audio, harmonic=harmonic)

    def analyze(
        self, patches: npt.NDArray[np.float32], *, harmonic: bool = False
    ) -> dict[str, npt.NDArray[np.float32]]:
        """16 kHz patches (k, 48128) -> per-patch layers by name: ``max_pool`` and ``mean_pool`` (k, 753),
        ``penultimate`` (k, 200), ``tags`` (k, 50) probabilities; ``harmonic``: of the patches' harmonic part."""
        return self.analyze_mel(self.mel(patches, harmonic=harmonic))

    def analyze_mel(self, mel: torch.Tensor) -> dict[str, npt.NDArray[np.float32]]:
        """Log-mel patches (k, 187, 96) -> the per-patch layers of :meth:`analyze`, in batches of ``batch_size``."""
        import torch

        network = self.load()
        parts: dict[str, list[npt.NDArray[np.float32]]] = {name: [] for name in LAYERS}
        with torch.inference_mode():
            for start in range(0, mel.shape[0], self.batch_size):
                out = network(mel[start : start + self.batch_size].to(self.device))._asdict()
                for name in LAYERS:
                    parts[name].append(out[name].float().cpu().numpy())
        return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise AnalyzerError("the embedding is zero or not finite")
    return (vector / norm).astype(np.float32)


class MusicnnSession:
    """Per-track state: captures the patches while streaming, runs the network(s) at the end. ``models`` holds a
    :class:`MusicnnModel` per checkpoint of :func:`checkpoints_of` ``model_name``."""

    def __init__(
        self, models: Mapping[str, MusicnnModel], info: AudioInfo, *, model_name: str, patches_per_track: int
    ) -> None:
        if model_name not in VECTOR_SOURCES:
            raise ValueError(f"not a MusiCNN model: {model_name!r}")
        missing = [checkpoint for checkpoint in checkpoints_of(model_name) if checkpoint not in models]
        if missing:
            raise ValueError(f"{model_name} needs the MusiCNN checkpoints {missing}")
        self._models = models
        self._name = model_name
        self._sampler = WindowSampler(
            sample_rate_hz=info.sample_rate_hz,
            n_windows=patches_per_track,
            window_s=PATCH_S,
            target_rate_hz=SAMPLE_RATE_HZ,
        )

    def feed(self, block: AudioBlock) -> None:
        self._sampler.feed(block.native)

    def patch_layers(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every layer of :meth:`MusicnnModel.analyze` of ``MSD_musicnn``, one row per patch of the track (not
        normalised)."""
        return self._analyze({}, MSD_CHECKPOINT, self._sampler.windows(), harmonic=False)

    def _analyze(
        self, mels: dict[bool, torch.Tensor], checkpoint: str, patches: npt.NDArray[np.float32], *, harmonic: bool
    ) -> dict[str, npt.NDArray[np.float32]]:
        """The layers of ``checkpoint`` on ``patches``, their log-mel computed once per ``harmonic`` in ``mels``."""
        try:
            if harmonic not in mels:
                mels[harmonic] = self._models[checkpoint].mel(patches, harmonic=harmonic)
            return self._models[checkpoint].analyze_mel(mels[harmonic])
        except WeightsError as exc:
            raise FatalAnalyzerError(str(exc)) from exc

    def layers(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every layer of :meth:`MusicnnModel.analyze` of ``MSD_musicnn``, averaged over the track's patches (not
        normalised)."""
        return {name: values.mean(axis=0) for name, values in self.patch_layers().items()}

    def finish(self) -> EmbeddingResult:
        from sidecar.analyzers.embedding.musicnn import MSD_TAGS

        patches = self._sampler.windows()
        mels: dict[bool, torch.Tensor] = {}
        full = self._analyze(mels, MSD_CHECKPOINT, patches, harmonic=False)  # also the tags
        vector_patches, vector_mels = patches, mels
        if self._name in LEVEL_NORMALISED:
            vector_patches, vector_mels = normalise(patches, SAMPLE_RATE_HZ), {}
        parts = []
        for checkpoint, harmonic, layer in VECTOR_SOURCES[self._name]:
            if (checkpoint, harmonic) == (MSD_CHECKPOINT, False) and vector_mels is mels:
                layers = full
            else:
                layers = self._analyze(vector_mels, checkpoint, vector_patches, harmonic=harmonic)
            parts.append(_unit(layers[layer].mean(axis=0)))
        vector = parts[0] if len(parts) == 1 else _unit(np.concatenate(parts))
        tags = full["tags"].mean(axis=0)
        pairs = tuple((tag, float(p)) for tag, p in zip(MSD_TAGS, tags, strict=True))
        return EmbeddingResult(model=self._name, vector=vector, tags=pairs)
