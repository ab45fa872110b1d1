"""Run separations in a separate process: the model is loaded once there, the worker's event loop stays free,
and a process that dies (killed, out of memory) costs one attempt, not the worker."""

from __future__ import annotations

import asyncio
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from sidecar.errors import RetryLaterError
from sidecar.lifeline import PROCESS_CONTEXT, die_with_worker
from sidecar.settings import Settings
from sidecar.stems.models import load_model
from sidecar.stems.separate import SeparationConfig, SeparationResult, resolve_device, separate_file

log = logging.getLogger(__name__)

_process_state: dict[str, Any] = {}


def config_from_settings(settings: Settings) -> SeparationConfig:
    """The separation options of ``settings.stems`` (device resolved)."""
    stems = settings.stems
    return SeparationConfig(
        device=resolve_device(stems.device),
        segment_s=stems.segment_s,
        overlap=stems.overlap,
        block_s=stems.block_s,
        fmt=stems.format,
        opus_bitrate_kbps=stems.opus_bitrate_kbps,
    )


def init_stems_process(settings: Settings, worker_pid: int | None = None) -> None:
    """Process-pool initializer: die with the worker ``worker_pid`` (a separation must not outlive a killed worker
    and keep writing), lower the CPU priority, set torch's threads."""
    die_with_worker(worker_pid)
    os.nice(min(19, settings.worker.nice + 5))  # below analysis: an on-play analysis keeps the CPU it needs
    if settings.stems.threads is not None:
        import torch

        torch.set_num_threads(settings.stems.threads)
    _process_state.clear()
    _process_state["settings"] = settings


def separate_in_process(path: str, out_dir: str) -> SeparationResult:
    """Separate ``path`` into ``out_dir`` with the model loaded once per process (first call)."""
    settings: Settings = _process_state["settings"]
    if "model" not in _process_state:
        _process_state["model"] = load_model(settings)
        _process_state["config"] = config_from_settings(settings)
    return separate_file(path, Path(out_dir), _process_state["model"], _process_state["config"])


class StemsExecutor:
    """One separation process (a model in memory costs hundreds of MB; separations queue behind each other)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._pool: ProcessPoolExecutor | None = None

    async def separate(self, path: str, out_dir: Path) -> SeparationResult:
        """Separate ``path`` into ``out_dir``; a dead process raises :class:`RetryLaterError`."""
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                1, mp_context=PROCESS_CONTEXT, initializer=init_stems_process, initargs=(self._settings, os.getpid())
            )
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, separate_in_process, path, str(out_dir))
        except BrokenProcessPool:
            log.error("the separation process died while separating %s; starting a new one", path)
            self.close()
            raise RetryLaterError(f"the separation process died while separating {path}") from None

    def close(self) -> None:
        """Stop the process (a running separation is abandoned; its job is re-delivered)."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
