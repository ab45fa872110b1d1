"""MusiCNN (MSD-trained) in PyTorch: 753-dim pooled mid-end features for similarity and 50 tag probabilities.

MusiCNN (Pons and Serra, "musicnn: pre-trained convolutional neural networks for music audio tagging", ISMIR 2019
LBD; reference implementation and weights: the ``musicnn`` package, ISC licence, Music Technology Group, Universitat
Pompeu Fabra) tags 3-second patches of music. This module re-implements ``musicnn.models.build_musicnn`` as
``MSD_musicnn`` configures it, so the TensorFlow checkpoint shipped inside the ``musicnn`` wheel loads unchanged
(:func:`load_weights`, through :mod:`.musicnn_checkpoint`; no TensorFlow needed):

- **Front end** (``musicnn.extractor.batch_data``): 16 kHz mono; STFT with a 512-point periodic Hann window, hop
  256; power spectrum; 96-band Slaney mel filterbank (``librosa.filters.mel(sr=16000, n_fft=512, n_mels=96)``,
  0-8 kHz); rounded to float16 as the reference does; ``log10(10000 x + 1)``. A patch is 187 frames (3 s).
- **Musically motivated CNN**: batch norm of the image (one channel); two timbral blocks (204 filters of 7 frames x
  38 and x 67 mel bands, time zero-padded by 3 each side) and three temporal blocks (51 filters of 128, 64 and 32
  frames x 1 band, TensorFlow 'same' padding), each convolution followed by ReLU, batch norm and a max over
  frequency: 561 feature rows per frame.
- **Mid end**: three 1-D convolutions over time (64 filters of 7 frames, zero-padded by 3 each side), each with ReLU
  and batch norm; the 2nd and 3rd add their input (residual). The front-end rows and the three outputs are
  concatenated: 753 rows per frame.
- **Back end**: max and mean over time (753 each: ``max_pool`` is the similarity embedding), interleaved as the
  reference flattens them (1506), batch norm, dense 200 + ReLU + batch norm (``penultimate``), dense 50, sigmoid.

Batch norms use the stored moving statistics and epsilon 1e-3 (the TensorFlow default), evaluated as an affine map.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, cast

import numpy as np
import numpy.typing as npt
import torch
from torch import nn
from torch.nn import functional

SAMPLE_RATE_HZ = 16000
N_FFT = 512
HOP_SAMPLES = 256
N_MELS = 96
PATCH_FRAMES = 187
"""Frames per patch: ``librosa.time_to_frames(3, sr=16000, n_fft=512, hop_length=256) + 1``, as the reference."""
PATCH_SAMPLES = (PATCH_FRAMES - 1) * HOP_SAMPLES + N_FFT
"""Samples that give exactly one patch of frames without centring (48 128 = 3.008 s)."""
POOL_DIM = 753
N_TAGS = 50
BATCH_NORM_EPS = 1e-3

MSD_TAGS: tuple[str, ...] = (
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country",
    "easy listening", "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb",
    "indie pop", "sad", "House", "happy",
)  # fmt: skip
"""The 50 Million Song Dataset tags of ``MSD_musicnn``, in output order, spelled as the reference ships them."""
MTT_TAGS: tuple[str, ...] = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
"""The 50 MagnaTagATune tags of ``MTT_musicnn`` (same architecture, other checkpoint), in output order."""

_TIMBRAL = (("conv2d", 38, "batch_normalization_1"), ("conv2d_1", 67, "batch_normalization_2"))
_TEMPORAL = (
    ("conv2d_2", 128, "batch_normalization_3"),
    ("conv2d_3", 64, "batch_normalization_4"),
    ("conv2d_4", 32, "batch_normalization_5"),
)
_MIDEND = (
    ("conv2d_5", "batch_normalization_6"),
    ("conv2d_6", "batch_normalization_7"),
    ("conv2d_7", "batch_normalization_8"),
)
_TIMBRAL_FILTERS = 204
_TEMPORAL_FILTERS = 51
_FRONTEND_ROWS = 2 * _TIMBRAL_FILTERS + 3 * _TEMPORAL_FILTERS  # 561
_MIDEND_FILTERS = 64
_BACKEND_UNITS = 200
_MIDEND_PAD = 3

EXPECTED_SHAPES: dict[str, tuple[int, ...]] = {
    "conv2d/kernel": (7, 38, 1, _TIMBRAL_FILTERS),
    "conv2d_1/kernel": (7, 67, 1, _TIMBRAL_FILTERS),
    "conv2d_2/kernel": (128, 1, 1, _TEMPORAL_FILTERS),
    "conv2d_3/kernel": (64, 1, 1, _TEMPORAL_FILTERS),
    "conv2d_4/kernel": (32, 1, 1, _TEMPORAL_FILTERS),
    "conv2d_5/kernel": (7, _FRONTEND_ROWS, 1, _MIDEND_FILTERS),
    "conv2d_6/kernel": (7, _MIDEND_FILTERS, 1, _MIDEND_FILTERS),
    "conv2d_7/kernel": (7, _MIDEND_FILTERS, 1, _MIDEND_FILTERS),
    "dense/kernel": (2 * POOL_DIM, _BACKEND_UNITS),
    "dense_1/kernel": (_BACKEND_UNITS, N_TAGS),
}
"""Shapes of the kernels the network needs, as stored in the TensorFlow checkpoint (biases and norms follow)."""


class MusicnnOutput(NamedTuple):
    """Per-patch outputs: ``max_pool`` (n, 753), ``mean_pool`` (n, 753), ``penultimate`` (n, 200), ``tags`` (n, 50)
    sigmoid probabilities."""

    max_pool: torch.Tensor
    mean_pool: torch.Tensor
    penultimate: torch.Tensor
    tags: torch.Tensor


class _Affine(nn.Module):
    """Inference batch norm over dimension 1: ``x * scale + shift``."""

    scale: torch.Tensor
    shift: torch.Tensor

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("scale", torch.ones(n))
        self.register_buffer("shift", torch.zeros(n))

    def set_from(self, gamma: npt.NDArray[np.float32], beta: npt.NDArray[np.float32], mean: npt.NDArray[np.float32],
                 variance: npt.NDArray[np.float32]) -> None:  # fmt: skip
        scale = gamma.astype(np.float64) / np.sqrt(variance.astype(np.float64) + BATCH_NORM_EPS)
        self.scale.copy_(torch.from_numpy(scale.astype(np.float32)))
        self.shift.copy_(torch.from_numpy((beta - mean * scale).astype(np.float32)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return x * self.scale.view(shape) + self.shift.view(shape)

    def max_over_last(self, z: torch.Tensor) -> torch.Tensor:
        """``amax(self(relu(z)), dim=-1)`` for z (batch, channels, frames, bands), without touching z again.

        ReLU and the affine map are monotonic per channel (decreasing where the scale is negative), so the maximum
        of the mapped values is the map of the band maximum, or of the band minimum for a negative scale.
        """
        low, high = torch.aminmax(z, dim=-1)
        negative = (self.scale < 0).view(1, -1, 1)
        return self.forward(functional.relu(torch.where(negative, low, high)))


class LogMel(nn.Module):
    """16 kHz audio (batch, samples) -> log-compressed mel frames (batch, frames, 96), as ``musicnn`` computes them.

    ``center=True`` pads ``n_fft // 2`` zeros at both ends (librosa's default ``pad_mode="constant"``), giving
    ``1 + samples // 256`` frames as for a whole track; ``center=False`` gives ``1 + (samples - 512) // 256``
    frames from a patch cut out of a longer signal (:data:`PATCH_SAMPLES` -> one patch).
    """

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        import librosa  # heavy import, only needed when the network is built

        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float32))
        basis = librosa.filters.mel(sr=SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=N_MELS, htk=False, norm="slaney")
        self.register_buffer("mel_basis", torch.from_numpy(np.asarray(basis, dtype=np.float32)))

    def forward(self, audio: torch.Tensor, *, center: bool = False) -> torch.Tensor:
        return self.compress(self.power(audio, center=center))

    def power(self, audio: torch.Tensor, *, center: bool = False) -> torch.Tensor:
        """16 kHz audio (batch, samples) -> power spectrogram (batch, 257 bins, frames)."""
        spectrum = torch.stft(
            audio,
            n_fft=N_FFT,
            hop_length=HOP_SAMPLES,
            window=self.window,
            center=center,
            pad_mode="constant",
            return_complex=True,
        )
        return spectrum.real.square() + spectrum.imag.square()

    def compress(self, power: torch.Tensor) -> torch.Tensor:
        """Power spectrogram (batch, 257, frames) -> log-compressed mel frames (batch, frames, 96)."""
        mel = torch.matmul(self.mel_basis, power).to(torch.float16).to(torch.float32)
        return torch.log10(mel * 10000.0 + 1.0).transpose(1, 2)


HPSS_KERNEL = 31
"""Median-filter length of the harmonic/percussive separation, in frames (time) and bins (frequency): librosa's
default, 0.5 s x 500 Hz at 16 kHz, hop 256, 512-point STFT."""


def harmonic_power(power: torch.Tensor) -> torch.Tensor:
    """The harmonic part of power spectrograms (batch, bins, frames), each separately: librosa's median-filtering
    HPSS (Fitzgerald 2010) with :data:`HPSS_KERNEL` and soft masks (power 2, margin 1), on the CPU; the result is on
    ``power``'s device. Sustained partials stay; drum hits and note onsets are attenuated."""
    import librosa

    separated = librosa.decompose.hpss(power.cpu().numpy(), kernel_size=HPSS_KERNEL, mask=False)[0]
    return torch.from_numpy(np.ascontiguousarray(separated, dtype=np.float32)).to(power.device)


class MusicnnNetwork(nn.Module):
    """``MSD_musicnn``: call with log-mel patches (batch, frames, 96) (187 frames as trained; any length >= 1 works,
    as in the reference) -> :class:`MusicnnOutput`. Weights come from :func:`load_weights`."""

    def __init__(self) -> None:
        super().__init__()
        self.logmel = LogMel()
        self.input_norm = _Affine(1)
        self.timbral = nn.ModuleList(nn.Conv2d(1, _TIMBRAL_FILTERS, (7, width)) for _, width, _ in _TIMBRAL)
        self.temporal = nn.ModuleList(nn.Conv2d(1, _TEMPORAL_FILTERS, (length, 1)) for _, length, _ in _TEMPORAL)
        self.frontend_norms = nn.ModuleList(
            _Affine(_TIMBRAL_FILTERS if i < len(_TIMBRAL) else _TEMPORAL_FILTERS)
            for i in range(len(_TIMBRAL) + len(_TEMPORAL))
        )
        in_rows = (_FRONTEND_ROWS, _MIDEND_FILTERS, _MIDEND_FILTERS)
        self.midend = nn.ModuleList(nn.Conv1d(rows, _MIDEND_FILTERS, 7) for rows in in_rows)
        self.midend_norms = nn.ModuleList(_Affine(_MIDEND_FILTERS) for _ in in_rows)
        self.pool_norm = _Affine(2 * POOL_DIM)
        self.dense = nn.Linear(2 * POOL_DIM, _BACKEND_UNITS)
        self.dense_norm = _Affine(_BACKEND_UNITS)
        self.logits = nn.Linear(_BACKEND_UNITS, N_TAGS)
        self.eval()

    def patches(self, audio: torch.Tensor, *, harmonic: bool = False) -> torch.Tensor:
        """16 kHz patches (batch, :data:`PATCH_SAMPLES`) -> log-mel patches (batch, 187, 96); ``harmonic``: of the
        harmonic part of each patch only (:func:`harmonic_power`)."""
        power: torch.Tensor = self.logmel.power(audio)
        if harmonic:
            power = harmonic_power(power)
        mel: torch.Tensor = self.logmel.compress(power)
        return mel

    def forward(self, mel: torch.Tensor) -> MusicnnOutput:
        return self.backend(self.midend_frames(mel))

    def midend_frames(self, mel: torch.Tensor) -> torch.Tensor:
        """Log-mel patches (batch, frames, 96) -> the front-end and mid-end features per frame (batch, 753, frames)."""
        x = self.input_norm(mel.unsqueeze(1))  # (batch, 1, frames, 96)
        rows: list[torch.Tensor] = []
        norms = list(self.frontend_norms)
        padded = functional.pad(x, (0, 0, 3, 3))
        for conv, norm in zip(self.timbral, norms[: len(_TIMBRAL)], strict=True):
            rows.append(cast(_Affine, norm).max_over_last(conv(padded)))
        for conv, norm, (_, length, _) in zip(self.temporal, norms[len(_TIMBRAL) :], _TEMPORAL, strict=True):
            same = functional.pad(x, (0, 0, (length - 1) // 2, length // 2))  # TensorFlow 'same': extra at the end
            rows.append(cast(_Affine, norm).max_over_last(conv(same)))
        frontend = torch.cat(rows, dim=1)  # (batch, 561, frames)
        features = [frontend]
        for index, (conv, norm) in enumerate(zip(self.midend, self.midend_norms, strict=True)):
            source = features[-1]
            out = norm(functional.relu(conv(functional.pad(source, (_MIDEND_PAD, _MIDEND_PAD)))))
            features.append(out + source if index > 0 else out)  # the 2nd and 3rd are residual
        return torch.cat(features, dim=1)

    def backend(self, midend: torch.Tensor) -> MusicnnOutput:
        """Mid-end frames (batch, 753, frames) -> pooled features, penultimate layer and tag probabilities."""
        max_pool = torch.amax(midend, dim=2)
        mean_pool = midend.mean(dim=2)
        flat = torch.stack((max_pool, mean_pool), dim=2).flatten(1)  # [max0, mean0, max1, mean1, ...]
        penultimate = self.dense_norm(functional.relu(self.dense(self.pool_norm(flat))))
        tags = torch.sigmoid(self.logits(penultimate))
        return MusicnnOutput(max_pool, mean_pool, penultimate, tags)


@dataclass(frozen=True, slots=True)
class _Tensors:
    """Checkpoint tensors by name, with a shape check that names the variable."""

    values: dict[str, npt.NDArray[np.generic]]
    source: str

    def get(self, name: str, shape: tuple[int, ...]) -> npt.NDArray[np.float32]:
        value = self.values.get(name)
        if value is None:
            raise ValueError(f"{self.source}: variable {name!r} is missing")
        if value.shape != shape:
            raise ValueError(f"{self.source}: variable {name!r} has shape {value.shape}, expected {shape}")
        return np.asarray(value, dtype=np.float32)

    def norm(self, target: _Affine, name: str) -> None:
        n = target.scale.shape[0]
        parts = [self.get(f"{name}/{part}", (n,)) for part in ("gamma", "beta", "moving_mean", "moving_variance")]
        target.set_from(*parts)


def load_weights(network: MusicnnNetwork, tensors: dict[str, npt.NDArray[np.generic]], *, source: str) -> None:
    """Copy the ``MSD_musicnn`` checkpoint variables into ``network``; ``ValueError`` naming ``source`` and the
    variable when one is missing or has another shape."""
    ckpt = _Tensors(tensors, source)

    def conv(module: nn.Conv1d | nn.Conv2d, name: str) -> None:
        kernel = ckpt.get(f"{name}/kernel", EXPECTED_SHAPES[f"{name}/kernel"])  # (kh, kw, in, out)
        if isinstance(module, nn.Conv1d):
            weight = kernel[:, :, 0, :].transpose(2, 1, 0)  # (out, in_rows, time)
        else:
            weight = kernel.transpose(3, 2, 0, 1)  # (out, in, time, freq)
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(weight)))
        bias = module.bias
        if bias is not None:
            bias.copy_(torch.from_numpy(ckpt.get(f"{name}/bias", (kernel.shape[3],))))

    def dense(module: nn.Linear, name: str) -> None:
        kernel = ckpt.get(f"{name}/kernel", EXPECTED_SHAPES[f"{name}/kernel"])  # (in, out)
        module.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel.T)))
        module.bias.copy_(torch.from_numpy(ckpt.get(f"{name}/bias", (kernel.shape[1],))))

    with torch.no_grad():
        ckpt.norm(network.input_norm, "batch_normalization")
        frontend = [*_TIMBRAL, *_TEMPORAL]
        modules = [*network.timbral, *network.temporal]
        for module, norm, (name, _, norm_name) in zip(modules, network.frontend_norms, frontend, strict=True):
            conv(cast(nn.Conv2d, module), name)
            ckpt.norm(cast(_Affine, norm), norm_name)
        for module, norm, (name, norm_name) in zip(network.midend, network.midend_norms, _MIDEND, strict=True):
            conv(cast(nn.Conv1d, module), name)
            ckpt.norm(cast(_Affine, norm), norm_name)
        ckpt.norm(network.pool_norm, "batch_normalization_9")
        dense(network.dense, "dense")
        ckpt.norm(network.dense_norm, "batch_normalization_10")
        dense(network.logits, "dense_1")
