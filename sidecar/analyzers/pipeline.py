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


def analyze_file(
    path: str | os.PathLike[str],
    analyzers: Sequence[Analyzer[AnalyzerOutput]],
    *,
    library_root: str | os.PathLike[str] | None = None,
) -> TrackAnalysis:
    """Decode ``path`` once (read-only, streamed) and run ``analyzers`` on it.

    Never raises for a bad file or a failing analyzer (any exception type): a decode problem sets ``error``; an
    analyzer's own problem is recorded in ``failures`` and the other analyzers still finish. ``library_root``:
    see :class:`AudioReader` (a file resolving outside it is an ``error``).
    """
    path_str = os.fspath(path)
    failures: dict[str, AnalyzerFailure] = {}
    try:
        with AudioReader(path_str, library_root=library_root) as reader:
            sessions: dict[str, tuple[Analyzer[AnalyzerOutput], AnalyzerSession[AnalyzerOutput]]] = {}
            for analyzer in analyzers:
                try:
                    sessions[analyzer.name] = (analyzer, analyzer.start(reader.info))
                except Exception as exc:  # any analyzer error is this track's, never the worker's
                    failures[analyzer.name] = _failure(analyzer, exc)
            samples = 0
            for block in reader.blocks():
                samples += block.native.shape[1]
                for name, (analyzer, session) in list(sessions.items()):
                    try:
                        session.feed(block)
                    except Exception as exc:  # any analyzer error is this track's, never the worker's
                        failures[name] = _failure(analyzer, exc)
                        del sessions[name]
            results: dict[str, AnalyzerOutput] = {}
            for name, (analyzer, session) in sessions.items():
                try:
                    results[name] = session.finish()
                except Exception as exc:  # any analyzer error is this track's, never the worker's
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
    except Exception as exc:  # a decoder or resampler bug on a hostile file: this track's error, not the caller's
        log.exception("decoding %s failed unexpectedly", path_str)
        reason = f"internal error while decoding {path_str}: {type(exc).__name__}: {exc}"
    failures = {a.name: AnalyzerFailure(a.name, a.version, reason) for a in analyzers}
    return TrackAnalysis(path=path_str, info=None, failures=failures, error=reason)
