"""Embedding benchmark: which model finds same-instrument neighbours, scored on held-out data, and its cost.

Parts (``--parts``, default all):

``broad``: the broad similarity corpus (:func:`sidecar.demo.embedding_eval.broad_corpus`): 14 GM programs x
``--melodies`` melodies x every soundfont found (TimGM6mb from ``pretty_midi``; Debian's ``fluid-soundfont-gm`` and
``musescore-general-soundfont-small`` when installed), solo / accompanied / band arrangements, random level,
reverb, chorus and spectral tilt per clip. Label: the lead program. Every clip is a query once. Representations
with fitted parts (standardisation, PCA whitening, concatenation weight, LDA, NCA) are fitted without the query's
fold. Schemes: **leave-one-melody-out** (LOMO) and **leave-one-soundfont-out** (LOSO), each scored with neighbours
searched among all clips (precision@5), only within the query's soundfont (``1sf``, precision@3: 3 same-program
clips exist there) and only within the query's arrangement (``arr``, precision@1); and **leave-programs-out**
(LOPO: fitted on every other program, scored on the rest, neighbours among the rest). Peers: librosa-default and
Essentia MFCC/chroma/contrast statistics (Essentia from the ``bench`` extra, skipped when not installed). Also
measured: the ``MTT_musicnn`` checkpoint, both networks on the harmonic part of each patch (HPSS), other
statistics over patches and over frames inside a patch (:func:`variant_features`), and the wheel's VGG checkpoints
(:class:`VggNetwork`, benchmark only), and the default vector on level-normalised input (:data:`LEVEL_VARIANTS`,
``--level-variants``). ``--feature-groups`` computes only the named feature sets (:data:`FEATURE_GROUPS`; rows
without their features are skipped); ``--representations`` scores only the rows whose name contains one of the
given substrings. Printed: precision per scheme, and precision@5 per program under LOMO.

``transfer``: every representation of ``broad`` fitted on the broad clips of FluidR3 and MuseScore Lite, scored
(precision@5) on the older solo corpus below (TimGM6mb, other melodies, no arrangement or effects): a corpus the fit
never saw.

``quality``: the older instrument corpus (12 lead programs x 8 melodies x 20 s, TimGM6mb, solo) and robustness
(each piece re-encoded to MP3 128 kbit/s at 22.05 kHz, -6 / +6 dB, must find its original as nearest neighbour),
for ``--quality-models`` (product analyzers) and, with ``--quality-level``, the ``--level-variants`` of the
``musicnn-msd-mtt-harmonic-pool-1506`` vector on the product's 8 patches.

``speed``: decode + embed of one rendered 4-minute piece (44.1 kHz stereo FLAC), per model (``--speed-runs``:
only the runs whose label contains one of the given substrings), best of ``--repeats``: wall time and process CPU
time. OpenL3 runs on random weights in the official layout (the official
file cannot be downloaded here; the network does the same arithmetic whatever the values).

Rendered clips and per-clip features are cached under ``--cache-dir`` (default ``.bench-cache/embedding``).

    python scripts/bench_embedding.py [--parts broad,transfer,quality,speed] [--melodies 4] [--duration-s 15]
                                      [--repeats 3] [--speed-runs harmonic,decode] [--representations MTT,LDA]
                                      [--feature-groups level] [--level-variants none,track] [--quality-level]
"""

from __future__ import annotations

import argparse
import gzip
import importlib.resources
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import scipy.linalg
import torch

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.embedding import EmbeddingAnalyzer, level
from sidecar.analyzers.embedding.analyzer import TimbreSession, resolve_device
from sidecar.analyzers.embedding.level import TARGET_LUFS
from sidecar.analyzers.embedding.musicnn import MusicnnNetwork
from sidecar.analyzers.embedding.musicnn_model import (
    HARMONIC_MODEL,
    LEVELLED_MODEL,
    PATCH_S,
    POOL_MODEL,
    MusicnnModel,
    MusicnnSession,
)
from sidecar.analyzers.embedding.musicnn_model import SAMPLE_RATE_HZ as MUSICNN_RATE_HZ
from sidecar.analyzers.embedding.musicnn_weights import MSD_CHECKPOINT, MTT_CHECKPOINT, load_network
from sidecar.analyzers.embedding.openl3 import OpenL3Mel128
from sidecar.analyzers.embedding.weights import OPENL3_MEL128_MUSIC, WeightsSpec, digest_file, import_weights
from sidecar.analyzers.embedding.windows import WindowSampler
from sidecar.analyzers.loudness import LoudnessAnalyzer
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.embedding_eval import (
    EVAL_PROGRAMS,
    broad_corpus,
    cached_clips,
    degrade,
    embed_files,
    nearest_original_rate,
    precision_at_k,
)
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import LEAD_PROGRAMS, instrument_corpus, soundfont_path, tempo_key_corpus
from sidecar.domain import LoudnessResult
from sidecar.settings import EmbeddingSettings, Settings

Matrix = np.ndarray

PROGRAM_NAMES = {
    0: "piano", 4: "e-piano", 11: "vibraphone", 19: "organ", 24: "nylon guitar", 40: "violin", 56: "trumpet",
    65: "alto sax", 71: "clarinet", 73: "flute", 80: "square lead", 81: "saw lead", 48: "strings", 52: "choir",
}  # fmt: skip
DEBIAN_SOUNDFONTS = {
    "fluidr3": Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    "musescore-lite": Path("/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"),
}


def _settings(data_dir: Path, model: str, **extra: object) -> Settings:
    values = {"model": model, "fallback": False, "device": "cpu", **extra}
    return Settings(data_dir=data_dir, embedding=EmbeddingSettings.model_validate(values))


def _unit(x: Matrix) -> Matrix:
    unit: Matrix = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return unit


# --- features ------------------------------------------------------------------------------------------------------

STD_LAYERS = ("max_pool", "mean_pool", "penultimate")
"""MusiCNN layers whose standard deviation over a clip's patches is also kept (``<layer>_std``)."""


class _CachedRows:
    """Per-clip feature files (``.npz``, one array per name) gathered into one matrix per name, clips in order."""

    def __init__(self) -> None:
        self._rows: dict[str, list[np.ndarray]] = {}

    def add(self, cached: Path) -> None:
        with np.load(cached) as data:
            for name in data.files:
                self._rows.setdefault(name, []).append(data[name])

    def stacked(self) -> dict[str, Matrix]:
        return {name: np.stack(values).astype(np.float64) for name, values in self._rows.items()}


def clip_features(paths: Sequence[Path], cache_dir: Path, model: MusicnnModel) -> dict[str, Matrix]:
    """Per clip: ``timbre-v1``, the MusiCNN layers (means over the clip's 64 patches, as the product averages them)
    and the standard deviation over patches of :data:`STD_LAYERS`; one decode per clip."""
    rows = _CachedRows()
    for i, path in enumerate(paths):
        cached = cache_dir / f"{path.stem}-features-v2.npz"
        if not cached.exists():
            with AudioReader(path) as reader:
                timbre = TimbreSession()
                musicnn = MusicnnSession(
                    {MSD_CHECKPOINT: model}, reader.info, model_name=POOL_MODEL, patches_per_track=64
                )
                for block in reader.blocks():
                    timbre.feed(block)
                    musicnn.feed(block)
                per_patch = musicnn.patch_layers()
                means = {name: values.mean(axis=0) for name, values in per_patch.items()}
                stds = {f"{name}_std": per_patch[name].std(axis=0) for name in STD_LAYERS}
                # allow_pickle=True (numpy's default) is named in every savez here: mypy would match ** against it.
                np.savez(cached, allow_pickle=True, **{"timbre-v1": timbre.finish().vector}, **means, **stds)
            if i % 20 == 0:
                print(f"  features {i + 1}/{len(paths)}", flush=True)
        rows.add(cached)
    return rows.stacked()


VARIANTS: tuple[tuple[str, str, bool], ...] = (
    ("msd", MSD_CHECKPOINT, False),
    ("mtt", MTT_CHECKPOINT, False),
    ("msd_harm", MSD_CHECKPOINT, True),
    ("mtt_harm", MTT_CHECKPOINT, True),
)
"""Feature prefix, checkpoint and whether the network sees only the harmonic part (HPSS) of each patch."""


def harmonic_power(power: torch.Tensor) -> torch.Tensor:
    """The harmonic part of power spectrograms (batch, bins, frames): librosa's HPSS defaults (median filters of 31
    frames / 31 bins, soft masks of power 2, margin 1), applied per patch."""
    import librosa

    return torch.from_numpy(librosa.decompose.hpss(power.numpy(), kernel_size=31, mask=False)[0])


def _variant_layers(network: MusicnnNetwork, power: torch.Tensor) -> dict[str, np.ndarray]:
    """One clip's patches through ``network``: per-clip statistics of the per-patch layers."""
    frames = network.midend_frames(network.logmel.compress(power))  # (patches, 753, frames)
    out = network.backend(frames)
    per_patch = {name: getattr(out, name).numpy() for name in ("max_pool", "mean_pool", "penultimate", "tags")}
    stats = {name: values.mean(axis=0) for name, values in per_patch.items()}
    max_pool = per_patch["max_pool"]
    stats["max_pool_std"] = max_pool.std(axis=0)
    stats["max_pool_max"] = max_pool.max(axis=0)
    for q in (10, 50, 90):
        stats[f"max_pool_p{q}"] = np.percentile(max_pool, q, axis=0)
    stats["frame_std"] = frames.std(dim=2).mean(dim=0).numpy()
    stats["frame_p90"] = torch.quantile(frames, 0.9, dim=2).mean(dim=0).numpy()
    return stats


def _clip_patches(path: Path) -> np.ndarray:
    """The 64 patches of a clip that :func:`clip_features` averages over (3 s at MusiCNN's 16 kHz, spread evenly)."""
    with AudioReader(path) as reader:
        sampler = WindowSampler(sample_rate_hz=reader.info.sample_rate_hz, n_windows=64, window_s=PATCH_S,
                                target_rate_hz=MUSICNN_RATE_HZ)  # fmt: skip
        for block in reader.blocks():
            sampler.feed(block.native)
    return sampler.windows()


def variant_features(paths: Sequence[Path], cache_dir: Path) -> dict[str, Matrix]:
    """Per clip, for each of :data:`VARIANTS` (``<prefix>:<statistic>``): the means over the clip's patches (the
    same patches as :func:`clip_features`) of ``max_pool``, ``mean_pool``, ``penultimate``, ``tags``; of max_pool
    also the std, max and 10/50/90th percentiles over patches; and, inside each patch, the std and 90th percentile
    over frames of the 753 mid-end rows (``frame_std``, ``frame_p90``), averaged over patches."""
    networks = {checkpoint: load_network(None, checkpoint) for _, checkpoint, _ in VARIANTS}
    rows = _CachedRows()
    for i, path in enumerate(paths):
        cached = cache_dir / f"{path.stem}-variants-v1.npz"
        if not cached.exists():
            patches = _clip_patches(path)
            values: dict[str, np.ndarray] = {}
            with torch.inference_mode():
                power = networks[MSD_CHECKPOINT].logmel.power(torch.from_numpy(patches))
                harmonic = harmonic_power(power)
                for prefix, checkpoint, harm in VARIANTS:
                    layers = _variant_layers(networks[checkpoint], harmonic if harm else power)
                    values.update({f"{prefix}:{name}": value for name, value in layers.items()})
            np.savez(cached, allow_pickle=True, **values)
            if i % 20 == 0:
                print(f"  variant features {i + 1}/{len(paths)}", flush=True)
        rows.add(cached)
    return rows.stacked()


class VggNetwork(torch.nn.Module):
    """The ``musicnn`` wheel's other architecture (``musicnn.models.vgg``, 128 filters), for measurement only: batch
    norm of the log-mel patch (187 x 96), then five blocks of 3 x 3 'same' convolution + ReLU + batch norm + max
    pooling (4 x 1 stride 2, 2 x 2, 2 x 2, 2 x 2, 4 x 4 stride 4; TensorFlow 'valid'), flattened pool5 (2 x 1 x 128
    = 256) and a dense layer to 50 tags. Weights from ``MTT_vgg`` / ``MSD_vgg`` (read with the product's checkpoint
    reader; their SHA-256 are not checked here)."""

    POOLS = (((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4)))

    def __init__(self, checkpoint: str) -> None:
        super().__init__()
        from sidecar.analyzers.embedding.musicnn import _Affine
        from sidecar.analyzers.embedding.musicnn_checkpoint import read_checkpoint

        folder = Path(str(importlib.resources.files("musicnn").joinpath(checkpoint)))
        tensors = read_checkpoint(folder / ".index", folder / ".data-00000-of-00001")
        norms = [_Affine(1), *(_Affine(128) for _ in range(5))]
        self.norms = torch.nn.ModuleList(norms)
        for i, norm in enumerate(norms):
            name = "batch_normalization" + (f"_{i}" if i else "")
            parts = [np.asarray(tensors[f"{name}/{p}"], np.float32) for p in ("gamma", "beta", "moving_mean",
                                                                                 "moving_variance")]  # fmt: skip
            norm.set_from(*parts)
        convs = [torch.nn.Conv2d(1 if i == 0 else 128, 128, 3, padding=1) for i in range(5)]
        self.convs = torch.nn.ModuleList(convs)
        with torch.no_grad():
            for i, conv in enumerate(convs):
                kernel = np.asarray(tensors[f"{i + 1}CNN/kernel"], np.float32).transpose(3, 2, 0, 1)
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
                assert conv.bias is not None  # Conv2d's default bias=True
                conv.bias.copy_(torch.from_numpy(np.asarray(tensors[f"{i + 1}CNN/bias"], np.float32)))
            self.dense = torch.nn.Linear(256, 50)
            self.dense.weight.copy_(torch.from_numpy(np.ascontiguousarray(np.asarray(tensors["dense/kernel"]).T)))
            self.dense.bias.copy_(torch.from_numpy(np.asarray(tensors["dense/bias"], np.float32)))
        self.eval()

    def forward(self, mel: torch.Tensor) -> dict[str, torch.Tensor]:
        """Log-mel patches (batch, 187, 96) -> ``pool5`` (batch, 256), the channel means and maxima of ``pool3``
        and ``pool4`` over time and frequency (batch, 128 each) and ``tags`` (batch, 50) probabilities."""
        x = self.norms[0](mel.unsqueeze(1))
        out: dict[str, torch.Tensor] = {}
        for i, (conv, norm, (size, stride)) in enumerate(zip(self.convs, self.norms[1:], self.POOLS, strict=True)):
            x = torch.nn.functional.max_pool2d(norm(torch.relu(conv(x))), size, stride)
            if i in (2, 3):
                out[f"pool{i + 1}_mean"] = x.mean(dim=(2, 3))
                out[f"pool{i + 1}_max"] = x.amax(dim=(2, 3))
        out["pool5"] = x.permute(0, 2, 3, 1).flatten(1)  # TensorFlow flattens (time, freq, channel)
        out["tags"] = torch.sigmoid(self.dense(out["pool5"]))
        return out


def vgg_features(paths: Sequence[Path], cache_dir: Path) -> dict[str, Matrix]:
    """Per clip, for ``MTT_vgg`` and ``MSD_vgg`` (``mtt_vgg:<layer>``, ``msd_vgg:<layer>``): the means over the
    clip's patches (those of :func:`clip_features`) of :meth:`VggNetwork.forward`'s outputs."""
    networks = {"mtt_vgg": VggNetwork("MTT_vgg"), "msd_vgg": VggNetwork("MSD_vgg")}
    logmel = load_network(None).logmel
    rows = _CachedRows()
    for path in paths:
        cached = cache_dir / f"{path.stem}-vgg-v1.npz"
        if not cached.exists():
            patches = _clip_patches(path)
            values: dict[str, np.ndarray] = {}
            with torch.inference_mode():
                mel = logmel(torch.from_numpy(patches))
                for prefix, network in networks.items():
                    out = network(mel)
                    values.update({f"{prefix}:{name}": v.mean(dim=0).numpy() for name, v in out.items()})
            np.savez(cached, allow_pickle=True, **values)
        rows.add(cached)
    return rows.stacked()


LEVEL_VARIANTS: dict[str, tuple[bool, float] | None] = {
    "none": None,
    "track": (False, TARGET_LUFS),
    "patch": (True, TARGET_LUFS),
    "track-20": (False, TARGET_LUFS - 6.0),
    "track-8": (False, TARGET_LUFS + 6.0),
}
"""Level normalisation of the default model's input (:mod:`sidecar.analyzers.embedding.level`): None (as the
product today), or (each patch on its own, target LUFS): ``track`` = one gain for all of a clip's patches so that
their joint loudness is the target, ``patch`` = each patch to the target; gains capped at +30 dB. The target is
-14 LUFS, chosen before measuring; ``track-20`` / ``track-8`` (+-6 dB) are a sensitivity check only."""


def _level_gains(patches: np.ndarray, variant: str) -> np.ndarray:
    """Linear gain per patch (16 kHz) for ``variant`` of :data:`LEVEL_VARIANTS`, with the product's functions."""
    setting = LEVEL_VARIANTS[variant]
    if setting is None:
        return np.ones(patches.shape[0])
    per_patch, target = setting
    if per_patch:
        gains = [level.gain_db(level.loudness_lufs(p[None], MUSICNN_RATE_HZ), target_lufs=target) for p in patches]
    else:
        gains = [level.gain_db(level.loudness_lufs(patches, MUSICNN_RATE_HZ), target_lufs=target)] * len(patches)
    return np.power(10.0, np.asarray(gains) / 20.0)


def _level_layers(
    networks: dict[str, MusicnnNetwork], patches: np.ndarray, variants: Sequence[str]
) -> dict[str, np.ndarray]:
    """The default model's two parts on ``patches`` for each of ``variants``: ``<variant>:msd`` (MSD max_pool of the
    full patches) and ``<variant>:mtt_harm`` (MTT max_pool of their harmonic part), means over the patches.

    A gain g on a patch scales its power spectrogram by g^2, and HPSS (median filters, ratio masks) commutes with
    that scaling, so the power and its harmonic part are computed once and scaled per variant (the product scales
    the audio: the same up to float rounding)."""
    values: dict[str, np.ndarray] = {}
    with torch.inference_mode():
        power = networks[MSD_CHECKPOINT].logmel.power(torch.from_numpy(patches))
        harmonic = harmonic_power(power)
        for variant in variants:
            square = torch.from_numpy(np.square(_level_gains(patches, variant)).astype(np.float32))[:, None, None]
            for name, checkpoint, source in (("msd", MSD_CHECKPOINT, power), ("mtt_harm", MTT_CHECKPOINT, harmonic)):
                network = networks[checkpoint]
                max_pool = network(network.logmel.compress(source * square)).max_pool
                values[f"{variant}:{name}"] = max_pool.mean(dim=0).numpy()
    return values


def level_features(paths: Sequence[Path], cache_dir: Path, variants: Sequence[str]) -> dict[str, Matrix]:
    """Per clip (the patches of :func:`clip_features`), for each of ``variants`` (:data:`LEVEL_VARIANTS`):
    ``level:<variant>:msd`` and ``level:<variant>:mtt_harm``, the two halves of the default model's vector; and
    ``level:lufs``, the clip patches' joint loudness (dual mono, LUFS; -inf when silent)."""
    networks = {checkpoint: load_network(None, checkpoint) for checkpoint in (MSD_CHECKPOINT, MTT_CHECKPOINT)}
    rows = _CachedRows()
    for i, path in enumerate(paths):
        cached = {variant: cache_dir / f"{path.stem}-level-{variant}-v1.npz" for variant in variants}
        todo = [variant for variant, file in cached.items() if not file.exists()]
        if todo:
            patches = _clip_patches(path)
            values = _level_layers(networks, patches, todo)
            lufs = level.loudness_lufs(patches, MUSICNN_RATE_HZ)
            for variant in todo:
                np.savez(cached[variant], allow_pickle=True,
                         **{f"level:{variant}:{name}": values[f"{variant}:{name}"] for name in ("msd", "mtt_harm")},
                         **{"level:lufs": np.array(-np.inf if lufs is None else lufs)})  # fmt: skip
            if i % 20 == 0:
                print(f"  level features {i + 1}/{len(paths)}", flush=True)
        for file in cached.values():
            rows.add(file)
    stacked = rows.stacked()
    stacked["level:lufs"] = stacked["level:lufs"].reshape(len(paths), -1)[:, 0]
    return stacked


def librosa_features(paths: Sequence[Path], cache_dir: Path) -> Matrix:
    """The naive peer, librosa 0.11 defaults: ``librosa.load`` (22.05 kHz mono), 20 MFCCs, 12 chroma (STFT) and 7
    spectral-contrast bands; mean and standard deviation over frames of each (78 values per clip)."""
    import librosa

    rows = []
    for path in paths:
        cached = cache_dir / f"{path.stem}-librosa-v1.npy"
        if not cached.exists():
            y, sr = librosa.load(path)
            frames = np.vstack([
                librosa.feature.mfcc(y=y, sr=sr),
                librosa.feature.chroma_stft(y=y, sr=sr),
                librosa.feature.spectral_contrast(y=y, sr=sr),
            ])  # fmt: skip
            np.save(cached, np.concatenate([frames.mean(axis=1), frames.std(axis=1)]))
        rows.append(np.load(cached))
    return np.stack(rows).astype(np.float64)


def essentia_features(paths: Sequence[Path], cache_dir: Path) -> Matrix | None:
    """The Essentia peer (``bench`` extra; None when not installed), Essentia's default algorithms on 44.1 kHz mono
    frames of 2048 samples, hop 1024, Hann window: 13 MFCCs, 12-bin HPCP and spectral contrast (6 bands + 6
    valleys); mean and standard deviation over frames (74 values per clip)."""
    try:
        import essentia  # bench extra
        import essentia.standard as es
    except ImportError:
        return None
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    window, spectrum = es.Windowing(type="hann"), es.Spectrum()
    mfcc, peaks, hpcp = es.MFCC(), es.SpectralPeaks(), es.HPCP()
    contrast = es.SpectralContrast(frameSize=2048)
    rows = []
    for path in paths:
        cached = cache_dir / f"{path.stem}-essentia-v1.npy"
        if not cached.exists():
            audio = es.MonoLoader(filename=str(path), sampleRate=44100)()
            frames = []
            for frame in es.FrameGenerator(audio, frameSize=2048, hopSize=1024, startFromZero=True):
                spec = spectrum(window(frame))
                _, coefficients = mfcc(spec)
                chroma = hpcp(*peaks(spec))
                bands, valleys = contrast(spec)
                frames.append(np.concatenate([coefficients, chroma, bands, valleys]))
            stacked = np.array(frames)
            np.save(cached, np.concatenate([stacked.mean(axis=0), stacked.std(axis=0)]))
        rows.append(np.load(cached))
    return np.stack(rows).astype(np.float64)


FEATURE_GROUPS = ("musicnn", "variants", "vgg", "librosa", "essentia", "level")
"""Feature sets of the broad and transfer parts (``--feature-groups``): :func:`clip_features` (with ``timbre-v1``),
:func:`variant_features`, :func:`vgg_features`, the two peers, :func:`level_features`. Representations whose
features were not computed are skipped."""


def group_features(
    paths: Sequence[Path], cache_dir: Path, musicnn: MusicnnModel, groups: Sequence[str], level_variants: Sequence[str]
) -> dict[str, Matrix]:
    """The features of ``groups`` (:data:`FEATURE_GROUPS`) for ``paths``; ``essentia`` only when installed."""
    features: dict[str, Matrix] = {}
    if "musicnn" in groups:
        features.update(clip_features(paths, cache_dir, musicnn))
    if "variants" in groups:
        features.update(variant_features(paths, cache_dir))
    if "vgg" in groups:
        features.update(vgg_features(paths, cache_dir))
    if "librosa" in groups:
        features["librosa"] = librosa_features(paths, cache_dir)
    essentia = essentia_features(paths, cache_dir) if "essentia" in groups else None
    if essentia is not None:
        features["essentia"] = essentia
    if "level" in groups:
        features.update(level_features(paths, cache_dir, level_variants))
        lufs = features.pop("level:lufs")
        print(f"  joint loudness of the clips' patches (dual mono): median {np.median(lufs):.1f} LUFS, "
              f"range {lufs.min():.1f} .. {lufs.max():.1f}", flush=True)  # fmt: skip
    return features


# --- representations -----------------------------------------------------------------------------------------------
# A representation is fitted on the training clips only: fit(features, train mask, groups) -> vectors of all clips;
# ``groups`` are the scheme's fold labels (for nested choices of a hyper-parameter inside the training part).

Fit = Callable[[dict[str, Matrix], np.ndarray, np.ndarray], Matrix]


def raw(name: str) -> Fit:
    return lambda features, train, groups: _unit(features[name])


def _standardise(x: Matrix, train: np.ndarray) -> Matrix:
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    standardised: Matrix = (x - mean) / np.where(std > 1e-9, std, 1.0)
    return standardised


def _blocks(features: dict[str, Matrix], names: Sequence[str], train: np.ndarray) -> Matrix:
    """``names`` standardised column-wise on the training clips, each block scaled to the same total variance."""
    return np.hstack([_standardise(features[n], train) / np.sqrt(features[n].shape[1]) for n in names])


def joined(*names: str) -> Fit:
    """Unfitted: each of ``names`` L2-normalised, side by side (equal weight), L2-normalised again."""
    return lambda features, train, groups: _unit(np.hstack([_unit(features[n]) for n in names]))


def standardised(*names: str) -> Fit:
    return lambda features, train, groups: _unit(_blocks(features, names, train))


def _whiten(x: Matrix, train: np.ndarray, variance: float) -> Matrix:
    mean = x[train].mean(axis=0)
    _, s, vt = np.linalg.svd(x[train] - mean, full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    k = int(np.searchsorted(share, variance)) + 1
    scale = s[:k] / np.sqrt(max(int(train.sum()) - 1, 1))
    whitened: Matrix = ((x - mean) @ vt[:k].T) / scale
    return whitened


def whitened(name: str, *, variance: float = 0.95) -> Fit:
    """PCA fitted on the training clips, components up to ``variance`` of the variance, each scaled to unit variance."""
    return lambda features, train, groups: _unit(_whiten(features[name], train, variance))


def concatenated(first: str, second: str, labels: np.ndarray, *, whiten: bool = False) -> Fit:
    """Standardised ``first`` and ``second`` (each L2-normalised), ``second`` weighted by w; w from a grid, chosen
    by precision@5 among the training clips only (queries and neighbours both from the training part)."""

    def fit(features: dict[str, Matrix], train: np.ndarray, groups: np.ndarray) -> Matrix:
        a = _unit(_standardise(features[first], train))
        b = _unit(_standardise(features[second], train))
        best_w, best_p = 0.0, -1.0
        for w in np.linspace(0.0, 1.5, 16):
            z = _unit(np.hstack([a, w * b]))
            p = precision_at_k(z[train], labels[train], k=5)
            if p > best_p + 1e-9:
                best_w, best_p = float(w), p
        z = np.hstack([a, best_w * b])
        return _unit(_whiten(z, train, 0.95)) if whiten else _unit(z)

    return fit


def _lda_projection(x: Matrix, y: np.ndarray, shrinkage: float) -> Matrix:
    """Fisher LDA on rows ``x`` (already centred and reduced) with labels ``y``: the generalised eigenvectors of
    between- vs within-class scatter, the within-class scatter shrunk toward its mean variance by ``shrinkage``
    (0..1); the top (classes - 1) directions as columns."""
    classes = np.unique(y)
    mean = x.mean(axis=0)
    within = np.zeros((x.shape[1], x.shape[1]))
    between = np.zeros_like(within)
    for c in classes:
        xc = x[y == c]
        centred = xc - xc.mean(axis=0)
        within += centred.T @ centred
        offset = (xc.mean(axis=0) - mean)[:, None]
        between += xc.shape[0] * offset @ offset.T
    within /= x.shape[0]
    between /= x.shape[0]
    within = (1 - shrinkage) * within + shrinkage * np.trace(within) / x.shape[1] * np.eye(x.shape[1])
    values, vectors = scipy.linalg.eigh(between, within)
    projection: Matrix = vectors[:, np.argsort(values)[::-1][: len(classes) - 1]]
    return projection


def _lda_vectors(x: Matrix, labels: np.ndarray, train: np.ndarray, shrinkage: float) -> Matrix:
    """PCA on the training rows (keeping at most n_train - classes components, 99 % of the variance), then LDA."""
    mean = x[train].mean(axis=0)
    _, s, vt = np.linalg.svd(x[train] - mean, full_matrices=False)
    share = np.cumsum(s**2) / np.sum(s**2)
    k = min(int(np.searchsorted(share, 0.99)) + 1, int(train.sum()) - len(np.unique(labels[train])))
    reduced = (x - mean) @ vt[:k].T
    return _unit(reduced @ _lda_projection(reduced[train], labels[train], shrinkage))


SHRINKAGES = (0.05, 0.2, 0.5, 0.8, 0.95)
DEFAULT_SHRINKAGE = 0.5
"""Used where the training part has a single group (LOPO), so no nested choice is possible."""


def lda(names: Sequence[str], labels: np.ndarray) -> Fit:
    """Standardised blocks ``names`` -> PCA -> shrinkage LDA on the program labels of the training clips. The
    shrinkage is chosen by nested leave-one-group-out inside the training part (precision@5 of the inner held-out
    group among the training clips), never on the scored fold; :data:`DEFAULT_SHRINKAGE` where the training part is
    one group."""

    def fit(features: dict[str, Matrix], train: np.ndarray, groups: np.ndarray) -> Matrix:
        x = _blocks(features, names, train)
        inner_groups = np.unique(groups[train])
        if len(inner_groups) < 2:  # leave-programs-out: one group left to fit on, nothing to choose with
            return _lda_vectors(x, labels, train, DEFAULT_SHRINKAGE)
        best, best_p = SHRINKAGES[0], -1.0
        for shrinkage in SHRINKAGES:
            hits = []
            for inner in inner_groups:
                inner_train = train & (groups != inner)
                z = _lda_vectors(x, labels, inner_train, shrinkage)[train]
                queries = groups[train] == inner
                hits.append(_hits(z, labels[train], queries, np.ones((z.shape[0], z.shape[0]), bool), k=5))
            p = float(np.concatenate(hits).mean())
            if p > best_p + 1e-9:
                best, best_p = shrinkage, p
        return _lda_vectors(x, labels, train, best)

    return fit


def blended(learned: Fit, name: str) -> Fit:
    """``learned`` (unit vectors) beside the raw layer ``name`` (unit vectors), equal weight: a hedge that keeps the
    unfitted similarity for music unlike the training labels."""

    def fit(features: dict[str, Matrix], train: np.ndarray, groups: np.ndarray) -> Matrix:
        return _unit(np.hstack([learned(features, train, groups), _unit(features[name])]))

    return fit


def nca(names: Sequence[str], labels: np.ndarray, *, pca_dims: int = 64, dims: int = 32) -> Fit:
    """Standardised blocks ``names`` -> PCA (``pca_dims``, fitted on the training clips) -> scikit-learn's
    Neighbourhood Components Analysis to ``dims`` dimensions on the program labels of the training clips."""
    from sklearn.neighbors import NeighborhoodComponentsAnalysis

    def fit(features: dict[str, Matrix], train: np.ndarray, groups: np.ndarray) -> Matrix:
        x = _blocks(features, names, train)
        mean = x[train].mean(axis=0)
        _, _, vt = np.linalg.svd(x[train] - mean, full_matrices=False)
        reduced = (x - mean) @ vt[:pca_dims].T
        model = NeighborhoodComponentsAnalysis(n_components=dims, max_iter=200, random_state=0)
        model.fit(reduced[train], labels[train])
        return _unit(model.transform(reduced))

    return fit


# --- scoring -------------------------------------------------------------------------------------------------------


def _hits(z: Matrix, labels: np.ndarray, queries: np.ndarray, scope: np.ndarray, *, k: int) -> np.ndarray:
    """Per query row: share of its ``k`` nearest others (cosine), searched only where ``scope[query]`` is true,
    that carry its label."""
    similarity = z[queries] @ z.T
    similarity[~scope[queries]] = -np.inf
    similarity[np.arange(similarity.shape[0]), np.flatnonzero(queries)] = -np.inf
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    hits: np.ndarray = (labels[neighbours] == labels[queries][:, None]).mean(axis=1)
    return hits


@dataclass(frozen=True)
class Scheme:
    """A held-out scoring scheme: ``folds`` (fit without the query's fold), ``scope`` (query x candidate: where its
    neighbours are searched) and ``k``."""

    name: str
    folds: np.ndarray
    scope: np.ndarray
    k: int


def held_out_precision(
    fit: Fit, features: dict[str, Matrix], labels: np.ndarray, scheme: Scheme
) -> tuple[float, dict[int, float]]:
    """precision@k of every clip as a query, the representation fitted without the query's fold; overall and per
    label."""
    hits = np.zeros(labels.shape[0])
    for fold in np.unique(scheme.folds):
        held = scheme.folds == fold
        z = fit(features, ~held, scheme.folds)
        hits[held] = _hits(z, labels, held, scheme.scope, k=scheme.k)
    per_label = {int(label): float(hits[labels == label].mean()) for label in np.unique(labels)}
    return float(hits.mean()), per_label


def make_representations(
    labels: np.ndarray, *, with_essentia: bool, only: Sequence[str] = ()
) -> dict[str, tuple[Fit, int]]:
    """Every representation of the broad part by name, with its vector length; ``labels`` are those of every row
    the fits will see (the fits use only the training rows' labels)."""
    musicnn_all = ("max_pool", "penultimate", "timbre-v1")
    with_stds = (*musicnn_all, "max_pool_std", "penultimate_std")
    representations: dict[str, tuple[Fit, int]] = {
        "timbre-v1": (raw("timbre-v1"), 109),
        "timbre-v1, standardised": (standardised("timbre-v1"), 109),
        "musicnn max_pool (musicnn-msd-pool-753)": (raw("max_pool"), 753),
        "musicnn mean_pool": (raw("mean_pool"), 753),
        "musicnn penultimate": (raw("penultimate"), 200),
        "musicnn taggram (musicnn-msd-taggram-50)": (raw("tags"), 50),
        "musicnn max_pool, standardised": (standardised("max_pool"), 753),
        "musicnn max_pool, PCA-whitened": (whitened("max_pool"), 753),
        "max_pool (+) timbre-v1, weight fitted": (concatenated("max_pool", "timbre-v1", labels), 862),
        "max_pool (+) timbre-v1, fitted + whitened": (
            concatenated("max_pool", "timbre-v1", labels, whiten=True),
            862,
        ),
        "musicnn penultimate, standardised": (standardised("penultimate"), 200),
        "max_pool mean (+) std over patches, std'd": (standardised("max_pool", "max_pool_std"), 1506),
        "max_pool (+) penult (+) timbre, std'd": (standardised(*musicnn_all), 1062),
        "  same (+) max_pool/penult std, std'd": (standardised(*with_stds), 2015),
        "peer: librosa MFCC+chroma+contrast": (raw("librosa"), 78),
        "peer: librosa, standardised": (standardised("librosa"), 78),
        "LDA on max_pool": (lda(["max_pool"], labels), 13),
        "LDA on penultimate": (lda(["penultimate"], labels), 13),
        "LDA on timbre-v1": (lda(["timbre-v1"], labels), 13),
        "LDA on librosa": (lda(["librosa"], labels), 13),
        "LDA on max_pool (+) penult (+) timbre": (lda(musicnn_all, labels), 13),
        "LDA on the same (+) patch stds": (lda(with_stds, labels), 13),
        "NCA on max_pool (+) penult (+) timbre": (nca(musicnn_all, labels), 32),
        "LDA on max_pool, blended with raw max_pool": (blended(lda(["max_pool"], labels), "max_pool"), 766),
    }
    mtt_msd = ("max_pool", "mtt:max_pool")
    representations |= {
        "MTT max_pool": (raw("mtt:max_pool"), 753),
        "MTT mean_pool": (raw("mtt:mean_pool"), 753),
        "MTT penultimate": (raw("mtt:penultimate"), 200),
        "MTT taggram": (raw("mtt:tags"), 50),
        "MTT max_pool, standardised": (standardised("mtt:max_pool"), 753),
        "MSD (+) MTT max_pool": (joined(*mtt_msd), 1506),
        "MSD (+) MTT penultimate": (joined("penultimate", "mtt:penultimate"), 400),
        "MSD max_pool (+) MTT taggram": (joined("max_pool", "mtt:tags"), 803),
        "MSD (+) MTT max_pool, standardised": (standardised(*mtt_msd), 1506),
        "harmonic (HPSS) MSD max_pool": (raw("msd_harm:max_pool"), 753),
        "harmonic MSD penultimate": (raw("msd_harm:penultimate"), 200),
        "harmonic MTT max_pool": (raw("mtt_harm:max_pool"), 753),
        "harmonic MTT penultimate": (raw("mtt_harm:penultimate"), 200),
        "harmonic MTT taggram": (raw("mtt_harm:tags"), 50),
        "harmonic (+) full, MSD max_pool": (joined("msd_harm:max_pool", "max_pool"), 1506),
        "harmonic (+) full, MTT max_pool": (joined("mtt_harm:max_pool", "mtt:max_pool"), 1506),
        "MSD max_pool (+) harmonic MTT max_pool (new model)": (joined("max_pool", "mtt_harm:max_pool"), 1506),
        "harmonic MSD (+) MTT max_pool": (joined("msd_harm:max_pool", "mtt_harm:max_pool"), 1506),
        "MSD max_pool, median over patches": (raw("msd:max_pool_p50"), 753),
        "MSD max_pool, p90 over patches": (raw("msd:max_pool_p90"), 753),
        "MSD max_pool, max over patches": (raw("msd:max_pool_max"), 753),
        "MSD p10 (+) p50 (+) p90 over patches, std'd": (
            standardised("msd:max_pool_p10", "msd:max_pool_p50", "msd:max_pool_p90"),
            2259,
        ),
        "MSD frame std inside patches": (raw("msd:frame_std"), 753),
        "MSD frame p90 inside patches": (raw("msd:frame_p90"), 753),
        "MSD max_pool (+) frame std": (joined("max_pool", "msd:frame_std"), 1506),
        "MTT max_pool (+) frame std": (joined("mtt:max_pool", "mtt:frame_std"), 1506),
        "MTT_vgg pool5": (raw("mtt_vgg:pool5"), 256),
        "MTT_vgg pool4 mean (+) max": (joined("mtt_vgg:pool4_mean", "mtt_vgg:pool4_max"), 256),
        "MTT_vgg pool3 mean (+) max": (joined("mtt_vgg:pool3_mean", "mtt_vgg:pool3_max"), 256),
        "MTT_vgg taggram": (raw("mtt_vgg:tags"), 50),
        "MSD_vgg pool5": (raw("msd_vgg:pool5"), 256),
        "MSD_vgg pool4 mean (+) max": (joined("msd_vgg:pool4_mean", "msd_vgg:pool4_max"), 256),
        "LDA on MTT max_pool": (lda(["mtt:max_pool"], labels), 13),
        "LDA on MSD (+) MTT max_pool": (lda(list(mtt_msd), labels), 13),
    }
    for variant, setting in LEVEL_VARIANTS.items():
        label = "none (baseline)" if setting is None else f"{variant.split('-')[0]} {setting[1]:g} LUFS"
        label += " (sensitivity)" if setting is not None and setting[1] != TARGET_LUFS else ""
        parts = (f"level:{variant}:msd", f"level:{variant}:mtt_harm")
        representations[f"default 1506, level: {label}"] = (joined(*parts), 1506)
    if with_essentia:
        representations["peer: essentia MFCC+HPCP+contrast"] = (raw("essentia"), 74)
        representations["peer: essentia, standardised"] = (standardised("essentia"), 74)
    if only:
        return {name: value for name, value in representations.items() if any(part in name for part in only)}
    return representations


def broad(
    cache_dir: Path,
    *,
    melodies: int,
    duration_s: float,
    score_part: bool,
    transfer_part: bool,
    only: Sequence[str] = (),
    groups: Sequence[str] = FEATURE_GROUPS,
    level_variants: Sequence[str] = tuple(LEVEL_VARIANTS),
) -> None:
    fonts = {"timgm6mb": soundfont_path(), **{n: p for n, p in DEBIAN_SOUNDFONTS.items() if p.exists()}}
    clips = broad_corpus(list(fonts), melodies=melodies, duration_s=duration_s, seed=0)
    print(f"broad corpus: {len(EVAL_PROGRAMS)} programs x {melodies} melodies x {len(fonts)} soundfonts "
          f"({', '.join(fonts)}) x {duration_s:g} s = {len(clips)} clips", flush=True)  # fmt: skip
    paths = cached_clips(clips, fonts, cache_dir / "broad")
    musicnn = MusicnnModel(model_dir=None, device=resolve_device("cpu"), batch_size=8)
    features = group_features(paths, cache_dir / "broad", musicnn, groups, level_variants)
    essentia = features.pop("essentia", None)
    labels = np.array([clip.program for clip in clips])
    by_melody = np.array([clip.melody for clip in clips])
    by_font = np.array([clip.soundfont for clip in clips])
    half = np.array([EVAL_PROGRAMS.index(clip.program) % 2 for clip in clips])
    everywhere = np.ones((len(clips), len(clips)), bool)
    same_font = by_font[:, None] == by_font[None, :]
    by_arrangement = np.array([clip.arrangement for clip in clips])
    same_arrangement = by_arrangement[:, None] == by_arrangement[None, :]
    schemes = [
        Scheme("LOMO p@5", by_melody, everywhere, 5),
        Scheme("LOSO p@5", by_font, everywhere, 5),
        Scheme("LOMO 1sf p@3", by_melody, same_font, 3),
        Scheme("LOSO 1sf p@3", by_font, same_font, 3),
        Scheme("LOMO arr p@1", by_melody, same_arrangement, 1),
        Scheme("LOSO arr p@1", by_font, same_arrangement, 1),
        Scheme("LOPO p@5", half, half[:, None] == half[None, :], 5),
    ]
    if len(fonts) == 1:
        schemes = [s for s in schemes if not s.name.startswith("LOSO")]
    representations = make_representations(labels, with_essentia=essentia is not None, only=only)
    if essentia is not None:
        features["essentia"] = essentia
    if score_part:
        print("LOMO/LOSO: leave-one-melody-/soundfont-out; 1sf: neighbours only within the query's soundfont;")
        print("arr: neighbours only among clips of the query's arrangement (solo / chords / drums);")
        print("LOPO: fitted on half the programs, scored on the other half (neighbours among those clips only)")
        print(f"{'representation':<44} {'dims':>5} " + " ".join(f"{s.name:>12}" for s in schemes))
        per_program_rows: list[str] = []
        for name, (fit, dims) in representations.items():
            try:
                scores = [held_out_precision(fit, features, labels, scheme) for scheme in schemes]
            except KeyError as missing:
                print(f"{name:<44} skipped: feature {missing} not computed (--feature-groups, --level-variants)")
                continue
            print(f"{name:<44} {dims:>5} " + " ".join(f"{p:>12.3f}" for p, _ in scores), flush=True)
            per_label = scores[0][1]
            per_program_rows.append(f"{name[:44]:<44} " + " ".join(f"{per_label[p]:>5.2f}" for p in EVAL_PROGRAMS))
        print("precision@5 per program (leave-one-melody-out, neighbours across soundfonts):")
        print(f"{'':<44} " + " ".join(f"{PROGRAM_NAMES[p][:5]:>5}" for p in EVAL_PROGRAMS))
        for row in per_program_rows:
            print(row)
    if transfer_part and "timgm6mb" in fonts and len(fonts) > 1:
        transfer(cache_dir, musicnn, features, labels, by_font, by_melody, only=only, groups=groups,
                 level_variants=level_variants)  # fmt: skip


def transfer(
    cache_dir: Path,
    musicnn: MusicnnModel,
    broad_features: dict[str, Matrix],
    broad_labels: np.ndarray,
    by_font: np.ndarray,
    by_melody: np.ndarray,
    *,
    only: Sequence[str] = (),
    groups: Sequence[str] = FEATURE_GROUPS,
    level_variants: Sequence[str] = tuple(LEVEL_VARIANTS),
) -> None:
    """Another corpus: every representation fitted on the broad clips of the soundfonts other than TimGM6mb, scored
    on the older solo corpus (12 lead programs x 8 melodies x 20 s, TimGM6mb, no effects; each melody its own notes,
    key and tempo): neighbours (precision@5) among that corpus only, so soundfont, melodies and arrangement are all
    unseen by the fit."""
    specs = instrument_corpus(LEAD_PROGRAMS, 8, duration_s=20.0, seed=0)
    paths = cached_corpus(specs, cache_dir / "instrument")
    other = group_features(paths, cache_dir / "instrument", musicnn, groups, level_variants)
    features = {name: np.vstack([broad_features[name], other[name]]) for name in broad_features if name in other}
    labels = np.concatenate([broad_labels, [spec.lead_program for spec in specs]])
    n_broad = broad_labels.shape[0]
    scored = np.arange(labels.shape[0]) >= n_broad
    train = np.concatenate([by_font != "timgm6mb", np.zeros(len(specs), bool)])
    folds = np.concatenate([by_melody, np.full(len(specs), -1)])  # nested choices: leave one broad melody out
    print(f"transfer: fitted on {int(train.sum())} broad clips (not TimGM6mb), scored on the solo corpus "
          f"({len(LEAD_PROGRAMS)} programs x 8 melodies x 20 s, TimGM6mb)")  # fmt: skip
    print(f"{'representation':<44} {'p@5':>6}")
    for name, (fit, _) in make_representations(labels, with_essentia="essentia" in features, only=only).items():
        try:
            z = fit(features, train, folds)
        except KeyError as missing:
            print(f"{name:<44} skipped: feature {missing} not computed")
            continue
        hits = _hits(z, labels, scored, scored[None, :].repeat(labels.shape[0], axis=0), k=5)
        print(f"{name:<44} {hits.mean():>6.3f}", flush=True)


# --- the older corpus and robustness -------------------------------------------------------------------------------


def _level_vectors(paths: Sequence[Path], variants: Sequence[str]) -> dict[str, Matrix]:
    """The default model's vectors of ``paths`` as the product computes them (8 patches per file, MSD max_pool of the
    full patches beside MTT max_pool of their harmonic part, each averaged and L2-normalised, joined), for each of
    ``variants`` (:data:`LEVEL_VARIANTS`)."""
    networks = {checkpoint: load_network(None, checkpoint) for checkpoint in (MSD_CHECKPOINT, MTT_CHECKPOINT)}
    patches_per_track = EmbeddingSettings().patches_per_track
    rows: dict[str, list[np.ndarray]] = {variant: [] for variant in variants}
    for path in paths:
        with AudioReader(path) as reader:
            sampler = WindowSampler(sample_rate_hz=reader.info.sample_rate_hz, n_windows=patches_per_track,
                                    window_s=PATCH_S, target_rate_hz=MUSICNN_RATE_HZ)  # fmt: skip
            for block in reader.blocks():
                sampler.feed(block.native)
        values = _level_layers(networks, sampler.windows(), variants)
        for variant in variants:
            parts = [values[f"{variant}:{name}"][None] for name in ("msd", "mtt_harm")]
            rows[variant].append(_unit(np.hstack([_unit(part) for part in parts]))[0])
    return {variant: np.stack(vectors) for variant, vectors in rows.items()}


def quality(
    cache_dir: Path,
    work_dir: Path,
    *,
    melodies: int,
    duration_s: float,
    models: Sequence[str],
    level_variants: Sequence[str] = (),
) -> None:
    """p@5 and robustness of ``models`` (product analyzers), then of the default model's ``level_variants``."""
    specs = instrument_corpus(LEAD_PROGRAMS, melodies, duration_s=duration_s, seed=0)
    paths = cached_corpus(specs, cache_dir / "instrument")
    labels = [spec.lead_program for spec in specs]
    print(f"instrument corpus: {len(LEAD_PROGRAMS)} programs x {melodies} melodies x {duration_s:g} s (TimGM6mb, solo)")
    copies = {
        gain_db: [degrade(p, work_dir / f"{i}_{gain_db:+g}.mp3", gain_db=gain_db) for i, p in enumerate(paths)]
        for gain_db in (-6.0, 6.0)
    }
    results: list[tuple[str, Matrix, dict[float, Matrix]]] = []
    for model in models:
        analyzer = EmbeddingAnalyzer(_settings(work_dir / model, model))
        results.append((model, embed_files(paths, analyzer), {g: embed_files(c, analyzer) for g, c in copies.items()}))
    if level_variants:
        originals = _level_vectors(paths, level_variants)
        degraded = {gain_db: _level_vectors(files, level_variants) for gain_db, files in copies.items()}
        for variant in level_variants:
            label = f"{HARMONIC_MODEL}, level: {variant}"
            results.append((label, originals[variant], {g: d[variant] for g, d in degraded.items()}))
    for label, originals_of, degraded_of in results:
        print(f"{label} precision@5 same instrument: {precision_at_k(originals_of, labels, k=5):.3f}")
        for gain_db, vectors in degraded_of.items():
            rate = nearest_original_rate(originals_of, vectors)
            print(f"{label} MP3 128k + 22.05 kHz + {gain_db:+g} dB: original is nearest neighbour {rate:.1%}")


# --- real music ----------------------------------------------------------------------------------------------------


def loudness_of(path: Path, cache_dir: Path) -> float:
    """The file's integrated loudness (LUFS, the product's BS.1770 analyzer), cached in ``cache_dir``."""
    cached = cache_dir / f"{path.stem}-lufs-v1.npy"
    if not cached.exists():
        result = analyze_file(path, [LoudnessAnalyzer()]).results["loudness"]
        assert isinstance(result, LoudnessResult)
        np.save(cached, np.asarray(result.loudness_lufs, dtype=np.float64))
    return float(np.load(cached))


def real_music(cache_dir: Path, work_dir: Path, *, real_cache: Path, models: Sequence[str], set_name: str) -> None:
    """Same-soundtrack retrieval on real music: the excerpts of ``scripts/bench_tempo_real`` (60 s of up to 11 tracks
    of each Debian game soundtrack of ``set_name``; label: the package). Nothing is fitted: every vector is the
    product's (``models``) or a peer's, L2-normalised, neighbours by cosine among all the other excerpts of the set
    scored. p@1 over every excerpt; p@5 over the excerpts of soundtracks with at least 6 (5 others can share the
    label). ``all`` scores the first set, the second and both together (one vector per excerpt, computed once).

    A reference row ranks neighbours by integrated loudness alone: how much of the label a vector could find from
    the soundtrack's mastering level, which says nothing about how the music sounds."""
    from scripts.bench_tempo_real import SETS, real_tracks, report_sets

    tracks = real_tracks(real_cache, SETS[set_name])
    paths = [track.excerpt for track in tracks]
    representations: dict[str, Matrix] = {}
    for model in models:
        representations[model] = embed_files(paths, EmbeddingAnalyzer(_settings(work_dir / model, model)))
    representations["peer: librosa defaults"] = librosa_features(paths, cache_dir)
    peer = essentia_features(paths, cache_dir)
    if peer is not None:
        representations["peer: Essentia"] = peer
    loudness_lufs = np.asarray([loudness_of(path, cache_dir) for path in paths])
    for name, packages in report_sets(set_name).items():
        chosen = np.asarray([track.package in packages for track in tracks])
        labels = np.asarray([track.package for track in tracks])[chosen]
        sizes = {package: int((labels == package).sum()) for package in packages}
        counted = np.asarray([sizes[label] >= 6 for label in labels])
        chance = float(np.mean([(sizes[label] - 1) / (len(labels) - 1) for label in labels[counted]]))
        shown = [p for p in packages if sizes[p] >= 6]
        print(f"\nreal music, set {name}: {len(labels)} excerpts of 60 s, {len(packages)} soundtracks ({sizes})")
        print(f"p@5 over {counted.sum()}")
        print(f"| representation | p@1 | p@5 | {' | '.join(shown)} |\n|---|---|---|{'---|' * len(shown)}")
        similarities = {}
        for label, matrix in representations.items():
            unit = _unit(np.asarray(matrix, dtype=np.float64)[chosen])
            similarities[label] = unit @ unit.T
        level = loudness_lufs[chosen]
        similarities["reference: integrated loudness alone (nearest LUFS)"] = -np.abs(level[:, None] - level[None, :])
        for label, similarity in similarities.items():
            np.fill_diagonal(similarity, -np.inf)
            order = np.argsort(-similarity, axis=1)
            same = labels[order] == labels[:, None]
            at5 = same[:, :5].mean(axis=1)
            per_package = [f"{at5[labels == p].mean():.2f}" for p in shown]
            print(f"| {label} | {same[:, 0].mean():.3f} | {at5[counted].mean():.3f} | {' | '.join(per_package)} |")
        print(f"chance p@5 (share of same-soundtrack excerpts among the others): {chance:.3f}")


# --- speed ---------------------------------------------------------------------------------------------------------


def _random_weights(directory: Path) -> tuple[Path, WeightsSpec]:
    """A gzipped Keras weights file in the official layer order with random values, and a spec accepting it."""
    rng = np.random.default_rng(0)
    network = OpenL3Mel128()
    h5_path = directory / "random.h5"
    names: list[str] = []
    with h5py.File(h5_path, "w") as h5:
        for index, layer in enumerate(network.keras_layers()):
            name = f"layer_{index}"
            names.append(name)
            group = h5.create_group(name)
            if isinstance(layer, torch.nn.Conv2d):
                out_c, in_c, kh, kw = layer.weight.shape
                weights = {
                    "kernel": rng.normal(0, np.sqrt(2 / (kh * kw * in_c)), (kh, kw, in_c, out_c)),
                    "bias": np.zeros(out_c),
                }
            else:
                n = layer.num_features
                weights = {"gamma": np.ones(n), "beta": np.zeros(n), "moving_mean": np.zeros(n)}
                weights["moving_variance"] = np.ones(n)
            for weight, value in weights.items():
                group.create_dataset(f"{name}/{weight}:0", data=value.astype(np.float32))
            group.attrs["weight_names"] = [f"{name}/{w}:0".encode() for w in weights]
        h5.attrs["layer_names"] = [n.encode() for n in names]
    gz_path = directory / OPENL3_MEL128_MUSIC.filename
    gz_path.write_bytes(gzip.compress(h5_path.read_bytes(), compresslevel=1))
    digest = digest_file(gz_path)
    spec = WeightsSpec(
        model=OPENL3_MEL128_MUSIC.model,
        filename=OPENL3_MEL128_MUSIC.filename,
        url="http://127.0.0.1:9/unused",
        git_blob_sha1=digest.git_blob_sha1,
        sha256=digest.sha256,
        source="random weights for timing",
    )
    return gz_path, spec


def speed(cache_dir: Path, work_dir: Path, *, repeats: int, only: Sequence[str] = ()) -> None:
    track = cached_corpus(tempo_key_corpus(1, duration_s=240.0, seed=7), cache_dir / "speed")[0]
    gz_path, spec = _random_weights(work_dir)
    print(f"speed: one 240 s piece (44.1 kHz stereo FLAC), CPU, torch threads {torch.get_num_threads()}")
    runs: list[tuple[str, str, dict[str, object]]] = [
        ("decode only (no analyzer)", "", {}),
        ("timbre-v1", "timbre-v1", {}),
        (f"{POOL_MODEL}, 4 patches", POOL_MODEL, {"patches_per_track": 4}),
        (f"{POOL_MODEL}, 8 patches", POOL_MODEL, {}),
        (f"{POOL_MODEL}, 16 patches", POOL_MODEL, {"patches_per_track": 16}),
        (f"{HARMONIC_MODEL}, 8 patches", HARMONIC_MODEL, {}),
        (f"{LEVELLED_MODEL}, 8 patches (default)", LEVELLED_MODEL, {}),
        ("openl3-music-mel128-512, 24 windows (random weights)", "openl3-music-mel128-512", {}),
    ]
    print(f"{'model':<56} {'wall s':>7} {'CPU s':>7}")
    for label, model, extra in runs:
        if only and not any(part in label for part in only):
            continue
        analyzers = []
        if model:
            settings = _settings(work_dir / label, model, **extra)
            import_weights(spec, gz_path, settings.model_dir)
            analyzer = EmbeddingAnalyzer(settings, weights=spec)
            analyzer.check()
            analyzers.append(analyzer)
        analyze_file(track, analyzers)  # warm-up
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            analysis = analyze_file(track, analyzers)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            if analyzers and "embedding" not in analysis.results:
                raise RuntimeError(f"{label} failed: {analysis.failures}")
        print(f"{label:<56} {min(walls):>7.2f} {min(cpus):>7.2f}", flush=True)


def main() -> None:
    from scripts.bench_tempo_real import add_set_option

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--parts", default="broad,transfer,quality,speed", help="comma-separated: broad, transfer, quality, speed, real"
    )
    parser.add_argument("--melodies", type=int, default=4, help="melodies per program in the broad corpus")
    parser.add_argument("--duration-s", type=float, default=15.0, help="clip length of the broad corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--representations", default="", help="comma-separated substrings: score only the matching representations"
    )
    parser.add_argument("--speed-runs", default="", help="comma-separated substrings: time only the matching runs")
    parser.add_argument(
        "--quality-models", default=f"timbre-v1,{POOL_MODEL},{LEVELLED_MODEL}", help="models of the quality part"
    )
    parser.add_argument(
        "--feature-groups", default=",".join(FEATURE_GROUPS), help="comma-separated: features of broad and transfer"
    )
    parser.add_argument(
        "--level-variants",
        default=",".join(LEVEL_VARIANTS),
        help="comma-separated level normalisations of the default model (broad, transfer; quality: see below)",
    )
    parser.add_argument(
        "--quality-level", action="store_true", help="quality part: also the default model's --level-variants"
    )
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache/embedding"))
    parser.add_argument(
        "--real-cache-dir", type=Path, default=Path(".bench-cache"), help="real part: bench_tempo_real's cache"
    )
    add_set_option(parser, "--real-set")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    level_variants = [v for v in args.level_variants.split(",") if v]
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if parts & {"broad", "transfer"}:
            broad(args.cache_dir, melodies=args.melodies, duration_s=args.duration_s,
                  score_part="broad" in parts, transfer_part="transfer" in parts,
                  only=[r for r in args.representations.split(",") if r],
                  groups=args.feature_groups.split(","), level_variants=level_variants)  # fmt: skip
        if "quality" in parts:
            quality(args.cache_dir, Path(tmp), melodies=8, duration_s=20.0,
                    models=[m for m in args.quality_models.split(",") if m],
                    level_variants=level_variants if args.quality_level else ())  # fmt: skip
        if "real" in parts:
            real_music(args.cache_dir, Path(tmp), real_cache=args.real_cache_dir,
                       models=[m for m in args.quality_models.split(",") if m], set_name=args.real_set)  # fmt: skip
        if "speed" in parts:
            speed(args.cache_dir, Path(tmp), repeats=args.repeats, only=[r for r in args.speed_runs.split(",") if r])


if __name__ == "__main__":
    main()
