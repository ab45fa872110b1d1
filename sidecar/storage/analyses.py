"""Analysis results: typed feature columns (and embeddings) written together with the status rows.

Analyzer names are the registry keys (``tempo``, ``key``, ``loudness``, ``embedding``); which columns a result
fills is decided by its type (:class:`~sidecar.domain.TempoResult` and friends), not by the name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypedDict

from psycopg import sql

from sidecar.analyzers.tags import TAGS_MODEL, canonical_tag
from sidecar.domain import (
    AnalyzerOutput,
    AudioInfo,
    BpmMissingReason,
    EmbeddingResult,
    KeyMissingReason,
    KeyResult,
    LoudnessResult,
    TempoResult,
    WaveformResult,
)
from sidecar.storage import overrides, status, tags, tracks, vectors, waveforms
from sidecar.storage.db import Connection


class AnalysisSummary(TypedDict):
    """A track's stored analysis with the field names of ``sonantica analyze --json`` (``None`` = not known)."""

    track_id: int
    host: str
    host_track_id: str
    path: str | None
    duration_s: float | None
    sample_rate_hz: int | None
    channels: int | None
    bpm: float | None
    bpm_confidence: float | None
    bpm_alternative: float | None  # the other metrical level's tempo when the confidence is low
    beat_offset_s: float | None  # the beat grid's first beat (beats at beat_offset_s + k * 60 / bpm)
    bpm_missing_reason: BpmMissingReason | None  # why the analyzer found no BPM; None when it found one or not yet
    key: str | None  # canonical spelling, e.g. "A minor"
    key_confidence: float | None
    camelot: str | None
    key_missing_reason: KeyMissingReason | None  # why the analyzer found no key; None when it found one or not yet
    loudness_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    replaygain_track_gain_db: float | None
    replaygain_track_peak: float | None
    analyzer_versions: dict[str, int]  # analyzers done for this track, at these versions
    failures: dict[str, str]  # analyzers given up on for this track (failed for good), with the reason
    embedding_models: list[str]
    tags: dict[str, float]  # canonical tag -> probability 0..1, most probable first; {} when not tagged
    tags_model: str | None  # the model the tags came from
    overridden: list[str]  # groups set by the user ("bpm", "key"): their values above are the user's
    analyzed: dict[str, object]  # the analyzer's own values of the overridden groups' fields
    host_bpm: float | None  # the BPM the host reports from the file's tags (stored by a sync); None when none


def _feature_columns(result: AnalyzerOutput, version: int) -> dict[str, object] | None:
    if isinstance(result, TempoResult):
        return {
            "bpm": result.bpm,
            "bpm_confidence": result.bpm_confidence,
            "bpm_alternative": result.bpm_alternative,
            "beat_offset_s": result.beat_offset_s,
            "bpm_missing_reason": result.bpm_missing_reason,
            "tempo_version": version,
        }
    if isinstance(result, KeyResult):
        key = result.key
        return {
            "key": None if key is None else key.name,
            "camelot": None if key is None else key.camelot,
            "key_confidence": result.key_confidence,
            "key_missing_reason": result.key_missing_reason,
            "key_version": version,
        }
    if isinstance(result, LoudnessResult):
        return {
            "loudness_lufs": result.loudness_lufs,
            "loudness_range_lu": result.loudness_range_lu,
            "true_peak_dbtp": result.true_peak_dbtp,
            "sample_peak_dbfs": result.sample_peak_dbfs,
            "replaygain_track_gain_db": result.replaygain_track_gain_db,
            "replaygain_track_peak": result.replaygain_track_peak,
            "loudness_version": version,
        }
    return None


async def _write_features(conn: Connection, track_id: int, columns: dict[str, object]) -> None:
    columns = await overrides.divert_analyzed(conn, track_id, columns)
    names = ["track_id", *columns]
    version_column = next(name for name in columns if name.endswith("_version"))
    query = sql.SQL(
        "INSERT INTO track_features AS f ({names}) VALUES ({values})"
        " ON CONFLICT (track_id) DO UPDATE SET {updates}, updated_at = now()"
        " WHERE f.{version} IS NULL OR f.{version} <= EXCLUDED.{version}"
    ).format(
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        values=sql.SQL(", ").join(map(sql.Placeholder, names)),
        updates=sql.SQL(", ").join(sql.SQL("{0} = EXCLUDED.{0}").format(sql.Identifier(name)) for name in columns),
        version=sql.Identifier(version_column),
    )
    await conn.execute(query, {"track_id": track_id, **columns})


async def store_results(
    conn: Connection,
    track_id: int,
    *,
    results: Mapping[str, AnalyzerOutput],
    versions: Mapping[str, int],
    failures: Mapping[str, str] | None = None,
    info: AudioInfo | None = None,
) -> None:
    """Store one track's results and mark those analyzers ``done`` (and ``failures`` ``failed``) atomically.

    Parameters
    ----------
    results
        ``{analyzer name: result}``; an :class:`EmbeddingResult` goes to its model (which must be registered,
        see :func:`sidecar.storage.vectors.register_model`), and its tag probabilities, when it has any, replace
        the track's tags (:func:`sidecar.storage.tags.store_tags`); a :class:`WaveformResult` goes to
        ``track_waveforms``.
    versions
        ``{analyzer name: version}`` for every analyzer in ``results`` (the version that produced it).
    failures
        ``{analyzer name: reason}`` for analyzers that failed on this track in the same pass.
    info
        What the decoder read from the file: stored on the track (codec, sample rate, channels, and its duration
        when it knows one).

    Feature columns are only overwritten by a result of the same or a newer analyzer version, so a re-delivered
    job from an older worker cannot downgrade them. On any error nothing is written (one transaction).
    Raises ``KeyError`` when an analyzer in ``results`` has no version.
    """
    done = {name: versions[name] for name in results}
    async with conn.transaction():
        await tracks.lock_track(conn, track_id)  # first, as an override does: no deadlock between the two
        # Vectors last: the key is then in track_features when the vector row is inserted (the insert trigger copies
        # it), instead of an update of that row that would insert it into the HNSW indexes a second time.
        for name, result in sorted(results.items(), key=lambda item: (isinstance(item[1], EmbeddingResult), item[0])):
            if isinstance(result, EmbeddingResult):
                await vectors.upsert_embedding(conn, track_id, result.model, result.vector)
                if result.tags:
                    pairs = [(canonical_tag(tag), probability) for tag, probability in result.tags]
                    await tags.store_tags(conn, track_id, model=TAGS_MODEL, version=done[name], tags=pairs)
                continue
            if isinstance(result, WaveformResult):
                await waveforms.store_waveform(conn, track_id, result, version=done[name])
                continue
            columns = _feature_columns(result, done[name])
            if columns is not None:
                await _write_features(conn, track_id, columns)
        if info is not None:
            await conn.execute(
                "UPDATE tracks SET codec = %s, sample_rate_hz = %s, channels = %s,"
                " duration_s = coalesce(%s, duration_s), updated_at = now() WHERE id = %s",
                (info.codec, info.sample_rate_hz, info.channels, info.duration_s, track_id),
            )
        await status.mark_done(conn, track_id, done)
        if failures:
            await status.mark_failed(conn, track_id, failures)


async def bpm_and_gain(
    conn: Connection, host: str, host_track_ids: Sequence[str]
) -> dict[str, tuple[float | None, float | None]]:
    """Our BPM and ReplayGain track gain (dB) by host track id, in one query, for those of ``host_track_ids``
    (tracks of ``host``) that have stored features; values not analysed are ``None``."""
    cur = await conn.execute(
        "SELECT t.host_track_id, f.bpm, f.replaygain_track_gain_db"
        " FROM tracks t JOIN track_features f ON f.track_id = t.id"
        " WHERE t.host = %s AND t.host_track_id = ANY(%s)",
        (host, list(host_track_ids)),
    )
    return {str(track_id): (bpm, gain) for track_id, bpm, gain in await cur.fetchall()}


async def get_analysis(conn: Connection, track_id: int) -> AnalysisSummary | None:
    """The stored analysis of a track (``None`` for an unknown track; ``None`` values for what is not analysed)."""
    cur = await conn.execute(
        """
        SELECT t.id, t.host, t.host_track_id, t.path, t.duration_s, t.sample_rate_hz, t.channels,
               f.bpm, f.bpm_confidence, f.key, f.key_confidence, f.camelot,
               f.loudness_lufs, f.loudness_range_lu, f.true_peak_dbtp, f.sample_peak_dbfs,
               f.replaygain_track_gain_db, f.replaygain_track_peak, f.bpm_alternative, f.beat_offset_s,
               t.host_bpm, f.bpm_missing_reason, f.key_missing_reason,
               (SELECT coalesce(jsonb_object_agg(s.analyzer, s.version), '{}')
                  FROM analysis_status s WHERE s.track_id = t.id AND s.state = 'done'),
               (SELECT coalesce(array_agg(e.model ORDER BY e.model), '{}')
                  FROM embeddings e WHERE e.track_id = t.id),
               (SELECT coalesce(jsonb_object_agg(s.analyzer, coalesce(s.last_error, 'no reason recorded')), '{}')
                  FROM analysis_status s WHERE s.track_id = t.id AND s.state = 'failed')
        FROM tracks t LEFT JOIN track_features f ON f.track_id = t.id
        WHERE t.id = %s
        """,
        (track_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    stored = await tags.get_tags(conn, track_id)
    user = await overrides.get_overrides(conn, track_id)
    return AnalysisSummary(
        track_id=row[0],
        host=row[1],
        host_track_id=row[2],
        path=row[3],
        duration_s=row[4],
        sample_rate_hz=row[5],
        channels=row[6],
        bpm=row[7],
        bpm_confidence=row[8],
        key=row[9],
        key_confidence=row[10],
        camelot=row[11],
        loudness_lufs=row[12],
        loudness_range_lu=row[13],
        true_peak_dbtp=row[14],
        sample_peak_dbfs=row[15],
        replaygain_track_gain_db=row[16],
        replaygain_track_peak=row[17],
        bpm_alternative=row[18],
        beat_offset_s=row[19],
        host_bpm=row[20],
        bpm_missing_reason=row[21],
        key_missing_reason=row[22],
        analyzer_versions={str(k): int(v) for k, v in row[23].items()},
        embedding_models=list(row[24]),
        failures={str(k): str(v) for k, v in row[25].items()},
        tags={} if stored is None else stored.probabilities,
        tags_model=None if stored is None else stored.model,
        overridden=user.groups,
        analyzed=user.analyzed,
    )
