"""Every analyzer the sidecar knows, by stable name, and how to build the configured set.

Analyzers are built once per process (models load at start-up) and probed with ``check()`` so a broken native
library or missing model is a start-up error, not a failure on every track.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.embedding import EmbeddingAnalyzer
from sidecar.analyzers.key import KeyAnalyzer
from sidecar.analyzers.loudness import LoudnessAnalyzer
from sidecar.analyzers.tempo import TempoAnalyzer
from sidecar.analyzers.waveform import WaveformAnalyzer
from sidecar.domain import AnalyzerOutput
from sidecar.errors import FatalAnalyzerError
from sidecar.settings import Settings

AnalyzerFactory = Callable[[Settings], Analyzer[AnalyzerOutput]]

CORE_ANALYZERS: tuple[str, ...] = ("loudness", "tempo", "key")
"""The analyzers behind ``sonantica analyze``: cheap, weight-free, one decode."""

FACTORIES: dict[str, AnalyzerFactory] = {
    LoudnessAnalyzer.name: lambda _settings: LoudnessAnalyzer(),
    TempoAnalyzer.name: lambda _settings: TempoAnalyzer(),
    KeyAnalyzer.name: lambda _settings: KeyAnalyzer(),
    EmbeddingAnalyzer.name: EmbeddingAnalyzer,
    WaveformAnalyzer.name: lambda _settings: WaveformAnalyzer(),
}


def build_analyzers(settings: Settings, names: Sequence[str] | None = None) -> list[Analyzer[AnalyzerOutput]]:
    """Build and probe the analyzers called ``names`` (default: ``settings.analysis.enabled``), in that order.

    Raises
    ------
    FatalAnalyzerError
        An unknown name, or an analyzer whose ``check()`` fails (missing model, broken native library).
    """
    wanted = list(names) if names is not None else list(settings.analysis.enabled)
    unknown = [name for name in wanted if name not in FACTORIES]
    if unknown:
        raise FatalAnalyzerError(f"unknown analyzer(s) {', '.join(unknown)}; known: {', '.join(sorted(FACTORIES))}")
    analyzers = [FACTORIES[name](settings) for name in dict.fromkeys(wanted)]
    for analyzer in analyzers:
        analyzer.check()
    return analyzers
