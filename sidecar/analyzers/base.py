"""The analyzer interface: a named, versioned, streaming computation over decoded audio.

An analyzer is started once per track and fed every :class:`~sidecar.analyzers.audio.AudioBlock` in order, so
one decode serves all analyzers and memory stays bounded. ``finish`` returns a result value; a per-track problem
raises :class:`~sidecar.errors.AnalyzerError`, which the pipeline records instead of crashing.
"""

from __future__ import annotations

from typing import ClassVar, Protocol, TypeVar, runtime_checkable

from sidecar.analyzers.audio import AudioBlock
from sidecar.domain import AnalyzerOutput, AudioInfo

OutputT_co = TypeVar("OutputT_co", bound=AnalyzerOutput, covariant=True)


class AnalyzerSession(Protocol[OutputT_co]):
    """Per-track state of one analyzer."""

    def feed(self, block: AudioBlock) -> None:
        """Consume the next block (blocks arrive in order, without gaps)."""

    def finish(self) -> OutputT_co:
        """Return the result for the whole track; defined for silence and very short input."""


@runtime_checkable
class Analyzer(Protocol[OutputT_co]):
    """A named, versioned analysis. Bump ``version`` whenever the output changes: stored results with a lower
    version are stale and only they are recomputed."""

    name: ClassVar[str]
    version: ClassVar[int]

    def check(self) -> None:
        """Probe native libraries and models at start-up; raise FatalAnalyzerError when unusable."""

    def start(self, info: AudioInfo) -> AnalyzerSession[OutputT_co]:
        """Begin analysing one track."""
