"""Embedding benchmark: which model finds same-instrument neighbours, scored on held-out data, and its cost.

Parts (``--parts``, default all):

``broad``: the broad similarity corpus (:func:`sidecar.demo.embedding_eval.broad_corpus`): 14 GM programs x
``--melodies`` melodies x every soundfont found (TimGM6mb from ``pretty_midi``; Debian's ``fluid-soundfont-gm`` and
``musescore-general-soundfont-small`` when installed), solo / accompanied / band arrangements, random level,
reverb, chorus and spectral tilt per clip. Label: the lead program. Every clip is a query once; its 5 nearest
others (cosine, among all clips) are scored. Representations with fitted parts (standardisation, PCA whitening,
concatenation weight) are fitted without the query's fold: **leave-one-melody-out** (fit on the other melodies)
and **leave-one-soundfont-out** (fit on the other soundfonts). Printed: precision@5 per program and overall.

``quality``: the older instrument corpus (12 lead programs x 8 melodies x 20 s, TimGM6mb, solo) and robustness
(each piece re-encoded to MP3 128 kbit/s at 22.05 kHz, -6 / +6 dB, must find its original as nearest neighbour),
for ``timbre-v1`` and the default MusiCNN model.

``speed``: decode + embed of one rendered 4-minute piece (44.1 kHz stereo FLAC), per model, best of
``--repeats``: wall time and process CPU time. OpenL3 runs on random weights in the official layout (the official
file cannot be downloaded here; the network does the same arithmetic whatever the values).

Rendered clips and per-clip features are cached under ``--cache-dir`` (default ``.bench-cache/embedding``).

    python scripts/bench_embedding.py [--parts broad,quality,speed] [--melodies 4] [--duration-s 15] [--repeats 3]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import h5py
import numpy as np
import torch

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.embedding import EmbeddingAnalyzer
from sidecar.analyzers.embedding.analyzer import TimbreSession, resolve_device
from sidecar.analyzers.embedding.musicnn_model import POOL_MODEL, MusicnnModel, MusicnnSession
from sidecar.analyzers.embedding.openl3 import OpenL3Mel128
from sidecar.analyzers.embedding.weights import OPENL3_MEL128_MUSIC, WeightsSpec, digest_file, import_weights
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
from sidecar.settings import EmbeddingSettings, Settings

Matrix = np.ndarray
Fit = Callable[[dict[str, Matrix], np.ndarray], Matrix]  # (features, train mask) -> vectors of all clips

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
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


# --- features ------------------------------------------------------------------------------------------------------


def clip_features(paths: Sequence[Path], cache_dir: Path, model: MusicnnModel) -> dict[str, Matrix]:
    """Per clip: ``timbre-v1`` and the MusiCNN layers (means over the clip's patches), one decode per clip."""
    rows: dict[str, list[np.ndarray]] = {}
    for i, path in enumerate(paths):
        cached = cache_dir / f"{path.stem}-features-v1.npz"
        if not cached.exists():
            with AudioReader(path) as reader:
                timbre = TimbreSession()
                musicnn = MusicnnSession(model, reader.info, model_name=POOL_MODEL, patches_per_track=64)
                for block in reader.blocks():
                    timbre.feed(block)
                    musicnn.feed(block)
                np.savez(cached, **{"timbre-v1": timbre.finish().vector}, **musicnn.layers())
            if i % 20 == 0:
                print(f"  features {i + 1}/{len(paths)}", flush=True)
        with np.load(cached) as data:
            for name in data.files:
                rows.setdefault(name, []).append(data[name])
    return {name: np.stack(values).astype(np.float64) for name, values in rows.items()}


# --- representations -----------------------------------------------------------------------------------------------


def raw(name: str) -> Fit:
    return lambda features, train: _unit(features[name])


def _standardise(x: Matrix, train: np.ndarray) -> Matrix:
    mean, std = x[train].mean(axis=0), x[train].std(axis=0)
    return (x - mean) / np.where(std > 1e-9, std, 1.0)


def standardised(name: str) -> Fit:
    return lambda features, train: _unit(_standardise(features[name], train))


def whitened(name: str, *, variance: float = 0.95) -> Fit:
    """PCA fitted on the training clips, components up to ``variance`` of the variance, each scaled to unit variance."""

    def fit(features: dict[str, Matrix], train: np.ndarray) -> Matrix:
        x = features[name]
        mean = x[train].mean(axis=0)
        _, s, vt = np.linalg.svd(x[train] - mean, full_matrices=False)
        share = np.cumsum(s**2) / np.sum(s**2)
        k = int(np.searchsorted(share, variance)) + 1
        scale = s[:k] / np.sqrt(max(int(train.sum()) - 1, 1))
        return _unit(((x - mean) @ vt[:k].T) / scale)

    return fit


def concatenated(first: str, second: str, labels: np.ndarray, *, whiten: bool = False) -> Fit:
    """Standardised ``first`` and ``second`` (each L2-normalised), ``second`` weighted by w; w from a grid, chosen
    by precision@5 among the training clips only (queries and neighbours both from the training part)."""

    def fit(features: dict[str, Matrix], train: np.ndarray) -> Matrix:
        a = _unit(_standardise(features[first], train))
        b = _unit(_standardise(features[second], train))
        best_w, best_p = 0.0, -1.0
        for w in np.linspace(0.0, 1.5, 16):
            z = _unit(np.hstack([a, w * b]))
            p = precision_at_k(z[train], labels[train], k=5)
            if p > best_p + 1e-9:
                best_w, best_p = float(w), p
        z = np.hstack([a, best_w * b])
        return whitened("z")({"z": z}, train) if whiten else _unit(z)

    return fit


def held_out_precision(
    fit: Fit, features: dict[str, Matrix], labels: np.ndarray, folds: np.ndarray
) -> tuple[float, dict[int, float]]:
    """precision@5 of every clip as a query, the representation fitted without the query's fold; overall and per
    label."""
    hits = np.zeros(labels.shape[0])
    for fold in np.unique(folds):
        held = folds == fold
        z = fit(features, ~held)
        similarity = z @ z.T
        np.fill_diagonal(similarity, -np.inf)
        neighbours = np.argsort(-similarity[held], axis=1)[:, :5]
        hits[held] = (labels[neighbours] == labels[held][:, None]).mean(axis=1)
    per_label = {int(label): float(hits[labels == label].mean()) for label in np.unique(labels)}
    return float(hits.mean()), per_label


def broad(cache_dir: Path, *, melodies: int, duration_s: float) -> None:
    fonts = {"timgm6mb": soundfont_path(), **{n: p for n, p in DEBIAN_SOUNDFONTS.items() if p.exists()}}
    clips = broad_corpus(list(fonts), melodies=melodies, duration_s=duration_s, seed=0)
    print(f"broad corpus: {len(EVAL_PROGRAMS)} programs x {melodies} melodies x {len(fonts)} soundfonts "
          f"({', '.join(fonts)}) x {duration_s:g} s = {len(clips)} clips", flush=True)  # fmt: skip
    paths = cached_clips(clips, fonts, cache_dir / "broad")
    musicnn = MusicnnModel(model_dir=None, device=resolve_device("cpu"), batch_size=8)
    features = clip_features(paths, cache_dir / "broad", musicnn)
    labels = np.array([clip.program for clip in clips])
    by_melody = np.array([clip.melody for clip in clips])
    by_font = np.array([clip.soundfont for clip in clips])
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
    }
    header = f"{'representation':<44} {'dims':>5} {'LOMO p@5':>9} {'LOSO p@5':>9}"
    per_program_rows: list[str] = []
    print(header)
    for name, (fit, dims) in representations.items():
        lomo, per_label = held_out_precision(fit, features, labels, by_melody)
        loso, _ = held_out_precision(fit, features, labels, by_font) if len(fonts) > 1 else (float("nan"), {})
        print(f"{name:<44} {dims:>5} {lomo:>9.3f} {loso:>9.3f}", flush=True)
        per_program_rows.append(f"{name[:44]:<44} " + " ".join(f"{per_label[p]:>5.2f}" for p in EVAL_PROGRAMS))
    print("precision@5 per program (leave-one-melody-out):")
    print(f"{'':<44} " + " ".join(f"{PROGRAM_NAMES[p][:5]:>5}" for p in EVAL_PROGRAMS))
    for row in per_program_rows:
        print(row)


# --- the older corpus and robustness -------------------------------------------------------------------------------


def quality(cache_dir: Path, work_dir: Path, *, melodies: int, duration_s: float, models: Sequence[str]) -> None:
    specs = instrument_corpus(LEAD_PROGRAMS, melodies, duration_s=duration_s, seed=0)
    paths = cached_corpus(specs, cache_dir / "instrument")
    labels = [spec.lead_program for spec in specs]
    print(f"instrument corpus: {len(LEAD_PROGRAMS)} programs x {melodies} melodies x {duration_s:g} s (TimGM6mb, solo)")
    for model in models:
        analyzer = EmbeddingAnalyzer(_settings(work_dir / model, model))
        originals = embed_files(paths, analyzer)
        print(f"{model} precision@5 same instrument: {precision_at_k(originals, labels, k=5):.3f}")
        for gain_db in (-6.0, 6.0):
            variants = [degrade(p, work_dir / f"{i}_{gain_db:+g}.mp3", gain_db=gain_db) for i, p in enumerate(paths)]
            rate = nearest_original_rate(originals, embed_files(variants, analyzer))
            print(f"{model} MP3 128k + 22.05 kHz + {gain_db:+g} dB: original is nearest neighbour {rate:.1%}")


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


def speed(cache_dir: Path, work_dir: Path, *, repeats: int) -> None:
    track = cached_corpus(tempo_key_corpus(1, duration_s=240.0, seed=7), cache_dir / "speed")[0]
    gz_path, spec = _random_weights(work_dir)
    print(f"speed: one 240 s piece (44.1 kHz stereo FLAC), CPU, torch threads {torch.get_num_threads()}")
    runs: list[tuple[str, str, dict[str, object]]] = [
        ("decode only (no analyzer)", "", {}),
        ("timbre-v1", "timbre-v1", {}),
        (f"{POOL_MODEL}, 4 patches", POOL_MODEL, {"patches_per_track": 4}),
        (f"{POOL_MODEL}, 8 patches (default)", POOL_MODEL, {}),
        (f"{POOL_MODEL}, 16 patches", POOL_MODEL, {"patches_per_track": 16}),
        ("openl3-music-mel128-512, 24 windows (random weights)", "openl3-music-mel128-512", {}),
    ]
    print(f"{'model':<56} {'wall s':>7} {'CPU s':>7}")
    for label, model, extra in runs:
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="broad,quality,speed", help="comma-separated: broad, quality, speed")
    parser.add_argument("--melodies", type=int, default=4, help="melodies per program in the broad corpus")
    parser.add_argument("--duration-s", type=float, default=15.0, help="clip length of the broad corpus")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quality-models", default=f"timbre-v1,{POOL_MODEL}", help="models of the quality part")
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache/embedding"))
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if "broad" in parts:
            broad(args.cache_dir, melodies=args.melodies, duration_s=args.duration_s)
        if "quality" in parts:
            quality(args.cache_dir, Path(tmp), melodies=8, duration_s=20.0, models=args.quality_models.split(","))
        if "speed" in parts:
            speed(args.cache_dir, Path(tmp), repeats=args.repeats)


if __name__ == "__main__":
    main()
