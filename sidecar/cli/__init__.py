"""The ``sonantica`` command line (also ``python -m sidecar``).

Each module of this package defines its commands on :data:`sidecar.cli.app.app`; importing it here registers them.
They import what their commands use inside those commands (see :mod:`sidecar.cli.app`), so importing this package,
``--help`` and shell completion load no analyzer, numpy, database driver or web framework.
"""

from __future__ import annotations

from sidecar.cli import (  # noqa: F401  (importing a command module registers its commands)
    analyze,
    config,
    demo,
    embed,
    host,
    migrate,
    models,
    override,
    reanalyze,
    scheduler,
    serve,
    stems,
    sync,
    worker,
)
from sidecar.cli.app import app

__all__ = ["app"]
