"""Analyse many files, in order, optionally in several processes (the ``sonantica analyze`` engine)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

from sidecar.analyzers.executor import analyze_in_process, init_analysis_process
from sidecar.analyzers.pipeline import TrackAnalysis, analyze_file
from sidecar.analyzers.registry import build_analyzers
from sidecar.lifeline import PROCESS_CONTEXT
from sidecar.settings import Settings


def analyze_paths(
    paths: Sequence[Path], settings: Settings, names: Sequence[str], *, jobs: int = 1
) -> Iterator[TrackAnalysis]:
    """Yield one :class:`TrackAnalysis` per path, in input order; a bad file is a value, never an exception.

    ``jobs`` > 1 analyses in that many worker processes (each builds its analyzers once); results still come
    back in input order. Analyzers are built and probed before the first file, so a broken set fails at once.
    """
    names = tuple(names)
    analyzers = build_analyzers(settings, names)
    if jobs <= 1 or len(paths) <= 1:
        for path in paths:
            yield analyze_file(path, analyzers)
        return
    workers = min(jobs, len(paths))
    initargs = (settings, names, os.getpid())  # the processes end with this one, even when it is killed
    with ProcessPoolExecutor(
        workers, mp_context=PROCESS_CONTEXT, initializer=init_analysis_process, initargs=initargs
    ) as pool:
        yield from pool.map(partial(analyze_in_process, names=names), map(str, paths))
