"""Run analyses in worker processes, so CPU-heavy work has bounded concurrency and never blocks an event loop."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.pipeline import TrackAnalysis, analyze_file
from sidecar.analyzers.registry import build_analyzers
from sidecar.domain import AnalyzerOutput
from sidecar.errors import RetryLaterError
from sidecar.settings import Settings

log = logging.getLogger(__name__)

_process_analyzers: dict[str, Analyzer[AnalyzerOutput]] = {}

PROCESS_CONTEXT = multiprocessing.get_context("forkserver")
"""How analysis processes start. Not ``fork``: the parent loads the embedding network at start-up
(``Analyzer.check``), and a child forked after PyTorch ran a parallel operation hangs in its first one (the OpenMP
thread pool does not survive ``fork``)."""


def init_analysis_process(settings: Settings, names: tuple[str, ...]) -> None:
    """Process-pool initializer: build the analyzers ``names`` once per process."""
    # Analysis processes run at lower CPU priority so a host streaming beside them keeps its share.
    os.nice(settings.worker.nice)
    _process_analyzers.clear()
    _process_analyzers.update((a.name, a) for a in build_analyzers(settings, names))


def analyze_in_process(path: str, names: tuple[str, ...]) -> TrackAnalysis:
    """Analyse one file with analyzers built by :func:`init_analysis_process` in this process."""
    return analyze_file(path, [_process_analyzers[name] for name in names])


class AnalysisExecutor:
    """A pool of ``processes`` analysis processes, each with every analyzer in ``names`` built once.

    A process that dies mid-analysis (killed, out of memory) breaks the pool: the call raises
    :class:`RetryLaterError` and the next call starts a fresh pool, so one poison track cannot stop the worker.
    """

    def __init__(self, settings: Settings, names: Sequence[str], *, processes: int) -> None:
        self._settings = settings
        self._names = tuple(names)
        self._processes = processes
        self._pool: ProcessPoolExecutor | None = None

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self._processes,
                mp_context=PROCESS_CONTEXT,
                initializer=init_analysis_process,
                initargs=(self._settings, self._names),
            )
        return self._pool

    async def analyze(self, path: str, names: Sequence[str]) -> TrackAnalysis:
        """Decode ``path`` once and run the analyzers ``names`` (a subset of the pool's) on it."""
        pool = self._ensure_pool()
        try:
            return await asyncio.get_running_loop().run_in_executor(pool, analyze_in_process, path, tuple(names))
        except BrokenProcessPool:
            log.error("an analysis process died while analysing %s; starting a new pool", path)
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
            raise RetryLaterError(f"the analysis process died while analysing {path}") from None

    def close(self) -> None:
        """Stop the processes (running analyses are abandoned; their jobs are re-delivered)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
