"""One flat, JSON-ready record per track: the field names the CLI prints and the API and cache return."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Final

from sidecar.analyzers.loudness import AlbumGain
from sidecar.domain import AnalyzerOutput, AudioInfo, KeyResult, LoudnessResult, TempoResult

Scalar = str | int | float | None

SUMMARY_FIELDS: Final = (
    "duration_s",
    "sample_rate_hz",
    "channels",
    "bpm",
    "bpm_confidence",
    "bpm_alternative",
    "bpm_missing_reason",
    "key",
    "key_confidence",
    "camelot",
    "open_key",
    "key_missing_reason",
    "loudness_lufs",
    "loudness_range_lu",
    "true_peak_dbtp",
    "sample_peak_dbfs",
    "replaygain_track_gain_db",
    "replaygain_track_peak",
)
"""Every field of a summary, in print order. A field an analyzer did not produce is ``None``; the
``*_missing_reason`` fields say why the tempo or key analyzer found none (None when it found one)."""


def _rounded(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def summarize(
    info: AudioInfo | None, results: Mapping[str, AnalyzerOutput], *, duration_s: float | None = None
) -> dict[str, Scalar]:
    """Flatten one track's analyzer results into :data:`SUMMARY_FIELDS`.

    ``duration_s`` overrides the container's estimate (the decoder's count of samples is exact). Values are
    rounded to what is meaningful (BPM 0.01, loudness 0.01 LU/dB, confidences 0.001).
    """
    summary: dict[str, Scalar] = dict.fromkeys(SUMMARY_FIELDS)
    if info is not None:
        summary["duration_s"] = _rounded(duration_s if duration_s is not None else info.duration_s, 3)
        summary["sample_rate_hz"] = info.sample_rate_hz
        summary["channels"] = info.channels
    for result in results.values():
        if isinstance(result, TempoResult):
            summary["bpm"] = _rounded(result.bpm, 2)
            summary["bpm_confidence"] = _rounded(result.bpm_confidence, 3)
            summary["bpm_alternative"] = _rounded(result.bpm_alternative, 2)
            summary["bpm_missing_reason"] = result.bpm_missing_reason
        elif isinstance(result, KeyResult):
            summary["key_confidence"] = _rounded(result.key_confidence, 3)
            summary["key_missing_reason"] = result.key_missing_reason
            if result.key is not None:
                summary["key"] = result.key.name
                summary["camelot"] = result.key.camelot
                summary["open_key"] = result.key.open_key
        elif isinstance(result, LoudnessResult):
            summary["loudness_lufs"] = _rounded(result.loudness_lufs, 2)
            summary["loudness_range_lu"] = _rounded(result.loudness_range_lu, 2)
            summary["true_peak_dbtp"] = _rounded(result.true_peak_dbtp, 2)
            summary["sample_peak_dbfs"] = _rounded(result.sample_peak_dbfs, 2)
            summary["replaygain_track_gain_db"] = _rounded(result.replaygain_track_gain_db, 2)
            summary["replaygain_track_peak"] = _rounded(result.replaygain_track_peak, 6)
    return summary


def album_fields(gain: AlbumGain | None) -> dict[str, Scalar]:
    """``replaygain_album_gain_db`` and ``replaygain_album_peak`` (``None`` when no track had measurable audio)."""
    if gain is None:
        return {"replaygain_album_gain_db": None, "replaygain_album_peak": None}
    return {
        "replaygain_album_gain_db": _rounded(gain.replaygain_album_gain_db, 2),
        "replaygain_album_peak": _rounded(gain.replaygain_album_peak, 6),
    }
