"""The OpenL3 audio embedding network (mel128 input, 512-dim output) in PyTorch.

OpenL3 (Cramer, Wu, Salamon, Bello: "Look, Listen and Learn More", ICASSP 2019; reference implementation
``marl/openl3``, MIT licence) maps one second of 48 kHz mono audio to an embedding. This module re-implements the
network of the reference ``openl3.models._construct_mel128_audio_network`` (openl3 0.4.x, TensorFlow 2 + kapre
0.3.x), so the published Keras weights load into it unchanged (see :mod:`.weights`):

- **Front end** (kapre ``get_melspectrogram_layer`` as openl3 0.4 configures it): STFT with a 2048-point periodic
  Hann window, hop 242 samples, no centring, the signal zero-padded at the end to ``ceil(48000 / 242) = 199``
  frames (``tf.signal.stft(pad_end=True)``); magnitude (not power); a 128-band Slaney mel filterbank
  (``librosa.filters.mel(sr=48000, n_fft=2048, n_mels=128, htk=False, norm="slaney")``, 0 Hz to 24 kHz);
  decibels the way kapre 0.1.4 computed them, which openl3 0.4 restores on purpose: ``10 * log10(max(x, 1e-10))``,
  minus the maximum of that window, floored at -80 dB. The result is a (128 mel x 199 frame) image per window.
- **Network**: batch normalisation of the image, then four blocks of two 3x3 convolutions ('same' padding), each
  but the very last followed by batch normalisation (epsilon 1e-3, the Keras default) and ReLU; 2x2 max pooling
  after blocks 1-3 (128x199 -> 64x99 -> 32x49 -> 16x24); channels 64, 128, 256, 512. The last convolution is the
  reference's ``audio_embedding_layer``; max pooling over its whole 16x24 map gives the 512-dim embedding.

Because each window's spectrogram is normalised to its own maximum, the embedding does not depend on the level of
the input.
"""

from __future__ import annotations

import math
from typing import cast

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from sidecar.analyzers.embedding.openl3_params import EMBEDDING_DIM, SAMPLE_RATE_HZ

__all__ = ["EMBEDDING_DIM", "SAMPLE_RATE_HZ", "MelFrontend", "OpenL3Mel128"]

WINDOW_SAMPLES = SAMPLE_RATE_HZ
"""One window is one second."""

N_FFT = 2048
HOP_SAMPLES = 242
N_MELS = 128
N_FRAMES = math.ceil(WINDOW_SAMPLES / HOP_SAMPLES)  # 199
DB_AMIN = 1e-10
DB_DYNAMIC_RANGE = 80.0
BATCH_NORM_EPS = 1e-3  # Keras default

CONV_CHANNELS: tuple[int, ...] = (64, 64, 128, 128, 256, 256, 512, 512)
"""Output channels of the eight 3x3 convolutions, in order (the last one is ``audio_embedding_layer``)."""
_POOL_AFTER = frozenset({1, 3, 5})  # 2x2 max pooling after the 2nd, 4th and 6th convolution


class MelFrontend(nn.Module):
    """Waveform windows (batch, 48000) at 48 kHz -> log-mel images (batch, 1, 128, 199) in dB, max 0, floor -80."""

    window: torch.Tensor
    mel_basis: torch.Tensor

    def __init__(self) -> None:
        super().__init__()
        import librosa  # heavy import, only needed when the network is built

        self.register_buffer("window", torch.hann_window(N_FFT, periodic=True, dtype=torch.float32))
        basis = librosa.filters.mel(
            sr=SAMPLE_RATE_HZ, n_fft=N_FFT, n_mels=N_MELS, fmin=0.0, fmax=None, htk=False, norm="slaney"
        )
        self.register_buffer("mel_basis", torch.from_numpy(np.asarray(basis, dtype=np.float32)))

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        padded_len = (N_FRAMES - 1) * HOP_SAMPLES + N_FFT
        padded = functional.pad(audio, (0, padded_len - audio.shape[-1]))
        spectrum = torch.stft(
            padded,
            n_fft=N_FFT,
            hop_length=HOP_SAMPLES,
            win_length=N_FFT,
            window=self.window,
            center=False,
            return_complex=True,
        )  # (batch, 1025, 199)
        mel = torch.matmul(self.mel_basis, spectrum.abs())  # (batch, 128, 199)
        log_mel = 10.0 * torch.log10(torch.clamp(mel, min=DB_AMIN))
        log_mel = log_mel - torch.amax(log_mel, dim=(1, 2), keepdim=True)
        return torch.clamp(log_mel, min=-DB_DYNAMIC_RANGE).unsqueeze(1)


class OpenL3Mel128(nn.Module):
    """OpenL3 audio network, mel128 front end, 512-dim embedding. Call with float32 (batch, 48000) windows."""

    def __init__(self) -> None:
        super().__init__()
        self.frontend = MelFrontend()
        in_channels = (1, *CONV_CHANNELS[:-1])
        self.convs = nn.ModuleList(
            nn.Conv2d(cin, cout, kernel_size=3, padding=1) for cin, cout in zip(in_channels, CONV_CHANNELS, strict=True)
        )
        # One norm for the input image, then one after every convolution except the last.
        self.norms = nn.ModuleList(nn.BatchNorm2d(c, eps=BATCH_NORM_EPS) for c in in_channels)
        self.eval()

    def keras_layers(self) -> list[nn.BatchNorm2d | nn.Conv2d]:
        """The layers with weights, in the order of the reference Keras model (input norm, conv, norm, conv, ...)."""
        layers: list[nn.BatchNorm2d | nn.Conv2d] = []
        for norm, conv in zip(self.norms, self.convs, strict=True):
            layers.extend((cast(nn.BatchNorm2d, norm), cast(nn.Conv2d, conv)))
        return layers

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        x = self.norms[0](self.frontend(audio))
        last = len(self.convs) - 1
        for index, conv in enumerate(self.convs):
            x = conv(x)
            if index == last:
                break
            x = functional.relu(self.norms[index + 1](x))
            if index in _POOL_AFTER:
                x = functional.max_pool2d(x, kernel_size=2, stride=2)
        return torch.amax(x, dim=(2, 3))  # (batch, 512): max over the whole 16 x 24 map
