"""BackgroundTask: a stop that Python 3.11's ``asyncio.wait_for`` swallows is delivered again, clean-up that runs
shielded is not cut, a stop is bounded, and the work's error reaches whoever stops it."""

from __future__ import annotations

import asyncio
import logging

import anyio
import pytest

from sidecar.background import BackgroundTask

STOP_WAIT_S = 10.0
"""Far above what these stops cost (a few event-loop steps)."""


async def _write_then_read(written: asyncio.Future[None], went_on: asyncio.Event) -> None:
    """What redis-py does: a socket write bounded by ``asyncio.wait_for``, then a read that waits for the server."""
    await asyncio.wait_for(written, timeout=60)
    went_on.set()
    await asyncio.sleep(3600)


async def test_a_plain_cancel_landing_as_a_bounded_write_completes_is_lost() -> None:
    """Why BackgroundTask exists (CPython gh-86296, Python 3.11): the task runs on after ``cancel()``."""
    written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    went_on = asyncio.Event()
    task = asyncio.create_task(_write_then_read(written, went_on))
    await asyncio.sleep(0)  # the task waits in wait_for
    written.set_result(None)
    task.cancel()  # in the same step as the write's completion
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert went_on.is_set()  # the cancellation was swallowed: the task went on to its read
    assert not task.done()
    task.cancel()  # a second one, outside that window, ends it
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stop_ends_work_whose_first_cancellation_is_swallowed() -> None:
    written: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    went_on = asyncio.Event()
    ended = asyncio.Event()

    async def work() -> None:
        try:
            await _write_then_read(written, went_on)
        finally:
            ended.set()

    task = BackgroundTask(work, name="reader")
    await asyncio.sleep(0)
    written.set_result(None)
    await task.stop(wait_s=STOP_WAIT_S)  # its cancellation lands in the same step as the write's completion
    assert went_on.is_set()  # the first cancellation was swallowed, as above
    assert ended.is_set()  # and the work was stopped all the same, not left behind


async def test_clean_up_that_runs_shielded_is_not_cut_by_the_repeated_cancellation() -> None:
    steps_done: list[int] = []

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            with anyio.move_on_after(STOP_WAIT_S, shield=True):
                for step in range(5):  # several awaits, as closing a connection takes
                    await asyncio.sleep(0)
                    steps_done.append(step)

    task = BackgroundTask(work, name="closer")
    await asyncio.sleep(0)
    await task.stop(wait_s=STOP_WAIT_S)
    assert steps_done == [0, 1, 2, 3, 4]


async def test_a_stop_is_bounded_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    released = asyncio.Event()
    ended = asyncio.Event()

    async def work() -> None:  # ignores every cancellation until released
        while not released.is_set():
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                continue
        ended.set()

    task = BackgroundTask(work, name="stubborn")
    await asyncio.sleep(0)
    with caplog.at_level(logging.WARNING, logger="sidecar.background"):
        await task.stop(wait_s=0.1)
    assert "stubborn did not stop within 0.1 s" in caplog.text
    assert not ended.is_set()
    released.set()  # the next re-delivered cancellation ends it
    await task.stop(wait_s=STOP_WAIT_S)
    assert ended.is_set()


async def test_the_error_the_work_ended_with_reaches_whoever_stops_it() -> None:
    async def work() -> None:
        raise ValueError("broken")

    task = BackgroundTask(work, name="broken")
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken"):
        await task.stop(wait_s=STOP_WAIT_S)


async def test_a_stop_before_the_work_started_ends_it_at_once() -> None:
    reached: list[str] = []

    async def work() -> None:
        reached.append("started")
        try:
            await asyncio.sleep(3600)
        finally:
            reached.append("ended")

    task = BackgroundTask(work, name="early")
    await task.stop(wait_s=STOP_WAIT_S)
    assert reached == ["started", "ended"]  # it ran up to its first await, where the stop ended it
