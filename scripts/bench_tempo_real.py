"""Tempo and key on real recordings: free game and demo soundtracks that Debian packages ship.

Steps (all repeatable, everything under ``--cache-dir``, nothing installed system-wide):

1. ``apt-get download`` the packages of ``--set`` (:data:`PACKAGES`, the first set; :data:`PACKAGES_MORE`, the
   second; or both, the default) and extract them with ``dpkg-deb -x``.
2. Take up to ``--per-package`` music files (Ogg/FLAC/MP3/WAV of at least 40 s, sound effects left out) from each,
   and cut a ``--excerpt-s`` excerpt (from 20 s in, or the middle of shorter files) to 44.1 kHz stereo FLAC, so every
   estimator hears the same audio. Files are decoded by the product's decoder, so every file ``sonantica analyze``
   reads is in the set (including Ogg Vorbis files the bundled FFmpeg refuses and libsndfile reads).
3. Estimate: sonantica (the product path: decoder blocks into the tempo and key analyzers), Essentia
   ``RhythmExtractor2013(method="multifeature")`` and ``KeyExtractor()`` (defaults), and tempo-CNN (Schreiber &
   Mueller, the ``tempocnn`` package and its ``cnn`` model, run in its own virtual environment because it needs
   TensorFlow: ``--setup-tempocnn`` creates it). Peer estimates are cached.
4. The reference set is the tracks where Essentia and tempo-CNN agree within 4 %; sonantica's Acc1 and Acc2 against
   Essentia are reported on it (and on all tracks), key agreement with Essentia on every track, and every
   disagreement is listed. With ``--set all`` every table is printed for the first set, the second and both
   together (the disagreements once, under each set).

Usage (from the repository root)::

    python -m scripts.bench_tempo_real --setup-tempocnn     # once: creates .bench-cache/venv-tempocnn (TensorFlow)
    python -m scripts.bench_tempo_real                      # --set first|more|all (default all)
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.key import KeyAnalyzer
from sidecar.analyzers.tempo import ClipFeatures, TempoAnalyzer
from sidecar.analyzers.tempo_octave import OctaveModel
from sidecar.demo.encode import write_audio
from sidecar.demo.evaluation import mirex_key_score, tempo_within, tempo_within_octave
from sidecar.domain import KeyResult, KeySignature, TempoResult
from sidecar.errors import AudioDecodeError

PACKAGES: tuple[str, ...] = (
    "singularity-music",
    "asc-music",
    "hyperrogue-music",
    "drascula-music",
    "warzone2100-music",
    "planetblupi-music-ogg",
    "extremetuxracer-data",
    "lincity-ng-data",
)
"""The first set: Debian packages with free game soundtracks (electronic, ambient, rock, orchestral, adventure,
chiptune-like)."""
PACKAGES_MORE: tuple[str, ...] = (
    "supertux-data",
    "hedgewars-data",
    "xmoto-data",
    "freedroidrpg-data",
    "openclonk-data",
    "wesnoth-1.16-music",
    "megaglest-data",
    "naev-data",
)
"""The second set, disjoint from the first and chosen from package listings before any estimate was made on it:
chiptune and pop (supertux), styled pop, rock and world pastiches (hedgewars), electronic and rock (xmoto),
electronic and industrial (freedroidrpg), mixed instrumental (openclonk), orchestral and folk (wesnoth, megaglest),
space ambient, orchestral and electronic (naev). Each ships its music as plain files in a folder of its own."""
PACKAGES_THIRD: tuple[str, ...] = (
    "fillets-ng-data",
    "flare-game",
    "frozen-bubble-data",
    "holotz-castle-data",
    "scorched3d-data",
    "warmux-data",
    "lugaru-data",
    "btanks-data",
    "widelands-data",
)
"""The third set, kept out of every fit (tempo version 6 fits on the first two): of 25 game-data packages whose
listings were read (2026-12-08, before any estimate; picked by name from the archive, the three largest candidates,
supertuxkart-data, 0ad-data and redeclipse-data, 0.6-1.4 GB, not downloaded), every one with at least three music
files of over 300 kB outside ``sounds/`` and ``sfx/`` folders; the other 16 had fewer (tracker modules, MIDI, sound
effects only, or music under ``sounds/``)."""

SETS: dict[str, tuple[str, ...]] = {
    "first": PACKAGES,
    "more": PACKAGES_MORE,
    "all": PACKAGES + PACKAGES_MORE,
    "third": PACKAGES_THIRD,
}
"""The package sets a run can take (``--set``); ``all`` is the first two (the sets tempo version 6 is fitted on),
``third`` the held-out one."""
SUFFIXES = (".ogg", ".flac", ".mp3", ".wav", ".opus")
PER_PACKAGE = 11
"""Music files taken per package by default: every track of the earlier 8-per-package set (hyperrogue's first 8 that
FFmpeg reads) and the 3 hyperrogue files only libsndfile reads."""
EXCERPT_RATE_HZ = 44100
TEMPOCNN_VERSION = "0.0.8"
_TEMPOCNN_RUNNER = """
import json, sys
from tempocnn.classifier import TempoClassifier
from tempocnn.feature import read_features
classifier = TempoClassifier(sys.argv[1])
for path in sys.argv[2:]:
    print(json.dumps([path, float(classifier.estimate_tempo(read_features(path), interpolate=False))]), flush=True)
"""


@dataclass
class Track:
    package: str
    source: Path
    excerpt: Path


def fetch_packages(cache: Path, packages: Sequence[str]) -> Path:
    """Download and extract ``packages`` (those not extracted yet) under ``cache/real``; return the root."""
    root = (cache / "real" / "root").resolve()
    debs = cache / "real" / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    root.mkdir(parents=True, exist_ok=True)
    wanted = [p for p in packages if not list(debs.glob(f"{p}_*.deb"))]
    if wanted:
        subprocess.run(["apt-get", "download", *wanted], cwd=debs, check=True)
    for package in packages:
        stamp = root / f".{package}.extracted"
        if not stamp.exists():
            (deb,) = debs.glob(f"{package}_*.deb")
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
            stamp.touch()
    return root


def _package_files(root: Path, deb: Path) -> list[Path]:
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], check=True, capture_output=True, text=True).stdout
    files = []
    for line in listing.splitlines():
        if not line.startswith("-") or " ./" not in line:
            continue  # folders and links
        name = line[line.index(" ./") + 1 :]
        if name.lower().endswith(SUFFIXES) and "/sounds/" not in name and "/sfx/" not in name:
            files.append(root / name.removeprefix("./"))
    return sorted(files)


def _decode_stereo(path: Path) -> npt.NDArray[np.float32]:
    """The whole file as float32 stereo at 44.1 kHz, shape (n, 2).

    Decoded by the product's decoder (:class:`AudioReader`, the path ``sonantica analyze`` takes, so a file the
    bundled FFmpeg refuses is read by libsndfile as the product reads it), then converted by FFmpeg's resampler.
    Raises :class:`AudioDecodeError` for a file the product cannot read either.
    """
    chunks: list[npt.NDArray[Any]] = []  # float32 ("flt"); PyAV types to_ndarray as any sample format
    resampler = av.AudioResampler(format="flt", layout="stereo", rate=EXCERPT_RATE_HZ)
    with AudioReader(path) as reader:
        layout = av.AudioLayout(f"{reader.info.channels}c")  # FFmpeg's default layout for that many channels
        for block in reader.blocks():
            frame = av.AudioFrame.from_ndarray(block.native, format="fltp", layout=layout)
            frame.sample_rate = reader.info.sample_rate_hz
            chunks.extend(out.to_ndarray().reshape(-1, 2) for out in resampler.resample(frame))
    chunks.extend(out.to_ndarray().reshape(-1, 2) for out in resampler.resample(None))
    return np.concatenate(chunks) if chunks else np.zeros((0, 2), np.float32)


MIN_SOURCE_S = 40.0
"""Shorter files (jingles, stingers) are left out."""


def _cut(source: Path, excerpt: Path, excerpt_s: float) -> bool:
    """Write ``excerpt_s`` of ``source`` (from 20 s in, or from the middle of a shorter file) to ``excerpt`` as
    44.1 kHz stereo FLAC. ``False``, and nothing written, for a file under :data:`MIN_SOURCE_S` or one the product's
    decoder cannot read (the reason is printed). A file whose header gives a duration under :data:`MIN_SOURCE_S` is
    not decoded at all (FFmpeg's resampler refuses some tiny sound-effect WAVs with "Cannot allocate memory")."""
    try:
        with AudioReader(source) as reader:
            header_s = reader.info.duration_s
        if header_s is not None and header_s < MIN_SOURCE_S:
            return False
        audio = _decode_stereo(source)
    except AudioDecodeError as error:
        print(f"skipped {source}: {error}")
        return False
    duration_s = audio.shape[0] / EXCERPT_RATE_HZ
    if duration_s < MIN_SOURCE_S:
        return False
    start_s = min(20.0, max(0.0, (duration_s - excerpt_s) / 2))
    start = round(start_s * EXCERPT_RATE_HZ)
    write_audio(audio[start : start + round(excerpt_s * EXCERPT_RATE_HZ)], EXCERPT_RATE_HZ, excerpt)
    return True


def cut_excerpts(cache: Path, root: Path, packages: Sequence[str], per_package: int, excerpt_s: float) -> list[Track]:
    """Up to ``per_package`` excerpts of each package's music (cut once, then read from ``cache``)."""
    folder = cache / "real" / f"excerpts-{excerpt_s:g}s"
    folder.mkdir(parents=True, exist_ok=True)
    tracks = []
    for package in packages:
        (deb,) = (cache / "real" / "debs").glob(f"{package}_*.deb")
        taken = 0
        for source in _package_files(root, deb):
            if taken >= per_package:
                break
            excerpt = folder / f"{package}--{source.stem}.flac"
            if excerpt.exists() or _cut(source, excerpt, excerpt_s):
                tracks.append(Track(package, source, excerpt))
                taken += 1
    return tracks


def real_tracks(cache: Path, packages: Sequence[str], excerpt_s: float = 60.0) -> list[Track]:
    """The benchmark's excerpts of ``packages`` (:data:`PER_PACKAGE` each), fetching and cutting what is missing."""
    return cut_excerpts(cache, fetch_packages(cache, packages), packages, PER_PACKAGE, excerpt_s)


def report_sets(name: str) -> dict[str, tuple[str, ...]]:
    """The sets a run over :data:`SETS` ``[name]`` reports, by name: ``all`` reports the first set, the second and
    both together; another name only itself. Raises ``KeyError`` for an unknown name."""
    return {n: SETS[n] for n in ("first", "more", "all")} if name == "all" else {name: SETS[name]}


def add_set_option(parser: argparse.ArgumentParser, flag: str = "--set") -> None:
    """The ``flag`` option choosing the package set (default ``all``)."""
    parser.add_argument(
        flag,
        choices=tuple(SETS),
        default="all",
        help="package set: first, more (the second), all (each and both) or third (held out from every fit)",
    )


def analyze(
    path: Path, *, alternative_below: float = 0.75, octave_model: OctaveModel | None = None
) -> tuple[TempoResult, KeyResult]:
    """The product path: decoder blocks into the tempo analyzer (``alternative_below`` and ``octave_model`` as
    given, the product's defaults otherwise) and the key analyzer."""
    with AudioReader(path) as reader:
        tempo = TempoAnalyzer(alternative_below=alternative_below, octave_model=octave_model).start(reader.info)
        key = KeyAnalyzer().start(reader.info)
        for block in reader.blocks():
            tempo.feed(block)
            key.feed(block)
    return tempo.finish(), key.finish()


def _sonantica(path: Path) -> tuple[float | None, float, float | None, KeySignature | None]:
    tempo, key = analyze(path)
    return tempo.bpm, tempo.bpm_confidence, tempo.bpm_alternative, key.key


def _essentia(paths: Sequence[Path], cached: dict[str, Any]) -> None:
    import essentia  # type: ignore[import-untyped,import-not-found,unused-ignore]  # bench extra
    import essentia.standard as es  # type: ignore[import-untyped,import-not-found,unused-ignore]

    essentia.log.infoActive = False
    essentia.log.warningActive = False
    rhythm = es.RhythmExtractor2013(method="multifeature")
    key = es.KeyExtractor()
    for path in paths:
        entry = cached.setdefault(path.name, {})
        if "essentia_bpm" not in entry:
            audio = es.MonoLoader(filename=str(path), sampleRate=EXCERPT_RATE_HZ)()
            entry["essentia_bpm"] = float(rhythm(audio)[0])
            tonic, scale, strength = key(audio)
            entry["essentia_key"] = f"{tonic} {scale}"
            entry["essentia_key_strength"] = float(strength)


def _tempocnn(python: Path, model: str, paths: Sequence[Path], cached: dict[str, Any]) -> None:
    todo = [p for p in paths if f"tempocnn_{model}" not in cached.get(p.name, {})]
    if not todo:
        return
    if not python.exists():
        raise SystemExit(f"tempo-CNN's environment {python} is missing: run with --setup-tempocnn first")
    out = subprocess.run(
        [str(python), "-c", _TEMPOCNN_RUNNER, model, *map(str, todo)],
        check=True,
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin"},
    ).stdout
    for line in out.splitlines():
        if line.startswith("["):
            path, bpm = json.loads(line)
            cached.setdefault(Path(path).name, {})[f"tempocnn_{model}"] = bpm


def _setup_tempocnn(venv: Path) -> None:
    if not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", f"tempocnn=={TEMPOCNN_VERSION}"], check=True)


def peer_estimates(cache: Path, tracks: Sequence[Track], excerpt_s: float, venv: Path, model: str) -> dict[str, Any]:
    """Essentia's and tempo-CNN's (``model``, run from ``venv``) estimates by excerpt file name, computed for the
    excerpts not in ``cache``'s peers file yet and saved there."""
    cache_path = cache / "real" / f"peers-{excerpt_s:g}s.json"
    cached: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    paths = [t.excerpt for t in tracks]
    start = time.perf_counter()
    _essentia(paths, cached)
    cache_path.write_text(json.dumps(cached, indent=1))
    _tempocnn(venv / "bin" / "python", model, paths, cached)
    cache_path.write_text(json.dumps(cached, indent=1))
    print(f"peers: {time.perf_counter() - start:.0f} s (cached in {cache_path})", flush=True)
    return cached


def agree(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and tempo_within(a, b)


def agreed_tempi(cache: Path, packages: Sequence[str], excerpt_s: float = 60.0) -> list[tuple[Track, float]]:
    """The excerpts of ``packages`` where Essentia and tempo-CNN (``cnn``) agree within 4 %, each with Essentia's
    tempo (BPM): the benchmark's reference set, read from the peers' cache. Raises SystemExit when an excerpt has
    no cached estimate (run this benchmark on the packages first)."""
    cache_path = cache / "real" / f"peers-{excerpt_s:g}s.json"
    peers: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    agreed = []
    for track in real_tracks(cache, packages, excerpt_s):
        estimates = peers.get(track.excerpt.name)
        if estimates is None or "tempocnn_cnn" not in estimates:
            raise SystemExit(f"no peer estimate of {track.excerpt.name} in {cache_path}: run bench_tempo_real first")
        if agree(estimates["essentia_bpm"], estimates["tempocnn_cnn"]):
            agreed.append((track, float(estimates["essentia_bpm"])))
    return agreed


def tempo_features(path: Path) -> ClipFeatures:
    """The product path's tempo features of one file: decoder blocks into a tempo session (for fitting)."""
    with AudioReader(path) as reader:
        session = TempoAnalyzer().start(reader.info)
        for block in reader.blocks():
            session.feed(block)
    return session.features()


Row = tuple[Track, float | None, float, float | None, KeySignature | None, dict[str, Any]]
"""One excerpt: the track, sonantica's bpm, confidence, alternative and key, and the peers' cached estimates."""


def _report(name: str, rows: Sequence[Row], packages: Sequence[str], model: str, *, lists: bool) -> None:
    """Print the tempo and key tables of one set (``lists``: also every disagreement)."""
    cnn = f"tempocnn_{model}"
    agreed = [r for r in rows if agree(r[5]["essentia_bpm"], r[5][cnn])]
    print(f"\n# Set {name}: {len(rows)} excerpts from {len(packages)} packages")
    print(f"\n## Tempo: {len(agreed)} of {len(rows)} tracks where Essentia and tempo-CNN ({model}) agree")
    print("| set | n | sonantica Acc1 vs Essentia | Acc2 | no tempo |\n|---|---|---|---|---|")
    for label, group in (("Essentia = tempo-CNN", agreed), ("all tracks", rows)):
        hits = [tempo_within(r[1], r[5]["essentia_bpm"]) for r in group]
        acc2 = np.mean([tempo_within_octave(r[1], r[5]["essentia_bpm"]) for r in group])
        none = sum(r[1] is None for r in group)
        print(f"| {label} | {len(group)} | {np.mean(hits):.3f} ({sum(hits)}) | {acc2:.3f} | {none} |")
    print("\n| package | tracks | agreed | sonantica Acc1 on agreed |\n|---|---|---|---|")
    for package in packages:
        mine = [r for r in rows if r[0].package == package]
        ok = [r for r in agreed if r[0].package == package]
        acc = f"{np.mean([tempo_within(r[1], r[5]['essentia_bpm']) for r in ok]):.2f}" if ok else "-"
        print(f"| {package} | {len(mine)} | {len(ok)} | {acc} |")

    if lists:
        print("\n## Tempo disagreements on the agreed set (sonantica vs Essentia)")
        print(
            "| track | Essentia | tempo-CNN | sonantica | ratio | confidence | alternative |\n"
            "|---|---|---|---|---|---|---|"
        )
        for track, bpm, confidence, alternative, _, entry in agreed:
            if not tempo_within(bpm, entry["essentia_bpm"]):
                ratio = f"{bpm / entry['essentia_bpm']:.2f}" if bpm else "-"
                print(
                    f"| {track.excerpt.stem} | {entry['essentia_bpm']:.1f} | {entry[cnn]:.1f} | {bpm} | {ratio} "
                    f"| {confidence:.2f} | {alternative if alternative is not None else '-'} |"
                )

    keyed = [r for r in rows if r[4] is not None]
    essentia_keys = [KeySignature.parse(r[5]["essentia_key"]) for r in rows]
    exact = [r[4] == k for r, k in zip(rows, essentia_keys, strict=True)]
    mirex = [mirex_key_score(r[4], k) for r, k in zip(rows, essentia_keys, strict=True)]
    print(
        f"\n## Key vs Essentia KeyExtractor (defaults): same key on {sum(exact)} of {len(rows)} "
        f"({np.mean(exact):.3f}); MIREX-weighted {np.mean(mirex):.3f}; sonantica gave a key on {len(keyed)}"
    )
    if lists:
        print("| track | Essentia | sonantica | MIREX |\n|---|---|---|---|")
        for r, k, score in zip(rows, essentia_keys, mirex, strict=True):
            if r[4] != k:
                print(f"| {r[0].excerpt.stem} | {k.name} | {r[4].name if r[4] else None} | {score} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache"))
    add_set_option(parser)
    parser.add_argument("--per-package", type=int, default=PER_PACKAGE)
    parser.add_argument("--excerpt-s", type=float, default=60.0)
    parser.add_argument("--tempocnn-model", default="cnn")
    parser.add_argument("--tempocnn-venv", type=Path, default=Path(".bench-cache/venv-tempocnn"))
    parser.add_argument("--setup-tempocnn", action="store_true", help="create the tempo-CNN venv (TensorFlow)")
    args = parser.parse_args()
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise SystemExit("apt-get and dpkg-deb are needed to fetch the Debian packages")
    if args.setup_tempocnn:
        _setup_tempocnn(args.tempocnn_venv)

    packages = SETS[args.set]
    root = fetch_packages(args.cache_dir, packages)
    tracks = cut_excerpts(args.cache_dir, root, packages, args.per_package, args.excerpt_s)
    print(f"{len(tracks)} excerpts of {args.excerpt_s:g} s from {len(packages)} Debian packages", flush=True)
    cached = peer_estimates(args.cache_dir, tracks, args.excerpt_s, args.tempocnn_venv, args.tempocnn_model)

    start = time.perf_counter()
    rows: list[Row] = [(track, *_sonantica(track.excerpt), cached[track.excerpt.name]) for track in tracks]
    print(f"sonantica: {time.perf_counter() - start:.0f} s", flush=True)
    sets = report_sets(args.set)
    for name, members in sets.items():
        mine = [r for r in rows if r[0].package in members]
        _report(name, mine, members, args.tempocnn_model, lists=not (name == "all" and len(sets) > 1))


if __name__ == "__main__":
    main()
