"""``EmbeddingAnalyzer``: one 'how it sounds' vector per track, from the configured model.

Models (``settings.embedding.model``):

- ``musicnn-msd-mtt-harmonic-pool-ln-1506`` (default), ``musicnn-msd-mtt-harmonic-pool-1506``,
  ``musicnn-msd-pool-753`` and ``musicnn-msd-taggram-50``: MusiCNN trained on the Million Song Dataset (the first
  two: also the MagnaTagATune-trained network, on the harmonic part of the patches; the first on patches brought to
  -14 LUFS, :mod:`.level`) (:mod:`.musicnn`), weights from the pinned ``musicnn`` wheel (:mod:`.musicnn_weights`),
  on ``patches_per_track`` 3-second patches (:mod:`.musicnn_model`); each also carries the 50 MSD tag
  probabilities (:attr:`EmbeddingResult.tags`).
- ``openl3-music-mel128-512``: OpenL3 (:mod:`.openl3`) on ``windows_per_track`` one-second windows spread over the
  track (:mod:`.windows`), batched on the configured device; the track vector is the mean of the window embeddings,
  L2-normalised. Needs the official weights (:mod:`.weights`).
- ``timbre-v1``: the DSP embedding of :mod:`.timbre`; no weights.

The model is resolved once per analyzer, at :meth:`EmbeddingAnalyzer.check` (worker start-up) or the first track:
if OpenL3 is configured and its weights are not in the cache, that is a :class:`~sidecar.errors.FatalAnalyzerError`
naming the commands that fix it, unless ``settings.embedding.fallback`` is on, in which case ``timbre-v1`` is used
and a warning is logged. Nothing is downloaded here: weights are fetched only by ``sonantica models fetch``. Every
result carries the name of the model that produced it (:attr:`EmbeddingResult.model`): vectors of different models
are never compared.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.base import AnalyzerSession
from sidecar.analyzers.embedding import timbre
from sidecar.analyzers.embedding.musicnn_model import MODEL_DIMS as MUSICNN_DIMS
from sidecar.analyzers.embedding.musicnn_model import MusicnnModel, MusicnnSession, checkpoints_of
from sidecar.analyzers.embedding.openl3_params import EMBEDDING_DIM
from sidecar.analyzers.embedding.weights import (
    OPENL3_MEL128_MUSIC,
    WeightsError,
    WeightsFormatError,
    WeightsSpec,
    cached_weights,
    clear_cached,
    configured_weights,
    missing_message,
)
from sidecar.analyzers.embedding.windows import WindowSampler
from sidecar.analyzers.versions import VERSIONS
from sidecar.domain import AudioInfo, EmbeddingResult
from sidecar.errors import AnalyzerError, FatalAnalyzerError
from sidecar.settings import Settings

if TYPE_CHECKING:  # PyTorch is imported only when OpenL3 is used
    import torch

    from sidecar.analyzers.embedding.openl3 import OpenL3Mel128

log = logging.getLogger(__name__)

OPENL3_MODEL = OPENL3_MEL128_MUSIC.model
TIMBRE_MODEL = timbre.MODEL_NAME


def resolve_device(setting: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a CUDA device is a FatalAnalyzerError."""
    import torch

    if setting == "cuda" and not torch.cuda.is_available():
        raise FatalAnalyzerError("embedding.device is 'cuda' but PyTorch sees no CUDA device")
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(setting)


class OpenL3Model:
    """OpenL3 weights and network, loaded lazily under a lock (immich pattern).

    The first :meth:`embed` (or :meth:`load`) verifies the cached weights (never downloading them), converts them
    into the PyTorch network and moves it to ``device``. A cached file that turns out to be corrupt (checksum, gzip
    or HDF5 error) is removed, and the error names the commands that fetch it again.
    """

    def __init__(self, *, spec: WeightsSpec, model_dir: Path, device: torch.device, batch_size: int) -> None:
        self.spec = spec
        self.model_dir = model_dir
        self.device = device
        self.batch_size = batch_size
        self._network: OpenL3Mel128 | None = None
        self._lock = threading.Lock()

    def cached_weights(self) -> Path:
        """The verified weights file in the cache; raises WeightsError when it is absent or corrupt."""
        return cached_weights(self.spec, self.model_dir)

    def load(self) -> OpenL3Mel128:
        """The network with the official weights (loaded once; thread-safe)."""
        with self._lock:
            if self._network is None:
                path = self.cached_weights()
                log.info("loading OpenL3 model %s from %s onto %s", self.spec.model, path, self.device)
                from sidecar.analyzers.embedding.keras import load_keras_weights, open_gzip_h5
                from sidecar.analyzers.embedding.openl3 import OpenL3Mel128

                network = OpenL3Mel128()
                try:
                    load_keras_weights(network, open_gzip_h5(path))
                except WeightsFormatError as exc:
                    clear_cached(self.spec, self.model_dir)
                    fix = missing_message(self.spec, self.model_dir)
                    raise WeightsFormatError(f"{exc}; the unusable cached file was removed. {fix}") from exc
                self._network = network.to(self.device).eval()
            return self._network

    def embed(self, windows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Embeddings of 48 kHz one-second windows, (k, 48000) -> (k, 512), in batches of ``batch_size``."""
        import torch

        network = self.load()
        out = np.empty((windows.shape[0], EMBEDDING_DIM), np.float32)
        with torch.inference_mode():
            for start in range(0, windows.shape[0], self.batch_size):
                batch = torch.from_numpy(np.ascontiguousarray(windows[start : start + self.batch_size]))
                out[start : start + batch.shape[0]] = network(batch.to(self.device)).float().cpu().numpy()
        return out


def _unit(vector: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0.0:
        raise AnalyzerError("the embedding is zero or not finite")
    return (vector / norm).astype(np.float32)


class TimbreSession:
    """Per-track state of ``timbre-v1``: streams the 22 050 Hz mono signal."""

    def __init__(self) -> None:
        self._extractor = timbre.TimbreExtractor()

    def feed(self, block: AudioBlock) -> None:
        self._extractor.feed(block.mono)

    def finish(self) -> EmbeddingResult:
        return EmbeddingResult(model=TIMBRE_MODEL, vector=self._extractor.finish())


class OpenL3Session:
    """Per-track state of OpenL3: captures the windows while streaming, runs the network at the end.

    Windows are taken from the native-rate blocks, not the 22 050 Hz mono signal: the network's mel front end
    covers 0-24 kHz at 48 kHz, and content above 11 kHz would be lost.
    """

    def __init__(self, model: OpenL3Model, info: AudioInfo, *, windows_per_track: int) -> None:
        self._model = model
        self._sampler = WindowSampler(sample_rate_hz=info.sample_rate_hz, n_windows=windows_per_track)

    def feed(self, block: AudioBlock) -> None:
        self._sampler.feed(block.native)

    def finish(self) -> EmbeddingResult:
        try:
            embeddings = self._model.embed(self._sampler.windows())
        except WeightsError as exc:
            raise FatalAnalyzerError(str(exc)) from exc
        return EmbeddingResult(model=self._model.spec.model, vector=_unit(embeddings.mean(axis=0)))


class EmbeddingAnalyzer:
    """The ``embedding`` analyzer (streaming :class:`~sidecar.analyzers.base.Analyzer`).

    ``weights`` selects the OpenL3 weights file (tests pass a spec for a file they made); the default is the
    official one (mirror URL and pinned SHA-256 from ``settings.embedding``, see :func:`.weights.configured_weights`).
    Version 3: the default model became ``musicnn-msd-mtt-harmonic-pool-1506``; version 4:
    ``musicnn-msd-mtt-harmonic-pool-ln-1506`` (level-normalised input). Each bump makes every stored embedding
    stale, so an upgraded library is re-embedded by the worker without a command.
    """

    name: ClassVar[str] = "embedding"
    version: ClassVar[int] = VERSIONS[name]

    def __init__(self, settings: Settings, *, weights: WeightsSpec | None = None) -> None:
        config = settings.embedding
        self._configured = config.model
        self._fallback = config.fallback
        self._device_setting = config.device
        self._windows_per_track = config.windows_per_track
        self._patches_per_track = config.patches_per_track
        self._musicnn: dict[str, MusicnnModel] | None = None
        self._weights = weights or configured_weights(config, OPENL3_MODEL) or OPENL3_MEL128_MUSIC
        self._model_dir = settings.model_dir
        self._batch_size = config.batch_size
        self._openl3: OpenL3Model | None = None
        self._active: str | None = None
        self._resolve_lock = threading.Lock()

    @property
    def model(self) -> str:
        """The model this analyzer produces vectors with (resolved on first access)."""
        return self._resolve()

    @property
    def dim(self) -> int:
        """Length of this analyzer's vectors (753, 50 or 1506 for MusiCNN, 512 for OpenL3, 109 for ``timbre-v1``;
        resolves the model)."""
        model = self._resolve()
        if model in MUSICNN_DIMS:
            return MUSICNN_DIMS[model]
        return EMBEDDING_DIM if model == OPENL3_MODEL else timbre.DIM

    def _resolve(self) -> str:
        with self._resolve_lock:
            if self._active is None:
                self._active = self._choose_model()
            return self._active

    def _choose_model(self) -> str:
        if self._configured == TIMBRE_MODEL:
            return TIMBRE_MODEL
        device = resolve_device(self._device_setting)
        if self._configured in MUSICNN_DIMS:
            musicnn = {
                checkpoint: MusicnnModel(
                    model_dir=self._model_dir, device=device, batch_size=self._batch_size, checkpoint=checkpoint
                )
                for checkpoint in checkpoints_of(self._configured)
            }
            try:
                for model in musicnn.values():
                    model.locate()
            except WeightsError as exc:
                if not self._fallback:
                    raise FatalAnalyzerError(str(exc)) from exc
                log.warning("%s Falling back to the %s embedding (embedding.fallback is on).", exc, TIMBRE_MODEL)
                return TIMBRE_MODEL
            self._musicnn = musicnn
            return self._configured
        openl3 = OpenL3Model(
            spec=self._weights,
            model_dir=self._model_dir,
            device=device,
            batch_size=self._batch_size,
        )
        try:
            openl3.cached_weights()
        except WeightsError as exc:
            if not self._fallback:
                raise FatalAnalyzerError(str(exc)) from exc
            log.warning("%s Falling back to the %s embedding (embedding.fallback is on).", exc, TIMBRE_MODEL)
            return TIMBRE_MODEL
        self._openl3 = openl3
        return openl3.spec.model

    def check(self) -> None:
        """Resolve the model at start-up and load it: weights in the cache and convertible, device usable;
        else FatalAnalyzerError (with fallback on, missing weights select ``timbre-v1`` instead)."""
        model = self._resolve()
        try:
            if self._openl3 is not None:
                self._openl3.load()
            for musicnn in (self._musicnn or {}).values():
                musicnn.load()
        except WeightsError as exc:
            raise FatalAnalyzerError(str(exc)) from exc
        log.info("embedding model: %s", model)

    def start(self, info: AudioInfo) -> AnalyzerSession[EmbeddingResult]:
        """Begin one track with the resolved model."""
        model = self._resolve()
        if self._musicnn is not None:
            return MusicnnSession(self._musicnn, info, model_name=model, patches_per_track=self._patches_per_track)
        if model == TIMBRE_MODEL or self._openl3 is None:
            return TimbreSession()
        return OpenL3Session(self._openl3, info, windows_per_track=self._windows_per_track)
