"""How the worker's helper processes (analysis pool, separation process) start, and how they die with it."""

from __future__ import annotations

import multiprocessing
import os
import select
import signal
import sys
import threading

PROCESS_CONTEXT = multiprocessing.get_context("forkserver")
"""How helper processes start. Not ``fork``: the worker loads the embedding network at start-up
(``Analyzer.check``), and a child forked after PyTorch ran a parallel operation hangs in its first one (the OpenMP
thread pool does not survive ``fork``)."""


def die_with_worker(worker_pid: int | None) -> None:
    """Make this helper process end when the worker ``worker_pid`` ends, and obey SIGTERM/SIGINT again.

    Call it first in a pool initializer (the main thread). Signal handlers and the wake-up fd inherited from an
    asyncio process are reset to the defaults. Under the forkserver context the worker is not this process's
    kernel parent (the fork server is, and the fork server lives as long as any process it forked, so
    ``PR_SET_PDEATHSIG`` would never fire): a daemon thread waits on a pidfd of the worker and exits this process
    the moment the worker is gone, however it died (SIGKILL included). A worker already gone when this runs exits
    it at once. Without pidfds (not Linux) only the signal reset applies.
    """
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_DFL)
    if worker_pid is None or sys.platform != "linux":
        return
    try:
        pidfd = os.pidfd_open(worker_pid)
    except ProcessLookupError:
        os._exit(1)
    threading.Thread(target=_exit_when_gone, args=(pidfd,), name="die-with-worker", daemon=True).start()


def _exit_when_gone(pidfd: int) -> None:
    """Block until the process behind ``pidfd`` has exited (the fd turns readable), then exit this one."""
    select.select([pidfd], [], [])
    os._exit(1)
