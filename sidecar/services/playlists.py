"""Sonic Match playlists: "more like this", BPM range and harmonic mix, each track with the reason it is there.

The ordering rules are pure functions over candidate rows (:func:`order_by_bpm`, :func:`harmonic_path`); the
``*_playlist`` coroutines fetch candidates from storage and apply them. Writing the result to the host goes
through :class:`PlaylistWriter` (the host adapter provides it; ``None`` when no host is configured).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from adapters.base import HostAdapter
from sidecar.analyzers.embedding import TIMBRE_MODEL
from sidecar.domain import KeySignature
from sidecar.errors import NotFoundError
from sidecar.storage import catalog, vectors
from sidecar.storage.catalog import TempoTrack
from sidecar.storage.db import Connection
from sidecar.storage.vectors import SimilarFilters

HARMONIC_CANDIDATES = 500
"""Tracks a harmonic mix walks through: those nearest to the seed's BPM (a path takes the smallest steps first)."""


class PlaylistWriter(Protocol):
    """Creates or replaces a playlist on the host."""

    async def upsert(self, name: str, host_track_ids: Sequence[str]) -> str:
        """Create the playlist ``name`` (or replace the tracks of the existing one); return the host playlist id."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaylistEntry:
    """One track of a generated playlist and why it is there."""

    track_id: int
    host: str
    host_track_id: str
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float | None
    camelot: str | None
    distance: float | None  # cosine distance to the seeds (Sonic Match only), 0..2
    reason: str


def _effective_bpm(bpm: float, low: float, high: float) -> float:
    """``bpm``, or its double / half when that one falls in ``[low, high]`` (half/double-time tolerance)."""
    for candidate in (bpm, bpm * 2, bpm / 2):
        if low <= candidate <= high:
            return candidate
    return bpm


def _entry(track: TempoTrack, reason: str) -> PlaylistEntry:
    return PlaylistEntry(
        track_id=track.track_id,
        host=track.host,
        host_track_id=track.host_track_id,
        title=track.title,
        artist=track.artist,
        album=track.album,
        duration_s=track.duration_s,
        bpm=track.bpm,
        camelot=track.camelot,
        distance=None,
        reason=reason,
    )


def order_by_bpm(tracks: Sequence[TempoTrack], *, bpm_min: float, bpm_max: float) -> list[PlaylistEntry]:
    """Tracks in rising effective BPM (half/double-time folded into the range), ties by track id. The reason says
    when the analyzer was unsure of the tempo (it names ``bpm_alternative``, the other metrical level)."""
    ranked = sorted(tracks, key=lambda t: (_effective_bpm(t.bpm, bpm_min, bpm_max), t.track_id))
    entries = []
    for track in ranked:
        effective = _effective_bpm(track.bpm, bpm_min, bpm_max)
        felt = "" if effective == track.bpm else f", felt as {effective:.1f} BPM (half/double time)"
        unsure = "" if track.bpm_alternative is None else f" (uncertain: may be {track.bpm_alternative:.1f} BPM)"
        entries.append(_entry(track, f"{track.bpm:.1f} BPM{felt} in {bpm_min:g}-{bpm_max:g}{unsure}"))
    return entries


@functools.cache
def _neighbours(camelot: str) -> frozenset[str]:
    """The Camelot codes compatible with ``camelot`` (24 keys: parsed once each)."""
    return frozenset(KeySignature.parse(camelot).compatible_camelot())


def _compatible(a: str | None, b: str | None) -> bool:
    if a is None or b is None:
        return False
    return b in _neighbours(a)


def harmonic_path(
    seed: TempoTrack, candidates: Sequence[TempoTrack], *, limit: int, max_bpm_step_pct: float
) -> list[PlaylistEntry]:
    """A DJ-style path from ``seed``: each next track is key-compatible (Camelot neighbours) with the current one
    and within ``max_bpm_step_pct`` % of its BPM; the smallest BPM step wins (ties: same key first, then id).

    Stops after ``limit`` tracks (the seed included) or when no candidate is left that fits.
    """
    path = [_entry(seed, f"seed: {seed.bpm:.1f} BPM, {seed.camelot or 'no key'}")]
    used = {seed.track_id}
    current = seed
    while len(path) < limit:
        options = [
            c
            for c in candidates
            if c.track_id not in used
            and _compatible(current.camelot, c.camelot)
            and abs(c.bpm - current.bpm) <= current.bpm * max_bpm_step_pct / 100
        ]
        if not options:
            break
        nxt = min(options, key=lambda c: (abs(c.bpm - current.bpm), c.camelot != current.camelot, c.track_id))
        step_pct = (nxt.bpm - current.bpm) / current.bpm * 100
        path.append(
            _entry(nxt, f"{current.camelot} -> {nxt.camelot}, {nxt.bpm:.1f} BPM ({step_pct:+.1f} % from previous)")
        )
        used.add(nxt.track_id)
        current = nxt
    return path


async def sonic_match_playlist(
    conn: Connection, seed_track_ids: Sequence[int], *, model: str, limit: int, filters: SimilarFilters
) -> list[PlaylistEntry]:
    """The tracks nearest to the seeds' mean vector (see :func:`sidecar.storage.vectors.similar`), nearest first."""
    rows = await vectors.similar(conn, seed_track_ids, model=model, limit=limit, filters=filters)
    return [
        PlaylistEntry(
            track_id=r.track_id,
            host=r.host,
            host_track_id=r.host_track_id,
            title=r.title,
            artist=r.artist,
            album=r.album,
            duration_s=r.duration_s,
            bpm=r.bpm,
            camelot=r.camelot,
            distance=r.distance,
            reason=f"sounds like the seed{'s' if len(seed_track_ids) > 1 else ''} (distance {r.distance:.3f})"
            + (f", {r.bpm:.1f} BPM" if r.bpm is not None else "")
            + (f", {r.camelot}" if r.camelot else ""),
        )
        for r in rows
    ]


async def bpm_range_playlist(
    conn: Connection,
    *,
    bpm_min: float,
    bpm_max: float,
    half_double: bool,
    limit: int,
    tag_filters: SimilarFilters | None = None,
) -> list[PlaylistEntry]:
    """Tracks in the BPM range (half/double tolerant), ordered smoothly by rising BPM; at most ``limit``, spread
    evenly over every matching track (:func:`sidecar.storage.catalog.tempo_spread`).

    Only the mood/style fields of ``tag_filters`` apply (see :class:`SimilarFilters`)."""
    tags = tag_filters or SimilarFilters()
    rows = await catalog.tempo_spread(
        conn,
        bpm_min=bpm_min,
        bpm_max=bpm_max,
        half_double=half_double,
        limit=limit,
        moods=tags.moods,
        styles=tags.styles,
        exclude_tags=tags.exclude_moods + tags.exclude_styles,
        tag_min_probability=tags.tag_min_probability,
    )
    return order_by_bpm(rows, bpm_min=bpm_min, bpm_max=bpm_max)


async def harmonic_mix_playlist(
    conn: Connection,
    seed_track_id: int,
    *,
    limit: int,
    max_bpm_step_pct: float,
    max_bpm_drift_pct: float,
    min_key_confidence: float = 0.0,
) -> list[PlaylistEntry]:
    """A harmonic-mix path from the seed through keyed tracks within ``max_bpm_drift_pct`` % of the seed's BPM
    whose ``key_confidence`` is at least ``min_key_confidence`` (0..1; 0: all of them; the seed and keys set by
    hand always pass); the candidates are the :data:`HARMONIC_CANDIDATES` of them nearest to the seed's BPM.

    Raises ``NotFoundError`` when the seed is unknown or has no BPM or key.
    """
    seed_rows = await catalog.tempo_tracks(
        conn, bpm_min=0.0, bpm_max=float("inf"), keyed_only=True, track_id=seed_track_id
    )
    if not seed_rows:
        raise NotFoundError(f"track {seed_track_id} is unknown or has no analysed BPM and key")
    seed = seed_rows[0]
    drift = seed.bpm * max_bpm_drift_pct / 100
    candidates = await catalog.tempo_neighbours(
        conn,
        bpm=seed.bpm,
        bpm_min=seed.bpm - drift,
        bpm_max=seed.bpm + drift,
        limit=HARMONIC_CANDIDATES,
        min_key_confidence=min_key_confidence,
    )
    return harmonic_path(seed, candidates, limit=limit, max_bpm_step_pct=max_bpm_step_pct)


class HostPlaylistWriter:
    """The :class:`PlaylistWriter` of a configured host: create-or-replace by name through its adapter."""

    def __init__(self, adapter: HostAdapter) -> None:
        self.adapter = adapter

    async def upsert(self, name: str, host_track_ids: Sequence[str]) -> str:
        """Create the playlist ``name`` on the host, or replace its tracks in place; returns the host's id."""
        return await self.adapter.upsert_playlist(name, list(host_track_ids))


def search_models(configured: str, *, fallback: bool) -> tuple[str, ...]:
    """The embedding models a search may use, preferred first: the configured one, then ``timbre-v1`` when
    fallback is on (the worker falls back to it when the configured model's weights are missing)."""
    return (configured,) if not fallback or configured == TIMBRE_MODEL else (configured, TIMBRE_MODEL)


async def query_model(conn: Connection, seed_track_ids: Sequence[int], *, configured: str, fallback: bool) -> str:
    """The embedding model to search with: the first of :func:`search_models` with a vector of any seed (the
    configured one when none has). One query never mixes models."""
    models = search_models(configured, fallback=fallback)
    if len(models) == 1:
        return configured
    found = await vectors.models_with_vectors(conn, seed_track_ids, models)
    return next((model for model in models if model in found), configured)
