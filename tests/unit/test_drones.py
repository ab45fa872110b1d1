"""The pulse-less material of the tempo pulse check (sidecar.demo.drones)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sidecar.demo.drones import (
    CLOSE_MAJOR,
    HELD_OUT_PROGRAMS,
    OPEN_MINOR,
    PROGRESSION_STEPS,
    SEEN_PROGRAMS,
    Drone,
    cached_drone_paths,
    drone_set,
)
from sidecar.demo.rhythm_corpus import load_mono


def test_held_drone_strikes_its_chord_once() -> None:
    events = Drone(19, CLOSE_MAJOR, "timgm6mb").events()
    assert [(e.time_s, e.on, e.pitch) for e in events] == [(0.0, True, p) for p in CLOSE_MAJOR]


def test_moving_drone_changes_chord_every_period_and_releases_the_last() -> None:
    events = Drone(19, OPEN_MINOR, "timgm6mb", change_every_s=8.0).events()
    ons = [(e.time_s, e.pitch) for e in events if e.on]
    offs = [(e.time_s, e.pitch) for e in events if not e.on]
    assert sorted({t for t, _ in ons}) == [0.0, 8.0, 16.0]
    assert [p for t, p in ons if t == 8.0] == [p + PROGRESSION_STEPS[1] for p in OPEN_MINOR]
    assert [p for t, p in offs if t == 16.0] == [p + PROGRESSION_STEPS[1] for p in OPEN_MINOR]
    assert [e.time_s for e in events] == sorted(e.time_s for e in events)


def test_drone_sets_are_disjoint_and_complete() -> None:
    assert not set(SEEN_PROGRAMS) & set(HELD_OUT_PROGRAMS)
    seen = drone_set(SEEN_PROGRAMS, held_out=False)
    held_out = drone_set(HELD_OUT_PROGRAMS, held_out=True)
    assert len(seen) == len(SEEN_PROGRAMS) * 4
    assert len(held_out) == len(HELD_OUT_PROGRAMS) * 4 * 2
    assert len({d.digest() for d in seen + held_out}) == len(seen) + len(held_out)


def test_drone_renders_once_into_the_cache(tmp_path: Path) -> None:
    drone = Drone(89, CLOSE_MAJOR, "timgm6mb", duration_s=4.0)
    (path,) = cached_drone_paths([drone], tmp_path)
    mtime_ns = path.stat().st_mtime_ns
    assert cached_drone_paths([drone], tmp_path) == [path]
    assert path.stat().st_mtime_ns == mtime_ns
    mono = load_mono(path)
    assert mono.size == 4 * 22050
    assert float(np.abs(mono[-22050:]).max()) > 0.05  # still sounding at the end: held, not decayed
