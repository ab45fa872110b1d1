"""Beat and downbeat activations of BeatNet's CRNN (inference only), streamed over mono 22050 Hz audio.

BeatNet (Heydari, Cwitkowitz and Duan, "BeatNet: CRNN and particle filtering for online joint beat downbeat and
meter tracking", ISMIR 2021; https://github.com/mjhydri/BeatNet) ships its trained weights in its PyPI wheel under
the Creative Commons Attribution 4.0 licence. Only the network is reproduced here (no madmom, no particle filter,
no DBN); the weights are read from the installed, pinned wheel (``pip install --no-deps BeatNet==1.1.3``), never
copied into this repository.

Input features, as BeatNet computes them with madmom: Hann frames of 1411 samples (64 ms) every 441 samples (20 ms,
50 frames/s), frame ``k`` centred on sample ``k * 441`` (zeros before the start and after the end); the magnitude
spectrum (705 bins, no Nyquist bin) through 136 triangular filters on a 24-per-octave logarithmic scale from 30 Hz
to 17 kHz (each filter normalised to unit sum, duplicate bins merged), ``log10(1 + x)``, then the positive
difference from the previous frame: 272 values per frame. The network: a 10-tap convolution with 2 channels across
the 272 values, ReLU, max-pool 2, a linear layer to 150, a two-layer unidirectional LSTM (150 cells), a linear
layer to 3 classes, softmax: (beat, downbeat, no beat) per frame. The LSTM is causal, so the stream carries its
state from piece to piece and keeps only two floats per frame.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.resources
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.fft
import torch
from torch import nn

from sidecar.errors import FatalAnalyzerError

PACKAGE = "BeatNet"
PACKAGE_VERSION = "1.1.3"
MODELS: dict[int, str] = {1: "model_1_weights.pt", 2: "model_2_weights.pt", 3: "model_3_weights.pt"}
"""BeatNet's three trained CRNNs (by the data set left out of training: 1 GTZAN, 2 Ballroom, 3 Rock corpus)."""
SAMPLE_RATE_HZ = 22050
FRAME_LENGTH = 1411
"""Samples per frame (``int(0.064 * 22050)``, as BeatNet)."""
HOP_LENGTH = 441
"""Samples between frames (``int(0.020 * 22050)``)."""
FRAME_RATE_HZ = SAMPLE_RATE_HZ / HOP_LENGTH
"""Activation frames per second (50)."""
_N_BINS = FRAME_LENGTH // 2
_BANDS_PER_OCTAVE = 24
_FMIN_HZ = 30.0
_FMAX_HZ = 17000.0
_FREF_HZ = 440.0
N_BANDS = 136
"""Filters of the logarithmic filterbank; the network reads twice as many values per frame (level and rise)."""
_HIDDEN = 150
_FRAMES_PER_STEP = 1000
"""Frames transformed and fed to the LSTM at once (20 s): bounds the working memory."""


class BeatNetUnavailableError(FatalAnalyzerError):
    """The BeatNet wheel (its weights) is not installed, or not the pinned version."""


@functools.cache
def filterbank() -> npt.NDArray[np.float32]:
    """The (705 bins, 136 bands) logarithmic triangular filterbank of BeatNet's features (madmom's
    ``LogarithmicFilterbank(num_bands=24, fmin=30, fmax=17000, norm_filters=True, unique_filters=True)``)."""
    bin_hz = np.fft.fftfreq(2 * _N_BINS, 1.0 / SAMPLE_RATE_HZ)[:_N_BINS]  # madmom labels bin k at k * 22050 / 1410 Hz
    lowest = math.floor(math.log2(_FMIN_HZ / _FREF_HZ) * _BANDS_PER_OCTAVE)
    highest = math.ceil(math.log2(_FMAX_HZ / _FREF_HZ) * _BANDS_PER_OCTAVE)
    centres_hz = _FREF_HZ * 2.0 ** (np.arange(lowest, highest) / _BANDS_PER_OCTAVE)
    centres_hz = centres_hz[np.searchsorted(centres_hz, _FMIN_HZ) :]
    centres_hz = centres_hz[: np.searchsorted(centres_hz, _FMAX_HZ, "right")]
    bins = np.clip(bin_hz.searchsorted(centres_hz), 1, _N_BINS - 1)
    bins -= (centres_hz - bin_hz[bins - 1] < bin_hz[bins] - centres_hz).astype(bins.dtype)
    bins = np.unique(bins)
    bank = np.zeros((_N_BINS, bins.size - 2), np.float64)
    for band, (start, centre, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:], strict=True)):
        if stop - start < 2:
            centre, stop = start, start + 1
        rising = np.linspace(0.0, 1.0, centre - start, endpoint=False)
        falling = np.linspace(1.0, 0.0, stop - centre, endpoint=False)
        triangle = np.concatenate([rising, falling])
        bank[start:stop, band] = triangle / triangle.sum()
    return bank.astype(np.float32)


class _CRNN(nn.Module):
    """BeatNet's beat/downbeat network; parameter names match the wheel's state dicts."""

    def __init__(self) -> None:
        super().__init__()
        n_in = 2 * N_BANDS
        self.conv1 = nn.Conv1d(1, 2, 10)
        self.linear0 = nn.Linear(2 * ((n_in - 10 + 1) // 2), _HIDDEN)
        self.lstm = nn.LSTM(input_size=_HIDDEN, hidden_size=_HIDDEN, num_layers=2, batch_first=True)
        self.linear = nn.Linear(_HIDDEN, 3)

    def forward(
        self, features: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Class probabilities (frames, 3) of ``features`` (frames, 272), and the LSTM state after them."""
        x = torch.max_pool1d(torch.relu(self.conv1(features.unsqueeze(1))), 2)
        x = self.linear0(x.flatten(1)).unsqueeze(0)
        x, state = self.lstm(x, state)
        return torch.softmax(self.linear(x[0]), dim=1), state


def weights_path(model: int = 1) -> str:
    """Path of BeatNet model ``model``'s state dict inside the installed wheel.

    Raises BeatNetUnavailableError naming the package when the wheel is missing or not the pinned version.
    """
    install = f"pip install --no-deps {PACKAGE}=={PACKAGE_VERSION}"
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise BeatNetUnavailableError(
            f"the beat network's weights come from the {PACKAGE} wheel, which is not installed: {install}"
        ) from None
    if version != PACKAGE_VERSION:
        raise BeatNetUnavailableError(f"{PACKAGE} {version} is installed, the port reads {PACKAGE_VERSION}: {install}")
    if model not in MODELS:
        raise ValueError(f"BeatNet model must be one of {sorted(MODELS)}, got {model}")
    path = importlib.resources.files(PACKAGE) / "models" / MODELS[model]
    if not path.is_file():
        raise BeatNetUnavailableError(f"{PACKAGE} {version} has no {MODELS[model]}: reinstall it ({install})")
    return str(path)


@functools.cache
def load_network(model: int = 1) -> _CRNN:
    """BeatNet model ``model`` in inference mode (loaded once per process)."""
    network = _CRNN()
    state = torch.load(weights_path(model), map_location="cpu", weights_only=True)
    network.load_state_dict(state, strict=True)
    return network.eval()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block: a batch-1 LSTM step is too small to split, and on a busy machine
    splitting it made it four times slower (measured). Restores the previous setting."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass(frozen=True, slots=True)
class Activations:
    """Per-frame probabilities at :data:`FRAME_RATE_HZ` (frame ``k`` at ``k / 50`` s): ``beat`` (a beat that is not
    a downbeat) and ``downbeat``, shape (n,) each."""

    beat: npt.NDArray[np.float32]
    downbeat: npt.NDArray[np.float32]


class FeatureStream:
    """BeatNet's input features (:data:`N_BANDS` log filtered magnitudes, then their positive rise from the previous
    frame) of mono 22050 Hz audio fed in pieces of any size; the frames do not depend on how the signal was cut."""

    def __init__(self) -> None:
        self._window = np.hanning(FRAME_LENGTH).astype(np.float32)
        self._bank = filterbank()
        self._pending = np.zeros(FRAME_LENGTH // 2, np.float32)
        self._previous: npt.NDArray[np.float32] | None = None
        self._n_samples = 0
        self._n_frames = 0

    def feed(self, samples: npt.NDArray[np.float32]) -> list[npt.NDArray[np.float32]]:
        """Append mono samples at :data:`SAMPLE_RATE_HZ` (float32, full scale 1.0); returns the features of the
        frames now complete, in pieces of at most 1000 frames, each of shape (frames, 272)."""
        if not samples.size:
            return []
        self._n_samples += samples.size
        self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
        return self._consume(self._pending.size)

    def finish(self) -> list[npt.NDArray[np.float32]]:
        """The features of the last frames (zeros after the end): ``ceil(samples / 441)`` frames in all."""
        remaining = -(-self._n_samples // HOP_LENGTH) - self._n_frames
        self._pending = np.concatenate([self._pending, np.zeros(FRAME_LENGTH, np.float32)])
        return self._consume((remaining - 1) * HOP_LENGTH + FRAME_LENGTH if remaining > 0 else 0)

    def _consume(self, usable: int) -> list[npt.NDArray[np.float32]]:
        n_frames = (usable - FRAME_LENGTH) // HOP_LENGTH + 1
        if n_frames <= 0:
            return []
        frames = np.lib.stride_tricks.sliding_window_view(self._pending, FRAME_LENGTH)[::HOP_LENGTH][:n_frames]
        pieces = [
            self._features(frames[first : first + _FRAMES_PER_STEP]) for first in range(0, n_frames, _FRAMES_PER_STEP)
        ]
        self._pending = self._pending[n_frames * HOP_LENGTH :].copy()
        self._n_frames += n_frames
        return pieces

    def _features(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        magnitude = np.abs(scipy.fft.rfft(frames * self._window, axis=1)[:, :_N_BINS]).astype(np.float32)
        level = np.log10(np.float32(1.0) + magnitude @ self._bank)
        previous = level[:1] if self._previous is None else self._previous
        rise = np.maximum(np.diff(level, axis=0, prepend=previous), np.float32(0.0))
        self._previous = level[-1:]
        return np.hstack([level, rise])


class ActivationStream:
    """BeatNet activations of mono 22050 Hz audio fed in pieces of any size (the result does not depend on how the
    signal was cut). Memory: the LSTM state and three float32 per 20 ms frame."""

    def __init__(self, model: int = 1) -> None:
        self._network = load_network(model)
        self._features = FeatureStream()
        zeros = torch.zeros(2, 1, _HIDDEN)
        self._state = (zeros, zeros.clone())
        self._parts: list[npt.NDArray[np.float32]] = []
        self._finished = False

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        """Append mono samples at :data:`SAMPLE_RATE_HZ` (float32, full scale 1.0)."""
        if self._finished:
            raise RuntimeError("feed() after activations()")
        for features in self._features.feed(samples):
            self._step(features)

    def activations(self) -> Activations:
        """Flush the end of the signal and return the activations: ``ceil(samples / 441)`` frames."""
        if not self._finished:
            for features in self._features.finish():
                self._step(features)
            self._finished = True
        joined = np.concatenate(self._parts) if self._parts else np.zeros((0, 3), np.float32)
        return Activations(beat=joined[:, 0].copy(), downbeat=joined[:, 1].copy())

    def _step(self, features: npt.NDArray[np.float32]) -> None:
        with torch.inference_mode(), _one_thread():
            probabilities, self._state = self._network(torch.from_numpy(features), self._state)
        self._parts.append(np.asarray(probabilities.numpy(), dtype=np.float32))


def activations(mono: npt.NDArray[np.float32], model: int = 1) -> Activations:
    """:class:`ActivationStream` over a whole mono 22050 Hz signal."""
    stream = ActivationStream(model)
    stream.feed(mono)
    return stream.activations()
