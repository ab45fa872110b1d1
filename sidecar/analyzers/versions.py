"""The current version of every analyzer, by name, in a module that imports no analyzer.

Each analyzer class takes its ``version`` from :data:`VERSIONS`, so bumping a version happens here. Code that only
needs the versions (the queue, status, sync, the API, the command line) imports this module, not the analyzers
with their numpy/scipy/librosa imports.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sidecar.settings import Settings

VERSIONS: dict[str, int] = {"loudness": 1, "tempo": 6, "key": 1, "embedding": 4, "waveform": 1}
"""Current version of every known analyzer (stored results with a lower version are stale)."""


def enabled_versions(settings: Settings) -> dict[str, int]:
    """``{name: current version}`` of the configured analyzers, without building them (no model loading)."""
    return {name: VERSIONS[name] for name in settings.analysis.enabled if name in VERSIONS}
