"""The memory benchmark's sampling and summary (scripts/bench_memory.py): the figures it prints come from these."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts.bench_memory import (
    Sample,
    children_by_parent,
    descendants,
    level_mib,
    measure,
    ratio,
    read_samples,
    summary_table,
    write_samples,
)


def _run(minutes: int, worker_mib: Callable[[float], float], api_mib: float) -> list[Sample]:
    """One sample per 30 s for ``minutes``: the worker at ``worker_mib(minute)``, the API flat."""
    samples: list[Sample] = []
    for i in range(minutes * 2 + 1):
        t_s = i * 30.0
        samples.append(Sample(t_s, "worker_main", 1, worker_mib(t_s / 60), worker_mib(t_s / 60) - 10))
        samples.append(Sample(t_s, "api", 1, api_mib, api_mib - 5))
    return samples


def test_csv_round_trip(tmp_path: Path) -> None:
    samples = _run(3, lambda m: 100.0 + m, 50.0)
    path = tmp_path / "memory.csv"
    write_samples(path, samples[:4], header=True)
    write_samples(path, samples[4:], header=False)
    assert read_samples(path) == samples


def test_level_is_the_median_of_the_window_around_the_checkpoint() -> None:
    # worker grows 10 MiB per minute: the median over 57.5-62.5 min is the value at 60 min
    samples = _run(70, lambda m: 100.0 + 10 * m, 50.0)
    assert level_mib(samples, "worker_main", 60) == pytest.approx(700.0)
    assert level_mib(samples, "worker_main", 5) == pytest.approx(150.0)
    # a spike of one sample does not move the median
    spiked = [s if s.t_s != 300.0 else Sample(300.0, "api", 1, 5000.0, 1.0) for s in samples]
    assert level_mib(spiked, "api", 5) == pytest.approx(50.0)


def test_a_checkpoint_past_the_end_of_the_run_has_no_level() -> None:
    samples = _run(65, lambda m: 100.0, 50.0)
    assert level_mib(samples, "api", 60) == pytest.approx(50.0)
    assert level_mib(samples, "api", 90) is None
    assert level_mib(samples, "redis", 5) is None  # no such component sampled
    assert ratio(samples, "api", 90, 5) is None


def test_ratios_and_the_verdict_in_the_table() -> None:
    samples = _run(65, lambda m: 100.0 + 10 * m, 50.0)  # worker: 700 / 150 = 4.67, API flat
    assert ratio(samples, "worker_main", 60, 5) == pytest.approx(700 / 150)
    assert ratio(samples, "api", 60, 5) == pytest.approx(1.0)
    table = summary_table(samples)
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]] for line in table.splitlines()[2:]}
    assert set(rows) == {"worker_main", "api"}
    # columns: 5, 15, 30, 60, 90, 120 min, peak, ratio, verdict
    assert rows["worker_main"] == ["150", "250", "400", "700", "-", "-", "750", "4.67", "NO"]
    assert rows["api"] == ["50", "50", "50", "50", "-", "-", "50", "1.00", "yes"]


def test_growth_just_within_the_bar_passes() -> None:
    samples = _run(65, lambda m: 100.0 if m < 30 else 129.0, 50.0)
    rows = [line for line in summary_table(samples).splitlines() if line.startswith("| worker_main")]
    assert rows[0].endswith("| 1.29 | yes |")


def test_descendants_walk_the_tree_and_skip_excluded_subtrees() -> None:
    tree = {1: [2, 3], 2: [4], 3: [5], 5: [6]}
    assert sorted(descendants(1, tree)) == [2, 3, 4, 5, 6]
    assert sorted(descendants(1, tree, exclude=[3])) == [2, 4]
    assert descendants(4, tree) == []


def test_a_real_child_is_found_and_measured() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(30)"], stdout=subprocess.PIPE
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline() == b"ready\n"  # the interpreter is loaded: measured before, RSS was 0.2 MiB
        assert child.pid in descendants(os.getpid(), children_by_parent())
        sample = measure(0.0, "x", [child.pid, 2**22 + 7])  # the second pid does not exist: not counted
        assert sample.processes == 1
        assert sample.rss_mib > 1.0
        assert 0.0 < sample.pss_mib <= sample.rss_mib
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
