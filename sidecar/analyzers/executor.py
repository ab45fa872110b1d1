"""Run analyses in worker processes, so CPU-heavy work has bounded concurrency and never blocks an event loop."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.embedding.analyzer import EmbeddingAnalyzer
from sidecar.analyzers.pipeline import TrackAnalysis, analyze_file
from sidecar.analyzers.registry import build_analyzers
from sidecar.domain import AnalyzerOutput
from sidecar.errors import RetryLaterError
from sidecar.lifeline import PROCESS_CONTEXT, die_with_worker
from sidecar.settings import Settings

log = logging.getLogger(__name__)

_process_analyzers: dict[str, Analyzer[AnalyzerOutput]] = {}


@dataclass(frozen=True, slots=True)
class ProbedModel:
    """An embedding analyzer's model name and vector dimension, as probed."""

    model: str
    dim: int


@dataclass(frozen=True, slots=True)
class AnalyzerProbe:
    """What :func:`probe_analyzers` learnt: each enabled analyzer's version, and the embedding models."""

    versions: dict[str, int]
    models: tuple[ProbedModel, ...]


def _probe(settings: Settings) -> AnalyzerProbe:
    analyzers = build_analyzers(settings)
    return AnalyzerProbe(
        versions={a.name: a.version for a in analyzers},
        models=tuple(ProbedModel(a.model, a.dim) for a in analyzers if isinstance(a, EmbeddingAnalyzer)),
    )


def probe_analyzers(settings: Settings) -> AnalyzerProbe:
    """Build and check the enabled analyzers (:func:`build_analyzers`) in a short-lived child process, so this
    process never loads their models: the worker's main process only dispatches, and torch with the embedding
    model would keep about 350 MiB in it for its whole life. Raises what the check raises
    (:class:`~sidecar.errors.FatalAnalyzerError`)."""
    with ProcessPoolExecutor(1, mp_context=PROCESS_CONTEXT) as pool:
        return pool.submit(_probe, settings).result()


def init_analysis_process(settings: Settings, names: tuple[str, ...], parent_pid: int | None = None) -> None:
    """Process-pool initializer: die with the worker ``parent_pid`` (see :func:`~sidecar.lifeline.die_with_worker`),
    then build the analyzers ``names`` once per process."""
    die_with_worker(parent_pid)
    # Analysis processes run at lower CPU priority so a host streaming beside them keeps its share.
    os.nice(settings.worker.nice)
    _process_analyzers.clear()
    _process_analyzers.update((a.name, a) for a in build_analyzers(settings, names))


def analyze_in_process(path: str, names: tuple[str, ...], library_root: str | None = None) -> TrackAnalysis:
    """Analyse one file with analyzers built by :func:`init_analysis_process` in this process."""
    return analyze_file(path, [_process_analyzers[name] for name in names], library_root=library_root)


class AnalysisExecutor:
    """A pool of ``processes`` analysis processes, each with every analyzer in ``names`` built once.

    A process that dies mid-analysis (killed, out of memory) breaks the pool: the call raises
    :class:`RetryLaterError` and the next call starts a fresh pool, so one poison track cannot stop the worker.
    An analysis running longer than ``worker.analysis_timeout_s`` has its processes killed (other analyses running
    in the same pool at that moment are retried) and returns that as the track's ``error``. The processes die
    with this one (:func:`~sidecar.lifeline.die_with_worker`).
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
                initargs=(self._settings, self._names, os.getpid()),
            )
        return self._pool

    def _discard_pool(self, pool: ProcessPoolExecutor, *, kill: bool) -> None:
        if kill:
            for process in list(pool._processes.values()):
                process.kill()
        pool.shutdown(wait=False, cancel_futures=True)
        if self._pool is pool:
            self._pool = None

    async def analyze(self, path: str, names: Sequence[str], *, library_root: str | None = None) -> TrackAnalysis:
        """Decode ``path`` once and run the analyzers ``names`` (a subset of the pool's) on it; ``library_root``:
        the file must resolve inside it (see :class:`~sidecar.analyzers.audio.AudioReader`)."""
        pool = self._ensure_pool()
        limit_s = self._settings.worker.analysis_timeout_s
        call = asyncio.get_running_loop().run_in_executor(pool, analyze_in_process, path, tuple(names), library_root)
        try:
            return await asyncio.wait_for(call, timeout=limit_s)
        except TimeoutError:
            log.error("analysis of %s ran longer than %g s; killing its processes", path, limit_s)
            self._discard_pool(pool, kill=True)
            reason = f"analysis took longer than {limit_s:g} s (SONANTICA_WORKER__ANALYSIS_TIMEOUT_S): {path}"
            return TrackAnalysis(path=path, info=None, error=reason)
        except BrokenProcessPool:
            log.error("an analysis process died while analysing %s; starting a new pool", path)
            self._discard_pool(pool, kill=False)
            raise RetryLaterError(f"the analysis process died while analysing {path}") from None

    def close(self) -> None:
        """Stop the processes (running analyses are abandoned; their jobs are re-delivered)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
