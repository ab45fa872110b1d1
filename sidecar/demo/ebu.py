"""EBU loudness test signals, generated in code, with their expected values.

Reproduced from the descriptions in EBU Tech 3341 (loudness and true peak) and Tech 3342 (loudness range); the
EBU's own WAV files are not downloaded. All tone cases are 1 kHz sines at 48 kHz whose level is the sine's peak
in dBFS on every listed channel, joined with continuous phase:

- ``3341-1`` .. ``3341-6``: Tech 3341 table 1, integrated loudness -23.0 LUFS (+/-0.1 LU). Case 6 is the
  5-channel file (L, R, C, Ls, Rs); ``3341-6-5.1`` adds an LFE channel (FFmpeg 5.1 order L, R, C, LFE, Ls, Rs)
  carrying a 60 Hz tone at -20 dBFS, which BS.1770 excludes, so the expected value stays -23.0 LUFS.
- ``3341-15`` .. ``3341-19``: Tech 3341 true-peak cases, stereo sines at 48 kHz (fs/4, fs/6, fs/8) with a phase
  offset so that no sample lands on the crest: amplitude 0.5 (-6.0 dBTP) and, for case 19, 1.41 at fs/4 and 45
  degrees (+3.0 dBTP while the sample peak is about 0 dBFS). Tolerance +0.2/-0.4 dB. Tech 3341 does not
  describe the files' edges; a sine cut off abruptly is a step whose band-limited reconstruction overshoots
  (libebur128 reads up to -5.4 dBTP on case 18 with hard edges), so these 2-s tones fade in and out over 20 ms
  (raised cosine) and the measured peak is the steady tone's.
- ``tp-pulse-0`` .. ``tp-pulse-3``: in the style of Tech 3341 cases 20-23 (inter-sample peaks of 0 dBTP at four
  sub-sample offsets), but our own construction, not the EBU signal: one Hann-windowed sinc pulse (cut-off fs/4)
  of crest 1.0 placed 0, 1/8, 3/8 and 1/2 of a sample after a sample instant; expected 0.0 dBTP.
- ``3342-1`` .. ``3342-4``: Tech 3342 LRA cases 1-4, stereo tone sequences, expected LRA 10, 5, 20 and 15 LU
  (+/-1 LU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

EBU_RATE_HZ = 48000
TONE_HZ = 1000.0
_FADE_S = 0.02

Signal = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True)
class EbuCase:
    """One test signal and what a conforming meter reads on it (None: the case does not specify that value)."""

    name: str
    description: str
    sample_rate_hz: int
    expected_loudness_lufs: float | None = None
    expected_true_peak_dbtp: float | None = None
    expected_range_lu: float | None = None
    render: Callable[[], Signal] = field(repr=False, compare=False)


def _tone_sequence(segments: tuple[tuple[tuple[float, ...], float], ...]) -> Callable[[], Signal]:
    """Renderer for 1 kHz tone segments: each is (per-channel peak level in dBFS, duration in seconds)."""

    def render() -> Signal:
        parts = []
        start = 0
        for levels_dbfs, duration_s in segments:
            n = round(duration_s * EBU_RATE_HZ)
            phase = 2.0 * math.pi * TONE_HZ * (start + np.arange(n)) / EBU_RATE_HZ
            amplitudes = 10.0 ** (np.asarray(levels_dbfs, dtype=np.float64) / 20.0)
            parts.append((amplitudes[:, None] * np.sin(phase)[None, :]).astype(np.float32))
            start += n
        return np.concatenate(parts, axis=1)

    return render


def _stereo(*segments: tuple[float, float]) -> Callable[[], Signal]:
    return _tone_sequence(tuple(((level, level), duration) for level, duration in segments))


def _five_one() -> Signal:
    five = _tone_sequence((((-28.0, -28.0, -24.0, -30.0, -30.0), 20.0),))()
    n = five.shape[1]
    lfe = (10.0 ** (-20.0 / 20.0) * np.sin(2.0 * math.pi * 60.0 * np.arange(n) / EBU_RATE_HZ)).astype(np.float32)
    return np.vstack([five[:3], lfe[None, :], five[3:]])


def _offset_sine(cycles_per_sample: float, amplitude: float, phase_deg: float) -> Callable[[], Signal]:
    def render() -> Signal:
        n = np.arange(EBU_RATE_HZ * 2)
        x = amplitude * np.sin(2.0 * math.pi * cycles_per_sample * n + math.radians(phase_deg))
        fade = round(_FADE_S * EBU_RATE_HZ)
        ramp = 0.5 - 0.5 * np.cos(math.pi * np.arange(fade) / fade)
        x[:fade] *= ramp
        x[-fade:] *= ramp[::-1]
        return np.vstack([x, x]).astype(np.float32)

    return render


def _pulse(offset_samples: float) -> Callable[[], Signal]:
    def render() -> Signal:
        n = np.arange(EBU_RATE_HZ)
        t = n - (EBU_RATE_HZ // 2 + offset_samples)
        half_width = 64.0
        window = np.where(np.abs(t) < half_width, 0.5 + 0.5 * np.cos(math.pi * t / half_width), 0.0)
        x = np.sinc(0.5 * t) * window
        return np.vstack([x, x]).astype(np.float32)

    return render


def _loudness_case(name: str, description: str, render: Callable[[], Signal], expected: float = -23.0) -> EbuCase:
    return EbuCase(
        name=name,
        description=description,
        sample_rate_hz=EBU_RATE_HZ,
        expected_loudness_lufs=expected,
        render=render,
    )


def tech3341_loudness_cases() -> tuple[EbuCase, ...]:
    """EBU Tech 3341 cases 1-6 (and the 5.1 variant of case 6): integrated loudness -23.0 LUFS (case 2: -33.0)."""
    return (
        _loudness_case("3341-1", "stereo 1 kHz -23 dBFS, 20 s", _stereo((-23.0, 20.0))),
        _loudness_case("3341-2", "stereo 1 kHz -33 dBFS, 20 s", _stereo((-33.0, 20.0)), expected=-33.0),
        _loudness_case("3341-3", "-36/-23/-36 dBFS, 10/60/10 s", _stereo((-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0))),
        _loudness_case(
            "3341-4",
            "-72/-36/-23/-36/-72 dBFS, 10/10/60/10/10 s",
            _stereo((-72.0, 10.0), (-36.0, 10.0), (-23.0, 60.0), (-36.0, 10.0), (-72.0, 10.0)),
        ),
        _loudness_case(
            "3341-5", "-26/-20/-26 dBFS, 20/20.1/20 s", _stereo((-26.0, 20.0), (-20.0, 20.1), (-26.0, 20.0))
        ),
        _loudness_case(
            "3341-6",
            "5 ch L,R -28, C -24, Ls,Rs -30 dBFS, 20 s",
            _tone_sequence((((-28.0, -28.0, -24.0, -30.0, -30.0), 20.0),)),
        ),
        _loudness_case("3341-6-5.1", "case 6 plus LFE 60 Hz -20 dBFS", _five_one),
    )


def tech3341_true_peak_cases() -> tuple[EbuCase, ...]:
    """Tech 3341 true-peak cases 15-19 and our pulse cases in the style of 20-23 (see the module docstring)."""
    sines = (
        ("3341-15", 0.25, 0.5, 0.0, -6.0),
        ("3341-16", 0.25, 0.5, 45.0, -6.0),
        ("3341-17", 1.0 / 6.0, 0.5, 60.0, -6.0),
        ("3341-18", 0.125, 0.5, 67.5, -6.0),
        ("3341-19", 0.25, 1.41, 45.0, 3.0),
    )
    cases = [
        EbuCase(
            name=name,
            description=f"fs/{round(1 / cycles)} sine, amplitude {amplitude}, phase {phase} deg",
            sample_rate_hz=EBU_RATE_HZ,
            expected_true_peak_dbtp=expected,
            render=_offset_sine(cycles, amplitude, phase),
        )
        for name, cycles, amplitude, phase, expected in sines
    ]
    for index, offset in enumerate((0.0, 0.125, 0.375, 0.5)):
        cases.append(
            EbuCase(
                name=f"tp-pulse-{index}",
                description=f"sinc pulse crest 1.0, {offset} sample after a sample instant",
                sample_rate_hz=EBU_RATE_HZ,
                expected_true_peak_dbtp=0.0,
                render=_pulse(offset),
            )
        )
    return tuple(cases)


def tech3342_range_cases() -> tuple[EbuCase, ...]:
    """EBU Tech 3342 LRA cases 1-4."""
    return (
        EbuCase(
            name="3342-1",
            description="-20/-30 dBFS, 20 s each",
            sample_rate_hz=EBU_RATE_HZ,
            expected_range_lu=10.0,
            render=_stereo((-20.0, 20.0), (-30.0, 20.0)),
        ),
        EbuCase(
            name="3342-2",
            description="-20/-15 dBFS, 20 s each",
            sample_rate_hz=EBU_RATE_HZ,
            expected_range_lu=5.0,
            render=_stereo((-20.0, 20.0), (-15.0, 20.0)),
        ),
        EbuCase(
            name="3342-3",
            description="-40/-20 dBFS, 20 s each",
            sample_rate_hz=EBU_RATE_HZ,
            expected_range_lu=20.0,
            render=_stereo((-40.0, 20.0), (-20.0, 20.0)),
        ),
        EbuCase(
            name="3342-4",
            description="-50/-35/-20/-35/-50 dBFS, 20 s each",
            sample_rate_hz=EBU_RATE_HZ,
            expected_range_lu=15.0,
            render=_stereo((-50.0, 20.0), (-35.0, 20.0), (-20.0, 20.0), (-35.0, 20.0), (-50.0, 20.0)),
        ),
    )


def all_cases() -> tuple[EbuCase, ...]:
    """Every case above, loudness first."""
    return tech3341_loudness_cases() + tech3341_true_peak_cases() + tech3342_range_cases()
