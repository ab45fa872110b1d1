"""Track analysis, similar tracks and the on-play trigger."""

from __future__ import annotations

import base64
import json
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, HTTPException, Path, Query, Response, status
from pydantic import Field

from sidecar.analyzers.tags import parse_tags
from sidecar.api.deps import HostAdapterDep, RuntimeDep, SettingsDep, TokenDep, VersionsDep
from sidecar.api.schemas import (
    ErrorPublic,
    LibraryPagePublic,
    LibraryTrackPublic,
    OnPlayPublic,
    OverridesIn,
    QuickAnalysisPublic,
    SimilarTrackPublic,
    SimilarTracksPublic,
    TrackAnalysisPublic,
)
from sidecar.domain import KeySignature, TrackKey
from sidecar.errors import NotFoundError
from sidecar.services.onplay import OnPlayState, request_analysis
from sidecar.services.overrides import override_track
from sidecar.services.playlists import search_models
from sidecar.storage import analyses, library, tracks, vectors
from sidecar.storage.db import transaction
from sidecar.storage.vectors import SimilarFilters

router = APIRouter(prefix="/api/tracks", tags=["tracks"])

HostPath = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="host kind, e.g. navidrome")]
HostTrackIdPath = Annotated[str, Path(min_length=1, max_length=512, description="the host's track id")]
TrackIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Sonántica track id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorPublic, "description": "unknown track"}}
NO_FILE: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorPublic, "description": "the track has no readable file on the mount: it cannot be analysed"}
}
NO_FILE_DETAIL = (
    "{host} track {host_track_id!r} has no readable file on the library mount, so it cannot be analysed;"
    " check SONANTICA_LIBRARY_DIR / SONANTICA_PATH_MAP and sync again"
)


def track_key(host: str, host_track_id: str) -> TrackKey:
    """A validated key (422 for an id with control characters)."""
    if not host_track_id.isprintable():
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "host_track_id must be printable characters")
    return TrackKey(host, host_track_id)


def analysis_path(key: TrackKey) -> str:
    """The URL of a track's analysis (the status URL of an on-play answer)."""
    return f"/api/tracks/{key.host}/{quote(key.host_track_id, safe='')}/analysis"


def _camelots(key: str | None, compatible: bool) -> tuple[str, ...]:
    """The Camelot codes a ``key`` filter keeps (422 for a key that does not parse)."""
    if key is None:
        if compatible:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "camelot_compatible needs a key")
        return ()
    try:
        parsed = KeySignature.parse(key)
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "key must be a key name such as 'A minor' or a Camelot code such as 8A",
        ) from None
    return parsed.compatible_camelot() if compatible else (parsed.camelot,)


@router.get("", responses={422: {"model": ErrorPublic, "description": "filters that cannot apply"}})
async def list_library(
    runtime: RuntimeDep,
    q: Annotated[str | None, Query(max_length=200, description="title, artist or album contains this")] = None,
    track_id: Annotated[
        list[Annotated[int, Field(ge=1, le=2**63 - 1)]], Query(max_length=200, description="repeatable: only these")
    ] = [],  # noqa: B006
    bpm_min: Annotated[float | None, Query(allow_inf_nan=False, ge=0, le=1000)] = None,
    bpm_max: Annotated[float | None, Query(allow_inf_nan=False, ge=0, le=1000)] = None,
    half_double: Annotated[bool, Query(description="accept half/double tempo in the BPM filter")] = False,
    key: Annotated[
        str | None, Query(max_length=20, description="a key ('A minor', 'F#m') or a Camelot code ('8A')")
    ] = None,
    camelot_compatible: Annotated[bool, Query(description="also the Camelot neighbours of key")] = False,
    loudness_min_lufs: Annotated[float | None, Query(allow_inf_nan=False, ge=-100, le=10)] = None,
    loudness_max_lufs: Annotated[float | None, Query(allow_inf_nan=False, ge=-100, le=10)] = None,
    sort: Annotated[library.SortField, Query(description="order of the listing")] = "artist",
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    after: Annotated[
        str | None,
        Query(max_length=4000, description="a page's next_cursor: start after its last row (then skip offset)"),
    ] = None,
) -> LibraryPagePublic:
    """The library: search and filters, one page at a time (``total`` counts every match). ``after`` pages by
    the last row's place in the order (keyset: a deep page costs what the first does); 422 when it is no cursor
    of this ``sort``."""
    try:
        filters = library.LibraryFilters(
            query=q.strip() or None if q is not None else None,
            track_ids=tuple(track_id),
            bpm_min=bpm_min,
            bpm_max=bpm_max,
            half_double=half_double,
            camelots=_camelots(key, camelot_compatible),
            loudness_min_lufs=loudness_min_lufs,
            loudness_max_lufs=loudness_max_lufs,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    place = None if after is None else _decode_cursor(sort, after)
    async with transaction(runtime.pool) as conn:
        page = await library.list_tracks(conn, filters, limit=limit, offset=offset, sort=sort, after=place)
    return LibraryPagePublic(
        total=page.total,
        limit=limit,
        offset=offset,
        tracks=[LibraryTrackPublic.of(t) for t in page.tracks],
        next_cursor=None if page.next_after is None else _encode_cursor(sort, page.next_after),
    )


def _encode_cursor(sort: str, place: library.SortKey) -> str:
    """An opaque cursor: the order's name and the row's place in it, as URL-safe base64 of JSON."""
    return base64.urlsafe_b64encode(json.dumps([sort, *place]).encode()).decode().rstrip("=")


def _decode_cursor(sort: str, cursor: str) -> library.SortKey:
    """The place a cursor of :func:`_encode_cursor` holds (422 when it does not decode or is of another order)."""
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(decoded, list) or not decoded or decoded[0] != sort:
            raise ValueError(cursor)
        place = tuple(decoded[1:])
        library.check_after(sort, place)
    except (ValueError, RecursionError):  # ValueError: also json's, base64's and UTF-8's errors
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT, f"after is not a cursor of the {sort} order"
        ) from None
    return place


@router.get("/{track_id}/analysis", responses=NOT_FOUND)
async def analysis_by_id(track_id: TrackIdPath, runtime: RuntimeDep) -> TrackAnalysisPublic:
    """The stored analysis of a track by its Sonántica id."""
    async with transaction(runtime.pool) as conn:
        summary = await analyses.get_analysis(conn, track_id)
    if summary is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no track with id {track_id}")
    return TrackAnalysisPublic.of(summary)


@router.get("/{host}/{host_track_id}/analysis", responses={**NOT_FOUND, **NO_FILE})
async def analysis_by_host_id(
    host: HostPath, host_track_id: HostTrackIdPath, runtime: RuntimeDep
) -> TrackAnalysisPublic:
    """The stored analysis of a track by the host's id (409 when it has none and no file it could come from)."""
    key = track_key(host, host_track_id)
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track_by_key(conn, key)
        summary = None if record is None else await analyses.get_analysis(conn, record.id)
    if summary is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {host} track with id {host_track_id!r}; sync the library")
    if summary["path"] is None and not summary["analyzer_versions"]:
        raise HTTPException(status.HTTP_409_CONFLICT, NO_FILE_DETAIL.format(host=host, host_track_id=host_track_id))
    return TrackAnalysisPublic.of(summary)


OVERRIDE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **NOT_FOUND,
    422: {"model": ErrorPublic, "description": "a key that does not parse, or no field named"},
}


async def _override(
    runtime: RuntimeDep, adapter: HostAdapterDep, track_id: int, changes: dict[str, float | KeySignature | None]
) -> TrackAnalysisPublic:
    try:
        summary = await override_track(runtime, track_id, changes, adapter)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return TrackAnalysisPublic.of(summary)


@router.patch("/{track_id}/overrides", dependencies=[TokenDep], responses=OVERRIDE_RESPONSES)
async def override_analysis(
    track_id: TrackIdPath, body: OverridesIn, runtime: RuntimeDep, adapter: HostAdapterDep
) -> TrackAnalysisPublic:
    """Set the track's BPM and/or key by hand (a wrong octave, a relative key): playlists, filters and the host's
    tags use them at once and later analyses keep them; ``null`` gives a field back to the analyzer."""
    if not body.model_fields_set:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "name bpm and/or key (null gives it back)")
    changes: dict[str, float | KeySignature | None] = {}
    if "bpm" in body.model_fields_set:
        changes["bpm"] = body.bpm
    if "key" in body.model_fields_set:
        try:
            changes["key"] = None if body.key is None else KeySignature.parse(body.key)
        except ValueError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return await _override(runtime, adapter, track_id, changes)


@router.delete("/{track_id}/overrides", dependencies=[TokenDep], responses=NOT_FOUND)
async def remove_overrides(track_id: TrackIdPath, runtime: RuntimeDep, adapter: HostAdapterDep) -> TrackAnalysisPublic:
    """Give the track's BPM and key back to the analyzers (their latest readings return at once)."""
    return await _override(runtime, adapter, track_id, {"bpm": None, "key": None})


@router.get(
    "/{track_id}/similar",
    responses={**NOT_FOUND, 422: {"model": ErrorPublic, "description": "filters that cannot apply"}},
)
async def similar_tracks(
    track_id: TrackIdPath,
    runtime: RuntimeDep,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 20,
    bpm_min: Annotated[float | None, Query(allow_inf_nan=False, ge=0, le=1000)] = None,
    bpm_max: Annotated[float | None, Query(allow_inf_nan=False, ge=0, le=1000)] = None,
    bpm_window_pct: Annotated[
        float | None, Query(allow_inf_nan=False, ge=0, le=100, description="+-% around the seed's BPM")
    ] = None,
    half_double: Annotated[bool, Query(description="accept half/double tempo in the BPM filter")] = False,
    camelot_compatible: Annotated[bool, Query(description="only Camelot neighbours of the seed's key")] = False,
    exclude_duplicates: bool = True,
    max_per_artist: Annotated[int | None, Query(ge=1, le=1000)] = None,
    max_per_album: Annotated[int | None, Query(ge=1, le=1000)] = None,
    duration_min_s: Annotated[float | None, Query(allow_inf_nan=False, ge=0, le=86400)] = None,
    duration_max_s: Annotated[float | None, Query(allow_inf_nan=False, ge=0, le=86400)] = None,
    exclude_genre: Annotated[list[str], Query(max_length=100, description="repeatable; case-insensitive")] = [],  # noqa: B006
    exclude_library: Annotated[list[str], Query(max_length=100, description="repeatable")] = [],  # noqa: B006
    mood: Annotated[list[str], Query(max_length=10, description="repeatable: any of these mood tags")] = [],  # noqa: B006
    exclude_mood: Annotated[list[str], Query(max_length=10, description="repeatable: none of these moods")] = [],  # noqa: B006
    style: Annotated[list[str], Query(max_length=28, description="repeatable: any of these genre tags")] = [],  # noqa: B006
    exclude_style: Annotated[list[str], Query(max_length=28, description="repeatable: none of these genres")] = [],  # noqa: B006
) -> SimilarTracksPublic:
    """Tracks that sound like the seed (cosine, configured embedding model), filters applied in the same query."""
    try:
        filters = SimilarFilters(
            bpm_min=bpm_min,
            bpm_max=bpm_max,
            bpm_window_pct=bpm_window_pct,
            half_double=half_double,
            camelot_compatible=camelot_compatible,
            exclude_duplicates=exclude_duplicates,
            max_per_artist=max_per_artist,
            max_per_album=max_per_album,
            duration_min_s=duration_min_s,
            duration_max_s=duration_max_s,
            exclude_genres=tuple(exclude_genre),
            exclude_libraries=tuple(exclude_library),
            moods=parse_tags(mood, "mood"),
            exclude_moods=parse_tags(exclude_mood, "mood"),
            styles=parse_tags(style, "genre"),
            exclude_styles=parse_tags(exclude_style, "genre"),
            tag_min_probability=settings.tags.min_probability,
        )
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    models = search_models(settings.embedding.model, fallback=settings.embedding.fallback)
    async with transaction(runtime.pool) as conn:  # two statements: the seed (404 when unknown), the search
        try:
            found = await vectors.similar_in_first_model(conn, [track_id], models=models, limit=limit, filters=filters)
        except ValueError as exc:  # a filter the seed cannot anchor (no BPM / no key)
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return SimilarTracksPublic(
        seed_track_id=track_id, model=found.model, tracks=[SimilarTrackPublic.of(r) for r in found.tracks]
    )


@router.post(
    "/{host}/{host_track_id}/on-play",
    dependencies=[TokenDep],
    responses={
        202: {"model": OnPlayPublic, "description": "queued at on-play priority; Location is the status URL"},
        **NOT_FOUND,
        **NO_FILE,
    },
)
async def on_play(
    host: HostPath, host_track_id: HostTrackIdPath, runtime: RuntimeDep, versions: VersionsDep, response: Response
) -> OnPlayPublic:
    """A track starts playing: 200 with its analysis when current, else 202 after queueing it at on-play priority."""
    key = track_key(host, host_track_id)
    outcome = await request_analysis(runtime, key, versions)
    if outcome.state is OnPlayState.NOT_FOUND:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no {host} track with id {host_track_id!r}; sync the library")
    if outcome.state is OnPlayState.NO_FILE:
        raise HTTPException(status.HTTP_409_CONFLICT, NO_FILE_DETAIL.format(host=host, host_track_id=host_track_id))
    if outcome.state is OnPlayState.READY:
        assert outcome.analysis is not None
        return OnPlayPublic(
            state="ready", host=host, host_track_id=host_track_id, analysis=QuickAnalysisPublic.of(outcome.analysis)
        )
    url = analysis_path(key)
    body = OnPlayPublic(
        state="queued",
        host=host,
        host_track_id=host_track_id,
        analyzers=list(outcome.analyzers),
        status_url=url,
        events_url=f"/api/events?{urlencode({'host': host, 'host_track_id': host_track_id})}",
    )
    response.status_code = status.HTTP_202_ACCEPTED
    response.headers["Location"] = url
    return body
