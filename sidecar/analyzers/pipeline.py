"""Decode a track once and run every requested analyzer over the same blocks."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.base import Analyzer, AnalyzerSession
from sidecar.domain import AnalyzerOutput, AudioInfo
from sidecar.errors import AnalyzerError, AudioDecodeError

log = logging.getLogger(__name__)

_PER_TRACK_ERRORS = (AnalyzerError, ValueError, ArithmeticError, RuntimeError, MemoryError, IndexError)
"""What an analyzer may raise for one track without stopping the others (anything else is a bug and raises)."""


@dataclass(frozen=True, slots=True)
class AnalyzerFailure:
    """Why one analyzer produced no result for one track."""

    analyzer: str
    version: int
    error: str


@dataclass(frozen=True, slots=True)
class TrackAnalysis:
    """Everything one pass over a file produced.

    ``error`` is set when the file itself could not be decoded; then ``results`` is empty and every requested
    analyzer appears in ``failures`` with that reason.
    """

    path: str
    info: AudioInfo | None
    results: dict[str, AnalyzerOutput] = field(default_factory=dict)
    failures: dict[str, AnalyzerFailure] = field(default_factory=dict)
    error: str | None = None
    decoded_duration_s: float | None = None  # exact length from the decoded samples; None when decoding failed


def _failure(analyzer: Analyzer[AnalyzerOutput], exc: Exception) -> AnalyzerFailure:
    if isinstance(exc, AnalyzerError):
        reason = str(exc)
    else:
        log.exception("analyzer %s failed unexpectedly", analyzer.name)
        reason = f"internal error in {analyzer.name}: {type(exc).__name__}: {exc}"
    return AnalyzerFailure(analyzer.name, analyzer.version, reason)


def analyze_file(path: str | os.PathLike[str], analyzers: Sequence[Analyzer[AnalyzerOutput]]) -> TrackAnalysis:
    """Decode ``path`` once (read-only, streamed) and run ``analyzers`` on it.

    Never raises for a bad file or a failing analyzer: a decode problem sets ``error``; an analyzer's own problem
    is recorded in ``failures`` and the other analyzers still finish.
    """
    path_str = os.fspath(path)
    failures: dict[str, AnalyzerFailure] = {}
    try:
        with AudioReader(path_str) as reader:
            sessions: dict[str, tuple[Analyzer[AnalyzerOutput], AnalyzerSession[AnalyzerOutput]]] = {}
            for analyzer in analyzers:
                try:
                    sessions[analyzer.name] = (analyzer, analyzer.start(reader.info))
                except _PER_TRACK_ERRORS as exc:
                    failures[analyzer.name] = _failure(analyzer, exc)
            samples = 0
            for block in reader.blocks():
                samples += block.native.shape[1]
                for name, (analyzer, session) in list(sessions.items()):
                    try:
                        session.feed(block)
                    except _PER_TRACK_ERRORS as exc:
                        failures[name] = _failure(analyzer, exc)
                        del sessions[name]
            results: dict[str, AnalyzerOutput] = {}
            for name, (analyzer, session) in sessions.items():
                try:
                    results[name] = session.finish()
                except _PER_TRACK_ERRORS as exc:
                    failures[name] = _failure(analyzer, exc)
            return TrackAnalysis(
                path=path_str,
                info=reader.info,
                results=results,
                failures=failures,
                decoded_duration_s=samples / reader.info.sample_rate_hz,
            )
    except AudioDecodeError as exc:
        reason = str(exc)
        failures = {a.name: AnalyzerFailure(a.name, a.version, reason) for a in analyzers}
        return TrackAnalysis(path=path_str, info=None, failures=failures, error=reason)
