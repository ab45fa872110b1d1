"""Parity of the PyTorch OpenL3 port with the reference Keras model (outside CI; needs a TensorFlow venv).

The reference network is the public ``marl/openl3`` code itself, imported from a copy outside this repository
(its ``setup.py`` downloads weights, so the package is not installed: its module files are imported directly).
The script

1. runs itself with ``--reference`` under the TensorFlow interpreter: builds the reference mel128 audio model
   (``openl3.models._construct_mel128_audio_network``, kapre front end), gives every weight random values (batch
   norm statistics included), saves them with Keras ``save_weights`` as ``.h5``, reloads them through the
   reference ``load_audio_embedding_model_from_path(path, "mel128", 512)`` and embeds a set of test windows;
2. loads the same ``.h5`` into :class:`sidecar.analyzers.embedding.openl3.OpenL3Mel128` through the product's
   converter and embeds the same windows;
3. prints the largest absolute differences of the front end (dB) and of the 512-dim embeddings.

Set-up used (see docs/benchmarks/embedding.md; the TensorFlow venv lives outside the project's venv)::

    python3.11 -m venv /tmp/emb_tf/venv
    /tmp/emb_tf/venv/bin/pip install tensorflow-cpu==2.15.1 h5py librosa==0.10.2.post1 resampy soundfile scikit-learn
    /tmp/emb_tf/venv/bin/pip install --no-deps kapre==0.3.7
    # any copy of marl/openl3's source tree outside this repository (used: main at b0bf9b6, openl3 0.4.2)
    git clone https://github.com/marl/openl3 /tmp/emb_tf/openl3-ref

    python scripts/openl3_parity.py --tf-python /tmp/emb_tf/venv/bin/python --openl3-src /tmp/emb_tf/openl3-ref
"""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

N_SAMPLES = 48000


def _test_windows(seed: int) -> np.ndarray:
    """One-second 48 kHz windows: noise at three levels, a chirp, a harmonic tone, a click train, near-silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(N_SAMPLES) / N_SAMPLES
    chirp = 0.5 * np.sin(2 * np.pi * (50 * t + (8000 - 50) / 2 * t**2))
    harmonic = sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 9))
    clicks = np.zeros(N_SAMPLES)
    clicks[:: N_SAMPLES // 8] = 0.9
    windows = [
        0.1 * rng.standard_normal(N_SAMPLES),
        0.001 * rng.standard_normal(N_SAMPLES),
        np.clip(0.7 * rng.standard_normal(N_SAMPLES), -1, 1),
        chirp,
        harmonic,
        clicks,
        1e-6 * rng.standard_normal(N_SAMPLES),
    ]
    return np.stack(windows).astype(np.float32)


def _import_reference(openl3_src: Path) -> types.ModuleType:
    """``openl3.models`` from a source copy, without running the package's ``__init__`` (it pulls the CLI)."""
    package = types.ModuleType("openl3")
    package.__path__ = [str(openl3_src / "openl3")]
    sys.modules["openl3"] = package
    return importlib.import_module("openl3.models")


def reference(openl3_src: Path, out_dir: Path, seed: int) -> None:
    """Under TensorFlow: random weights -> .h5, reference embeddings and front-end output -> .npy files."""
    import tensorflow as tf

    models = _import_reference(openl3_src)
    tf.keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    network = models._construct_mel128_audio_network(include_frontend=True)
    randomised: list[Any] = []
    for weight in network.weights:
        shape = tuple(weight.shape)
        if "moving_variance" in weight.name:
            randomised.append(rng.uniform(0.5, 2.0, shape))
        elif "kernel" in weight.name:
            randomised.append(rng.normal(0.0, np.sqrt(2.0 / (shape[0] * shape[1] * shape[2])), shape))
        else:
            randomised.append(rng.normal(1.0 if "gamma" in weight.name else 0.0, 0.1, shape))
    network.set_weights([w.astype(np.float32) for w in randomised])
    weights_path = out_dir / "openl3_audio_mel128_music.h5"
    network.save_weights(str(weights_path))
    embedder = models.load_audio_embedding_model_from_path(str(weights_path), "mel128", 512, frontend="kapre")
    windows = np.load(out_dir / "windows.npy")[:, None, :]
    np.save(out_dir / "keras_embeddings.npy", embedder.predict(windows, verbose=0))
    np.save(out_dir / "keras_frontend.npy", embedder.layers[1](windows).numpy())  # the kapre melspectrogram
    n_weighted = sum(1 for layer in network.layers if layer.weights)
    print(f"TensorFlow {tf.__version__}; layers with weights saved: {n_weighted}")


def compare(tf_python: Path, openl3_src: Path, seed: int) -> None:
    import h5py
    import torch

    from sidecar.analyzers.embedding.keras import load_keras_weights
    from sidecar.analyzers.embedding.openl3 import OpenL3Mel128

    with tempfile.TemporaryDirectory() as tmp:
        out_dir = Path(tmp)
        windows = _test_windows(seed)
        np.save(out_dir / "windows.npy", windows)
        command = [str(tf_python), __file__, "--reference", "--openl3-src", str(openl3_src), "--out", tmp]
        subprocess.run([*command, "--seed", str(seed)], check=True)
        weights_path = out_dir / "openl3_audio_mel128_music.h5"
        with h5py.File(weights_path, "r") as h5:
            names = [n.decode() if isinstance(n, bytes) else n for n in h5.attrs["layer_names"]]
        print("layer names in the Keras file:", ", ".join(names))
        network = OpenL3Mel128()
        load_keras_weights(network, weights_path)
        with torch.inference_mode():
            frontend = network.frontend(torch.from_numpy(windows)).numpy()
            embeddings = network(torch.from_numpy(windows)).numpy()
            exact = network.double().frontend(torch.from_numpy(windows).double()).numpy()
        keras_frontend = np.load(out_dir / "keras_frontend.npy")[..., 0]  # (k, 128, 199)
        keras_embeddings = np.load(out_dir / "keras_embeddings.npy")
    frontend_diff = np.abs(frontend[:, 0] - keras_frontend)
    keras_error, torch_error = np.abs(keras_frontend - exact[:, 0]), np.abs(frontend[:, 0] - exact[:, 0])
    diff = np.abs(embeddings - keras_embeddings)
    print(f"windows: {windows.shape[0]} x 1 s (noise at -20/-60/-3 dBFS, chirp, harmonic tone, clicks, 1e-6 noise)")
    print(f"front end (dB, range {keras_frontend.min():.1f}..{keras_frontend.max():.1f}):")
    print(f"  max abs diff {frontend_diff.max():.3g}, mean abs diff {frontend_diff.mean():.3g}")
    print(
        f"  float32 rounding, against the same front end in float64: Keras max {keras_error.max():.3g} dB"
        f" (mean {keras_error.mean():.3g}), PyTorch max {torch_error.max():.3g} dB (mean {torch_error.mean():.3g})"
    )
    for index in range(windows.shape[0]):
        print(
            f"  window {index}: Keras vs PyTorch {frontend_diff[index].max():.3g} dB, Keras vs float64"
            f" {keras_error[index].max():.3g} dB, PyTorch vs float64 {torch_error[index].max():.3g} dB"
        )
    print(f"embeddings ({keras_embeddings.shape[1]}-dim, max |value| {np.abs(keras_embeddings).max():.3g}):")
    print(f"  max abs diff {diff.max():.3g}, mean abs diff {diff.mean():.3g}")
    for index, row in enumerate(diff):
        print(f"  window {index}: max abs diff {row.max():.3g}")
    cosine = np.sum(embeddings * keras_embeddings, axis=1) / (
        np.linalg.norm(embeddings, axis=1) * np.linalg.norm(keras_embeddings, axis=1)
    )
    print(f"  min cosine similarity {cosine.min():.9f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf-python", type=Path, default=Path("/tmp/emb_tf/venv/bin/python"))
    parser.add_argument("--openl3-src", type=Path, default=Path("/tmp/emb_tf/openl3-ref"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference", action="store_true", help="internal: the TensorFlow half")
    parser.add_argument("--out", type=Path, help="internal: exchange directory")
    args = parser.parse_args()
    if args.reference:
        reference(args.openl3_src, args.out, args.seed)
    else:
        compare(args.tf_python, args.openl3_src, args.seed)


if __name__ == "__main__":
    main()
