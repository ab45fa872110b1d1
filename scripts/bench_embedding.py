"""Embedding benchmark: timbre-v1 quality on the full instrument corpus, and CPU time per 4-minute track.

Quality (ground truth from ``sidecar.demo.music.instrument_corpus``: solo pieces, each GM lead program playing
different melodies):

- precision@5 of same-instrument neighbours (cosine) for ``timbre-v1``;
- robustness: every piece re-encoded to MP3 128 kbit/s at 22.05 kHz and shifted -6 dB and +6 dB
  (:func:`sidecar.demo.embedding_eval.degrade`) must find its original as nearest neighbour.

Speed: decode + embed of one rendered 4-minute piece (44.1 kHz stereo FLAC), per model, best of ``--repeats``.
OpenL3 runs on random weights in the official layout (the official file cannot be downloaded here; the network
does the same arithmetic whatever the values), with the default settings (24 one-second windows, batch 32).

    python scripts/bench_embedding.py [--melodies 8] [--duration-s 20] [--repeats 3] [--cache-dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch

from sidecar.analyzers.embedding import EmbeddingAnalyzer
from sidecar.analyzers.embedding.openl3 import OpenL3Mel128
from sidecar.analyzers.embedding.weights import OPENL3_MEL128_MUSIC, WeightsSpec, digest_file, import_weights
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.embedding_eval import degrade, embed_files, nearest_original_rate, precision_at_k
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import LEAD_PROGRAMS, instrument_corpus, tempo_key_corpus
from sidecar.settings import EmbeddingSettings, Settings


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


def _settings(data_dir: Path, model: str) -> Settings:
    embedding = EmbeddingSettings.model_validate({"model": model, "fallback": False, "offline": True, "device": "cpu"})
    return Settings(data_dir=data_dir, embedding=embedding)


def quality(cache_dir: Path, work_dir: Path, *, melodies: int, duration_s: float) -> None:
    specs = instrument_corpus(LEAD_PROGRAMS, melodies, duration_s=duration_s, seed=0)
    paths = cached_corpus(specs, cache_dir)
    analyzer = EmbeddingAnalyzer(_settings(work_dir, "timbre-v1"))
    originals = embed_files(paths, analyzer)
    labels = [spec.lead_program for spec in specs]
    print(f"instrument corpus: {len(LEAD_PROGRAMS)} programs x {melodies} melodies x {duration_s:g} s")
    print(f"timbre-v1 precision@5 same instrument: {precision_at_k(originals, labels, k=5):.3f}")
    print(f"timbre-v1 precision@1 same instrument: {precision_at_k(originals, labels, k=1):.3f}")
    for gain_db in (-6.0, 6.0):
        variants = [degrade(p, work_dir / f"{i}_{gain_db:+g}.mp3", gain_db=gain_db) for i, p in enumerate(paths)]
        rate = nearest_original_rate(originals, embed_files(variants, analyzer))
        print(f"timbre-v1 MP3 128k + 22.05 kHz + {gain_db:+g} dB: original is nearest neighbour {rate:.1%}")


def speed(cache_dir: Path, work_dir: Path, *, repeats: int) -> None:
    track = cached_corpus(tempo_key_corpus(1, duration_s=240.0, seed=7), cache_dir)[0]
    gz_path, spec = _random_weights(work_dir)
    print(f"speed: one 240 s piece (44.1 kHz stereo FLAC), CPU, torch threads {torch.get_num_threads()}")
    for model in ("timbre-v1", "openl3-music-mel128-512"):
        settings = _settings(work_dir / model, model)
        import_weights(spec, gz_path, settings.model_dir)
        analyzer = EmbeddingAnalyzer(settings, weights=spec)
        analyzer.check()
        analyze_file(track, [analyzer])  # warm-up: loads the network
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            analysis = analyze_file(track, [analyzer])
            times.append(time.perf_counter() - start)
            if analyzer.name not in analysis.results:
                raise RuntimeError(f"{model} failed: {analysis.failures}")
        windows = f", {settings.embedding.windows_per_track} windows" if model != "timbre-v1" else ""
        print(f"{model}: {min(times):.2f} s per 4-min track (decode + embed, best of {repeats}{windows})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--melodies", type=int, default=8, help="melodies per instrument program")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cache-dir", type=Path, default=Path(".pytest_cache/d/corpus"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        speed(args.cache_dir, Path(tmp), repeats=args.repeats)
        quality(args.cache_dir, Path(tmp), melodies=args.melodies, duration_s=args.duration_s)


if __name__ == "__main__":
    main()
