"""Sonic Match, BPM-range and harmonic-mix playlists (ordered, with a reason per track)."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, HTTPException, status

from sidecar.analyzers.tags import parse_tags
from sidecar.api.deps import RuntimeDep, SettingsDep, TokenDep, WriterDep
from sidecar.api.schemas import (
    BpmRangeCreate,
    ErrorPublic,
    HarmonicMixCreate,
    PlaylistPublic,
    SonicMatchCreate,
    TagFiltersBase,
)
from sidecar.services.playlists import (
    PlaylistEntry,
    PlaylistWriter,
    bpm_range_playlist,
    harmonic_mix_playlist,
    query_model,
    sonic_match_playlist,
)
from sidecar.settings import Settings
from sidecar.storage.db import transaction
from sidecar.storage.vectors import SimilarFilters

log = logging.getLogger(__name__)

router = APIRouter(
    prefix="/api/playlists",
    tags=["playlists"],
    dependencies=[TokenDep],
    responses={404: {"model": ErrorPublic, "description": "unknown seed"}},
)

Kind = Literal["sonic-match", "bpm-range", "harmonic-mix"]


async def _answer(
    kind: Kind,
    name: str | None,
    entries: list[PlaylistEntry],
    *,
    write: bool,
    writer: PlaylistWriter | None,
    settings: Settings,
    default_name: str,
) -> PlaylistPublic:
    title = name or f"{settings.playlists.name_prefix}{default_name}"
    host_playlist_id = None
    if write and writer is not None and entries:
        host_playlist_id = await writer.upsert(title, [e.host_track_id for e in entries])
    elif write:
        log.info("playlist %r not written: %s", title, "no host configured" if writer is None else "it is empty")
    return PlaylistPublic.of(kind, title, entries, host_playlist_id)


def _tag_filters(body: TagFiltersBase, settings: Settings) -> SimilarFilters:
    """The mood/style filters of a request, names checked (``ValueError`` naming the allowed tags)."""
    return SimilarFilters(
        moods=parse_tags(body.moods, "mood"),
        exclude_moods=parse_tags(body.exclude_moods, "mood"),
        styles=parse_tags(body.styles, "genre"),
        exclude_styles=parse_tags(body.exclude_styles, "genre"),
        tag_min_probability=settings.tags.min_probability,
    )


@router.post("/sonic-match")
async def sonic_match(
    body: SonicMatchCreate, runtime: RuntimeDep, settings: SettingsDep, writer: WriterDep
) -> PlaylistPublic:
    """ "More like this": tracks nearest to the seeds' mean embedding, nearest first."""
    try:
        tags = _tag_filters(body, settings)
        filters = SimilarFilters(
            bpm_window_pct=body.bpm_window_pct,
            half_double=body.half_double,
            camelot_compatible=body.camelot_compatible,
            max_per_artist=body.max_per_artist,
            max_per_album=body.max_per_album,
            exclude_genres=tuple(body.exclude_genres),
            exclude_libraries=tuple(body.exclude_libraries),
            moods=tags.moods,
            exclude_moods=tags.exclude_moods,
            styles=tags.styles,
            exclude_styles=tags.exclude_styles,
            tag_min_probability=tags.tag_min_probability,
        )
        seed_ids = list(dict.fromkeys(body.seed_track_ids))
        async with transaction(runtime.pool) as conn:
            model = await query_model(
                conn, seed_ids, configured=settings.embedding.model, fallback=settings.embedding.fallback
            )
            entries = await sonic_match_playlist(
                conn,
                seed_ids,
                model=model,
                limit=body.limit,
                filters=filters,
            )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    seeds = ", ".join(map(str, body.seed_track_ids[:3]))
    return await _answer(
        "sonic-match",
        body.name,
        entries,
        write=body.write_to_host,
        writer=writer,
        settings=settings,
        default_name=seeds,
    )


@router.post("/bpm-range")
async def bpm_range(
    body: BpmRangeCreate, runtime: RuntimeDep, settings: SettingsDep, writer: WriterDep
) -> PlaylistPublic:
    """Tracks between ``bpm_min`` and ``bpm_max`` (half/double tolerant), ordered by rising BPM."""
    try:
        tag_filters = _tag_filters(body, settings)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    async with transaction(runtime.pool) as conn:
        entries = await bpm_range_playlist(
            conn,
            bpm_min=body.bpm_min,
            bpm_max=body.bpm_max,
            half_double=body.half_double,
            limit=body.limit,
            tag_filters=tag_filters,
        )
    return await _answer(
        "bpm-range",
        body.name,
        entries,
        write=body.write_to_host,
        writer=writer,
        settings=settings,
        default_name=f"{body.bpm_min:g}-{body.bpm_max:g} BPM",
    )


@router.post("/harmonic-mix")
async def harmonic_mix(
    body: HarmonicMixCreate, runtime: RuntimeDep, settings: SettingsDep, writer: WriterDep
) -> PlaylistPublic:
    """A DJ-style path from the seed: each step key-compatible and a small BPM change."""
    async with transaction(runtime.pool) as conn:
        entries = await harmonic_mix_playlist(
            conn,
            body.seed_track_id,
            limit=body.limit,
            max_bpm_step_pct=body.max_bpm_step_pct,
            max_bpm_drift_pct=body.max_bpm_drift_pct,
            min_key_confidence=body.min_key_confidence,
        )
    return await _answer(
        "harmonic-mix",
        body.name,
        entries,
        write=body.write_to_host,
        writer=writer,
        settings=settings,
        default_name=f"harmonic mix from {body.seed_track_id}",
    )
