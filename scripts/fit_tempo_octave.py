"""Fit the shipped tempo octave model and print it as the ``DEFAULT_MODEL`` block of
``sidecar/analyzers/tempo_octave.py``.

The fitting set is the whole rhythm corpus (``sidecar.demo.rhythm_corpus``: 15 style families, four soundfonts) plus
``--demo-pieces`` pieces of the demo corpus (``tempo_key_corpus`` with seed 1, so the seed-0 pieces the unit tests
score are not in it) plus, with ``--real-cache-dir``, the real excerpts of ``scripts/bench_tempo_real`` (both package
sets) where Essentia and tempo-CNN agree, labelled with Essentia's tempo and counted ``--real-weight`` times (tempo
version 6). How well the method generalises is measured leave-one-family-out by ``scripts/bench_tempo.py`` and, with
the real excerpts, one package set held out at a time by ``scripts/bench_tempo_realfit.py``; this script only makes
the shipped weights reproducible.

Usage (the real excerpts and their peer estimates must be in the cache: run ``bench_tempo_real`` once)::

    python -m scripts.fit_tempo_octave --demo-pieces 96 --real-cache-dir /work/bench-cache > /tmp/default_model.txt
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from scripts.bench_tempo_real import SETS, agreed_tempi, tempo_features
from sidecar.analyzers.audio import read_mono
from sidecar.analyzers.tempo import ClipFeatures, fit_octave, mono_features
from sidecar.analyzers.tempo_octave import OctaveModel
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus
from sidecar.demo.rhythm_corpus import DEFAULT_CACHE_DIR, cached_clip_paths, load_mono, rhythm_corpus


def _tuple(name: str, values: tuple[float, ...]) -> str:
    body = textwrap.fill(", ".join(f"{v:.4g}" for v in values), 108, initial_indent=" " * 8, subsequent_indent=" " * 8)
    return f"    {name}=(\n{body},\n    ),"


def render(model: OctaveModel) -> str:
    """``model`` as Python source for ``DEFAULT_MODEL``."""
    return "\n".join(
        [
            "DEFAULT_MODEL = OctaveModel(",
            _tuple("weights", model.weights),
            _tuple("means", model.means),
            _tuple("scales", model.scales),
            f"    min_regularity={model.min_regularity:.4g},",
            ")",
        ]
    )


def fitting_set(demo_pieces: int) -> tuple[list[tuple[Path, float]], list[tuple[Path, float]]]:
    """The files the shipped weights are fitted on, each with its true BPM: the rhythm corpus's clips and
    ``demo_pieces`` demo-corpus pieces (20 s, seed 1; none for 0), rendering those not cached yet."""
    clips = rhythm_corpus()
    specs = tempo_key_corpus(demo_pieces, duration_s=20.0, seed=1) if demo_pieces else []
    demo_paths = cached_corpus(specs, Path(DEFAULT_CACHE_DIR) / "demo")
    return (
        [(path, clip.bpm) for clip, path in zip(clips, cached_clip_paths(clips), strict=True)],
        [(path, spec.bpm) for spec, path in zip(specs, demo_paths, strict=True)],
    )


def generated_examples(demo_pieces: int) -> list[tuple[str, ClipFeatures, float]]:
    """The generated part of the fit, each example with its group (the clip's rhythm-corpus family, or ``demo``),
    its features (the clips read by ``load_mono``, as the shipped weights were fitted) and its true BPM."""
    clips, pieces = fitting_set(demo_pieces)
    families = [clip.family for clip in rhythm_corpus()]
    examples = [
        (family, mono_features(load_mono(path)), bpm) for family, (path, bpm) in zip(families, clips, strict=True)
    ]
    return examples + [("demo", mono_features(read_mono(path)), bpm) for path, bpm in pieces]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--demo-pieces", type=int, default=96, help="demo-corpus pieces (20 s, seed 1) added to the fit"
    )
    parser.add_argument("--real-cache-dir", type=Path, help="bench_tempo_real's cache: add its agreed excerpts")
    parser.add_argument("--real-weight", type=int, default=1, help="times each real excerpt counts (default 1)")
    args = parser.parse_args()
    generated = generated_examples(args.demo_pieces)
    examples = [(features, bpm) for _, features, bpm in generated]
    real = agreed_tempi(args.real_cache_dir, SETS["all"]) if args.real_cache_dir is not None else []
    examples += [(tempo_features(track.excerpt), bpm) for track, bpm in real] * args.real_weight
    pieces = sum(group == "demo" for group, _, _ in generated)
    print(
        f"# fitted on {len(generated) - pieces} rhythm-corpus clips, {pieces} demo pieces and {len(real)} real"
        f" excerpts (each counted {args.real_weight} times)"
    )
    print(render(fit_octave(examples)))


if __name__ == "__main__":
    main()
