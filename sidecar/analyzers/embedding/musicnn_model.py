"""MusiCNN as the embedding analyzer runs it: the network loaded once, and a per-track session.

A track is summarised from ``patches_per_track`` 3-second patches spread over it (:class:`.windows.WindowSampler`:
silent patches skipped, resampled to 16 kHz with soxr HQ as ``librosa.load`` does for the reference). Both models
come from the same forward pass:

- ``musicnn-msd-pool-753``: the mean over patches of each patch's max-pooled mid-end features, L2-normalised;
- ``musicnn-msd-taggram-50``: the mean over patches of the 50 tag probabilities, L2-normalised as a vector.

Either way the result also carries the 50 (tag, mean probability) pairs (:attr:`EmbeddingResult.tags`), the
track-level taggram as ``musicnn``'s own ``top_tags`` averages it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.embedding.musicnn_weights import CheckpointFiles, load_network, locate
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
MODEL_DIMS: Final[dict[str, int]] = {POOL_MODEL: 753, TAGS_MODEL: 50}
"""The MusiCNN models and their vector lengths."""
LAYERS: Final = ("max_pool", "mean_pool", "penultimate", "tags")
"""The network outputs :meth:`MusicnnModel.analyze` returns."""
SAMPLE_RATE_HZ: Final = 16000
PATCH_S: Final = 48128 / SAMPLE_RATE_HZ
"""One patch: 187 frames of hop 256 plus the 512-sample window (3.008 s)."""


class MusicnnModel:
    """The ``MSD_musicnn`` network, loaded lazily under a lock from the checkpoint (:mod:`.musicnn_weights`)."""

    def __init__(self, *, model_dir: Path | None, device: torch.device, batch_size: int) -> None:
        self.model_dir = model_dir
        self.device = device
        self.batch_size = batch_size
        self._network: MusicnnNetwork | None = None
        self._lock = threading.Lock()

    def locate(self) -> CheckpointFiles:
        """The checkpoint files (not yet verified); raises WeightsMissingError saying how to install them."""
        return locate(self.model_dir)

    def load(self) -> MusicnnNetwork:
        """The network with its verified weights (loaded once; thread-safe); raises WeightsError naming the file."""
        with self._lock:
            if self._network is None:
                network = load_network(self.model_dir)
                log.info("loaded MusiCNN MSD_musicnn onto %s", self.device)
                self._network = network.to(self.device).eval()
            return self._network

    def analyze(self, patches: npt.NDArray[np.float32]) -> dict[str, npt.NDArray[np.float32]]:
        """16 kHz patches (k, 48128) -> per-patch layers by name: ``max_pool`` and ``mean_pool`` (k, 753),
        ``penultimate`` (k, 200), ``tags`` (k, 50) probabilities."""
        import torch

        network = self.load()
        parts: dict[str, list[npt.NDArray[np.float32]]] = {name: [] for name in LAYERS}
        with torch.inference_mode():
            for start in range(0, patches.shape[0], self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(patches[start : start + self.batch_size]))
                out = network(network.patches(batch.to(self.device)))._asdict()
                for name in LAYERS:
                    parts[name].append(out[name].float().cpu().numpy())
        return {name: np.concatenate(arrays) for name, arrays in parts.items()}


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise AnalyzerError("the embedding is zero or not finite")
    return (vector / norm).astype(np.float32)


class MusicnnSession:
    """Per-track state: captures the patches while streaming, runs the network at the end."""

    def __init__(self, model: MusicnnModel, info: AudioInfo, *, model_name: str, patches_per_track: int) -> None:
        if model_name not in MODEL_DIMS:
            raise ValueError(f"not a MusiCNN model: {model_name!r}")
        self._model = model
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
        """Every layer of :meth:`MusicnnModel.analyze`, one row per patch of the track (not normalised)."""
        try:
            return self._model.analyze(self._sampler.windows())
        except WeightsError as exc:
            raise FatalAnalyzerError(str(exc)) from exc

    def layers(self) -> dict[str, npt.NDArray[np.float32]]:
        """Every layer of :meth:`MusicnnModel.analyze`, averaged over the track's patches (not normalised)."""
        return {name: values.mean(axis=0) for name, values in self.patch_layers().items()}

    def finish(self) -> EmbeddingResult:
        from sidecar.analyzers.embedding.musicnn import MSD_TAGS

        layers = self.layers()
        vector = layers["max_pool"] if self._name == POOL_MODEL else layers["tags"]
        pairs = tuple((tag, float(p)) for tag, p in zip(MSD_TAGS, layers["tags"], strict=True))
        return EmbeddingResult(model=self._name, vector=_unit(vector), tags=pairs)
