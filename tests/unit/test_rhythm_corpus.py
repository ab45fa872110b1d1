"""The rhythm corpus produces what it says: its families and patterns, the truth convention, soundfont switching."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sidecar.demo import rhythm_corpus as rc
from sidecar.demo.music import DRUM_CHANNEL, SAMPLE_RATE_HZ, _scale

REQUIRED_FAMILIES = {
    "ballad",
    "rock",
    "shuffle",
    "four-on-the-floor",
    "breakbeat",
    "half-time",
    "trap",
    "drum and bass",
    "reggae",
    "bossa-samba",
    "compound",
    "waltz",
    "swing",
    "drumless",
}


def _onsets(clip: rc.RhythmClip, channel: int, pitch: int | None = None) -> np.ndarray:
    return np.array(
        [e.time_s for e in rc.events(clip) if e.on and e.channel == channel and (pitch is None or e.pitch == pitch)]
    )


def _exact(clip: rc.RhythmClip) -> rc.RhythmClip:
    """The clip without timing humanisation or swing, so onsets fall exactly on the notated grid."""
    return dataclasses.replace(clip, jitter_s=0.0, swing_extra=0.0)


def _clip(family: str, pattern: str, **changes: Any) -> rc.RhythmClip:
    clip = next(c for c in rc.rhythm_corpus() if c.family == family and c.pattern == pattern)
    return dataclasses.replace(_exact(clip), **changes)


def test_families_have_patterns_of_their_own_spread_over_tempo() -> None:
    assert len(rc.FAMILIES) >= 14
    assert set(rc.FAMILIES) >= REQUIRED_FAMILIES
    for family in rc.FAMILIES.values():
        assert len(family.patterns) >= 3, family.name
        grooves = {(p.drums, p.bass, p.comp, p.comp_style) for p in family.patterns}
        assert len(grooves) == len(family.patterns), f"{family.name} repeats a pattern"
    drumless = rc.FAMILIES["drumless"].patterns
    assert all(not p.drums for p in drumless)
    assert {"arpeggio", "pad and melody", "piano", "pizzicato", "solo bass"} <= {p.name for p in drumless}
    clips = rc.rhythm_corpus()
    tempos = [c.bpm for c in clips]
    assert min(tempos) <= 60
    assert max(tempos) >= 185
    for clip in clips:
        lo, hi = rc.pattern(clip).bpm_range
        assert lo <= clip.bpm <= hi
        assert 55 <= clip.bpm <= 192


def test_corpus_is_deterministic_and_renders_every_family_with_every_soundfont() -> None:
    clips = rc.rhythm_corpus(8)
    assert clips == rc.rhythm_corpus(8)
    assert len({c.digest() for c in clips}) == len(clips)
    assert [c.bpm for c in rc.rhythm_corpus(8, seed=1)] != [c.bpm for c in clips]
    for family in rc.FAMILIES:
        members = [c for c in clips if c.family == family]
        assert {c.soundfont for c in members} == set(rc.SOUNDFONT_NAMES)
        assert len({c.pattern for c in members}) >= 3
    two = rc.rhythm_corpus(4, soundfonts=("timgm6mb", "fluidr3"))
    assert {c.soundfont for c in two} == {"timgm6mb", "fluidr3"}


def test_truth_is_the_notated_quarter_in_simple_meters() -> None:
    clip = _clip("rock", "basic", bpm=120.0)
    beat_s = 0.5
    snares = _onsets(clip, DRUM_CHANNEL, rc.SNARE)
    # Backbeat on beats 2 and 4 of every 4/4 bar: snare times are odd multiples of the beat.
    assert np.allclose((snares / beat_s) % 2.0, 1.0, atol=1e-6)
    kicks = _onsets(clip, DRUM_CHANNEL, rc.KICK)
    assert np.allclose(np.diff(kicks[:3]), [1.0, 0.25], atol=1e-6)  # beats 1, 3 and the "and" of 3


def test_half_time_keeps_the_notated_tempo_with_the_snare_on_three() -> None:
    for family, name in (("half-time", "half-time rock"), ("trap", "trap eighths")):
        clip = _clip(family, name, bpm=140.0)
        beat_s = 60.0 / 140.0
        backbeat = _onsets(clip, DRUM_CHANNEL, rc.SNARE if family == "half-time" else rc.CLAP)
        assert backbeat.size >= 10
        assert np.allclose((backbeat / beat_s) % 4.0, 2.0, atol=1e-6), name  # once a bar, on beat 3
        eighths = _onsets(clip, DRUM_CHANNEL, rc.CLOSED_HAT) / (beat_s / 2)
        on_grid = np.isclose(eighths, np.round(eighths), atol=1e-6)
        assert np.count_nonzero(on_grid) >= 8 * backbeat.size  # hats on every eighth of the notated quarter
        if family == "trap":
            assert not on_grid.all()  # and the trap's hi-hat rolls between them


def test_compound_meters_count_the_dotted_quarter() -> None:
    clip = _clip("compound", "6/8 ballad", bpm=60.0)
    assert clip.meter == "6/8"
    hats = _onsets(clip, DRUM_CHANNEL, rc.CLOSED_HAT)
    assert np.isclose(np.median(np.diff(hats)), 1.0 / 3.0, atol=1e-6)  # three eighths per 1 s beat
    kicks = _onsets(clip, DRUM_CHANNEL, rc.KICK)
    assert np.allclose(np.diff(kicks), 2.0, atol=1e-6)  # one kick per bar of two dotted quarters
    assert _clip("compound", "12/8 slow blues").meter == "12/8"
    assert _clip("shuffle", "texas triplets").meter == "4/4"


def test_notes_stay_in_the_key() -> None:
    for clip in rc.rhythm_corpus(3)[::4]:
        scale = {(clip.key.pitch_class + step) % 12 for step in _scale(clip.key)}
        if clip.key.mode == "minor":
            scale.add((clip.key.pitch_class + 11) % 12)  # leading tone of the harmonic minor
        pitches = {e.pitch % 12 for e in rc.events(clip) if e.on and e.channel in (0, 1, 2)}
        assert pitches, clip.title
        assert pitches <= scale, clip.title


@pytest.mark.parametrize("chords_per_bar", [2.0, 1.0, 0.5])
def test_progression_is_the_chord_loop_the_bass_plays_at_the_harmonic_rhythm(chords_per_bar: float) -> None:
    """The bass (root eighths) plays the root of the loop's chord sounding on every beat: a new chord every half
    bar, bar or two bars."""
    clip = _clip("rock", "basic", chords_per_bar=chords_per_bar)
    loop = rc.progression(clip)
    assert loop in rc.PROGRESSIONS[clip.key.mode]
    beat_s = 60.0 / clip.bpm
    bass = [e for e in rc.events(clip) if e.on and e.channel == 2]
    on_beats = {
        round(e.time_s / beat_s): e.pitch % 12 for e in bass if abs(e.time_s / beat_s - round(e.time_s / beat_s)) < 1e-6
    }
    scale = _scale(clip.key)
    for beat in range(32):
        degree = loop[int(beat * chords_per_bar // 4) % len(loop)]
        assert on_beats[beat] == (clip.key.pitch_class + scale[degree]) % 12, beat


def test_harmonic_rhythm_is_drawn_per_clip() -> None:
    clips = rc.rhythm_corpus()
    drawn = {clip.chords_per_bar for clip in clips}
    assert drawn == {rate for rate, _ in rc.HARMONIC_RHYTHMS}
    for family in rc.FAMILIES:
        assert len({c.chords_per_bar for c in clips if c.family == family}) >= 2, family
    assert all(c.chords_per_bar <= 1.0 for c in clips if c.meter == "3/4")  # no split bar in triple meter
    one_a_bar = rc.rhythm_corpus(harmonic_rhythms=((1.0, 1.0),))
    assert {c.chords_per_bar for c in one_a_bar} == {1.0}
    same = [dataclasses.replace(c, chords_per_bar=1.0) for c in clips]
    assert same == one_a_bar  # only the harmonic rhythm differs from generator version 1's draws


def test_every_progression_is_in_the_corpus() -> None:
    drawn = {(clip.key.mode, rc.progression(clip)) for clip in rc.rhythm_corpus()}
    assert drawn == {(mode, loop) for mode, loops in rc.PROGRESSIONS.items() for loop in loops}


def _retuned_copy(source: Path, target: Path) -> Path:
    """A copy of an SF2 file whose samples all claim twice their sample rate (so every note sounds an octave
    higher and shorter): a second, different soundfont for the test."""
    data = bytearray(source.read_bytes())
    start = data.index(b"shdr")
    (size,) = struct.unpack_from("<I", data, start + 4)
    for record in range(start + 8, start + 8 + size - 46, 46):  # the last record is the terminator
        (rate_hz,) = struct.unpack_from("<I", data, record + 36)
        struct.pack_into("<I", data, record + 36, 2 * rate_hz)
    target.write_bytes(bytes(data))
    return target


def test_soundfont_switching_and_missing_soundfonts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = _clip("rock", "basic", duration_s=3.0, soundfont="timgm6mb")
    found, missing = rc.find_soundfonts(["timgm6mb"])
    assert not missing
    assert found["timgm6mb"].name == "TimGM6mb.sf2"
    first = rc.render_clip(clip)
    assert first.shape == (3 * SAMPLE_RATE_HZ, 2)
    assert np.isclose(np.abs(first).max(), 10 ** ((clip.gain_db - 1.0) / 20), rtol=1e-4)
    other = rc.render_clip(clip, _retuned_copy(found["timgm6mb"], tmp_path / "retuned.sf2"))
    assert np.abs(first - other).max() > 0.05  # another soundfont, another sound
    assert np.array_equal(rc.render_clip(clip), first)  # the synthesizer is reused between clips without leftovers

    monkeypatch.setattr(rc, "_SYSTEM_FOLDERS", ())
    found, missing = rc.find_soundfonts(cache_dir=tmp_path)
    assert set(found) == {"timgm6mb"}
    assert len(missing) == 3
    assert all("Debian package" in line for line in missing)
    assert any("fluid-soundfont-gm" in line for line in missing)
    with pytest.raises(FileNotFoundError, match="musescore-general-soundfont-small"):
        rc.render_clip(dataclasses.replace(clip, soundfont="musescore"), cache_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown soundfont"):
        rc.find_soundfonts(["nope"])
