"""Parity of the PyTorch MusiCNN port with the TensorFlow reference (outside CI; needs a TensorFlow venv).

The reference is the ``musicnn`` package's own code and checkpoint (``musicnn.extractor.extractor(file,
model=CHECKPOINT)``, ``--model MSD_musicnn`` (default) or ``MTT_musicnn``: librosa log-mel, TensorFlow 1 graph
through ``tf.compat.v1``). The script

1. writes test clips as 16 kHz float WAV files (noise at two levels, a chirp, a harmonic tone, a click train,
   near-silence, and three rendered demo pieces of different instruments), so both sides read the same samples;
2. runs itself with ``--reference`` under the TensorFlow interpreter: the reference log-mel
   (``musicnn.extractor.batch_data``) and, per 3-second patch, the taggram, ``max_pool``, ``mean_pool`` and
   ``penultimate`` features;
3. computes the same with :class:`sidecar.analyzers.embedding.musicnn.MusicnnNetwork` (whole-track log-mel with
   centring, the same non-overlapping 187-frame patches) and weights read by the product's checkpoint reader;
4. prints, per output, the largest absolute difference and the smallest cosine similarity over all patches.

``penultimate`` is compared on each clip's first patch only: after the first batch, ``musicnn`` 0.1.0's
``extractor`` appends the first batch's ``penultimate_`` again instead of the current one (``backend_``), so its
later rows are copies of the first (``max_pool``, ``mean_pool`` and the taggram are appended correctly).

Set-up used (see docs/benchmarks/embedding.md; the TensorFlow venv lives outside the project's venv)::

    python3.11 -m venv /tmp/musicnn_tf/venv
    /tmp/musicnn_tf/venv/bin/pip install tensorflow-cpu==2.15.1 librosa==0.10.2.post1 soundfile
    /tmp/musicnn_tf/venv/bin/pip install --no-deps musicnn==0.1.0

    python scripts/musicnn_parity.py --tf-python /tmp/musicnn_tf/venv/bin/python [--model MTT_musicnn]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

RATE_HZ = 16000
OUTPUTS = ("tags", "max_pool", "mean_pool", "penultimate")


def _test_clips(seed: int) -> dict[str, np.ndarray]:
    """Ten-second 16 kHz clips: synthetic edge cases and three rendered demo pieces."""
    from sidecar.demo.music import LEAD_PROGRAMS, instrument_corpus, render

    rng = np.random.default_rng(seed)
    n = 10 * RATE_HZ
    t = np.arange(n) / RATE_HZ
    clicks = np.zeros(n)
    clicks[:: RATE_HZ // 4] = 0.9
    clips = {
        "noise": 0.1 * rng.standard_normal(n),
        "quiet-noise": 0.001 * rng.standard_normal(n),
        "chirp": 0.5 * np.sin(2 * np.pi * (50 * t + (7000 - 50) / 20 * t**2)),
        "harmonic": sum(0.3 / k * np.sin(2 * np.pi * 220 * k * t) for k in range(1, 9)),
        "clicks": clicks,
        "near-silence": 1e-6 * rng.standard_normal(n),
    }
    specs = instrument_corpus(LEAD_PROGRAMS[:3], 1, duration_s=10.0, seed=seed)
    for spec in specs:
        clips[f"piece-program-{spec.lead_program}"] = render(spec, sample_rate_hz=RATE_HZ).mean(axis=1)
    return {name: np.clip(clip, -1.0, 1.0).astype(np.float32) for name, clip in clips.items()}


def reference(wav_dir: Path, out: Path, checkpoint: str) -> None:
    """Under the TensorFlow interpreter: reference log-mel and per-patch outputs of every WAV in ``wav_dir``."""
    from musicnn import configuration
    from musicnn.extractor import batch_data, extractor

    results: dict[str, Any] = {}
    for wav in sorted(wav_dir.glob("*.wav")):
        _, mel = batch_data(str(wav), 187, 187)
        taggram, _, features = extractor(str(wav), model=checkpoint, input_length=3, extract_features=True)
        results[f"{wav.stem}/mel"] = mel
        results[f"{wav.stem}/tags"] = taggram
        for name in OUTPUTS[1:]:
            results[f"{wav.stem}/{name}"] = features[name]
    results["labels"] = np.array(configuration.MSD_LABELS if checkpoint.startswith("MSD") else configuration.MTT_LABELS)
    np.savez(out, **results)


def _cosine_min(a: np.ndarray, b: np.ndarray) -> float:
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return float(np.min(np.sum(a * b, axis=1) / np.maximum(norms, 1e-30)))


def compare(tf_python: str, checkpoint: str) -> None:
    import soundfile
    import torch

    from sidecar.analyzers.embedding.musicnn import MSD_TAGS, MTT_TAGS, PATCH_FRAMES, MusicnnNetwork
    from sidecar.analyzers.embedding.musicnn_weights import load_network

    clips = _test_clips(seed=3)
    network: MusicnnNetwork = load_network(None, checkpoint)
    with tempfile.TemporaryDirectory() as tmp:
        wav_dir = Path(tmp)
        for name, clip in clips.items():
            soundfile.write(wav_dir / f"{name}.wav", clip, RATE_HZ, subtype="FLOAT")
        out = wav_dir / "reference.npz"
        subprocess.run([tf_python, __file__, "--reference", str(wav_dir), str(out), checkpoint], check=True)
        ref = dict(np.load(out))
    if tuple(str(label) for label in ref["labels"]) != (MSD_TAGS if checkpoint.startswith("MSD") else MTT_TAGS):
        raise SystemExit("tag names differ from the reference's labels")
    worst: dict[str, tuple[float, float]] = {}
    print(f"{'clip':<22} {'mel max|d|':>11} " + " ".join(f"{n + ' max|d|':>19} {'min cos':>8}" for n in OUTPUTS))
    for name, clip in clips.items():
        with torch.inference_mode():
            mel = network.logmel(torch.from_numpy(clip)[None], center=True)[0]
            n_patches = (mel.shape[0] - PATCH_FRAMES) // PATCH_FRAMES + 1
            patches = torch.stack([mel[i * PATCH_FRAMES : (i + 1) * PATCH_FRAMES] for i in range(n_patches)])
            port = network(patches)
        mel_diff = float(np.max(np.abs(mel.numpy() - ref[f"{name}/mel"])))
        row = [f"{name:<22} {mel_diff:>11.2e}"]
        for output in OUTPUTS:
            ours, theirs = getattr(port, output).numpy().astype(np.float64), ref[f"{name}/{output}"].astype(np.float64)
            if output == "penultimate":  # the reference repeats the first patch's (see the module docstring)
                ours, theirs = ours[:1], theirs[:1]
            diff, cos = float(np.max(np.abs(ours - theirs))), _cosine_min(ours, theirs)
            row.append(f"{diff:>19.2e} {cos:>8.6f}")
            old = worst.get(output, (0.0, 1.0))
            worst[output] = (max(old[0], diff), min(old[1], cos))
        print(" ".join(row))
    print("overall (all clips, all 3-s patches):")
    for output, (diff, cos) in worst.items():
        print(f"  {output:<12} max abs difference {diff:.2e}   min cosine {cos:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tf-python", help="interpreter of the TensorFlow venv with musicnn installed")
    parser.add_argument("--model", default="MSD_musicnn", choices=("MSD_musicnn", "MTT_musicnn"))
    parser.add_argument("--reference", nargs=3, metavar=("WAV_DIR", "OUT_NPZ", "MODEL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference:
        reference(Path(args.reference[0]), Path(args.reference[1]), args.reference[2])
    elif args.tf_python:
        compare(args.tf_python, args.model)
    else:
        parser.error("--tf-python is required")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
