"""Request and response models of the API (units in field names, as everywhere)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sidecar.analyzers.tags import TAG_CATEGORIES, TagCategory
from sidecar.domain import BpmMissingReason, KeyMissingReason
from sidecar.jobqueue import CachedAnalysis
from sidecar.services.playlists import PlaylistEntry
from sidecar.storage.analyses import AnalysisSummary
from sidecar.storage.library import LibraryTrack
from sidecar.storage.vectors import SimilarTrack

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False)  # NaN/Infinity are refused (422), never stored
TrackId = Annotated[int, Field(ge=1, le=2**63 - 1, description="Sonántica track id")]


class ErrorPublic(BaseModel):
    """Every error answer: a human-readable reason."""

    detail: str


class FieldErrorPublic(BaseModel):
    """One invalid input: where (``["query", "bpm_min"]``, ``["body", "seed_track_ids", 0]``), why, and the kind."""

    loc: list[str | int]
    msg: str
    type: str


class ValidationErrorPublic(ErrorPublic):
    """Every 422 answer: ``detail`` sums the problems up in one line, ``errors`` lists them (the input itself is
    never echoed back)."""

    errors: list[FieldErrorPublic]


class TagPublic(BaseModel):
    """One mood/genre/instrumentation/era tag of a track and the model's probability for it (0..1)."""

    tag: str
    category: TagCategory
    probability: float


class TagVocabularyPublic(BaseModel):
    """The tags the filters accept, by category, and the probability (0..1) at which a track counts as tagged."""

    categories: dict[TagCategory, list[str]]
    min_probability: float


class TrackAnalysisPublic(BaseModel):
    """A track's stored analysis; ``None`` for what is not analysed (or found nothing, e.g. silence).

    ``tags`` lists every tag the model gave, most probable first (empty when the track was not tagged)."""

    track_id: int
    host: str
    host_track_id: str
    duration_s: float | None
    bpm: float | None
    bpm_confidence: float | None
    bpm_alternative: float | None
    beat_offset_s: float | None
    bpm_missing_reason: BpmMissingReason | None = Field(
        description="why the tempo analyzer found no BPM: `too_short` (under about 2.2 beats at 40 BPM, 3.4 s),"
        " `no_onsets` (too few audible onsets: silence, held notes, a drone), `no_periodicity` (onsets that do not"
        " repeat: noise, free time); null when there is a BPM (an override's included), the tempo is not analysed"
        " yet, or it was analysed before reasons were recorded"
    )
    key: str | None
    key_confidence: float | None
    camelot: str | None
    key_missing_reason: KeyMissingReason | None = Field(
        description="why the key analyzer found no key: `few_tonal_frames` (under about 2 s of pitched sound:"
        " silence, a very short file), `weak_tonality` (sound that fits no key: noise, unpitched drums); null when"
        " there is a key, the key is not analysed yet, or it was analysed before reasons were recorded"
    )
    loudness_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    sample_peak_dbfs: float | None
    replaygain_track_gain_db: float | None
    replaygain_track_peak: float | None
    analyzer_versions: dict[str, int]
    failures: dict[str, str] = Field(
        description="analyzers given up on for this track (failed for good), with the reason; `sonantica failed"
        " --retry` queues them again"
    )
    embedding_models: list[str]
    tags: list[TagPublic]
    tags_model: str | None
    overridden: list[Literal["bpm", "key"]] = Field(
        description="fields set by the user (`PATCH /api/tracks/{id}/overrides`): their values above are the"
        " user's, with confidence 1"
    )
    analyzed: dict[str, float | str | None] = Field(
        description="the analyzers' own values of the overridden fields (`bpm`, `bpm_confidence`,"
        " `bpm_alternative`, `bpm_missing_reason`; `key`, `key_confidence`, `camelot`, `key_missing_reason`); empty"
        " without overrides"
    )
    host_bpm: float | None = Field(
        description="the BPM the host reports from the file's own tags (Navidrome; Jellyfin reports none), stored by"
        ' the last sync; null when none. `PATCH .../overrides` with `{"bpm": host_bpm}` takes it'
    )

    @classmethod
    def of(cls, summary: AnalysisSummary) -> TrackAnalysisPublic:
        """From the storage summary (the file path is not exposed)."""
        fields = {k: v for k, v in summary.items() if k not in ("path", "tags")}
        tags = [
            TagPublic(tag=tag, category=TAG_CATEGORIES[tag], probability=probability)
            for tag, probability in summary["tags"].items()
            if tag in TAG_CATEGORIES
        ]
        return cls.model_validate({**fields, "tags": tags})


class OverridesIn(BaseModel):
    """The user's BPM and/or key for a track: a value sets the field, ``null`` gives it back to the analyzer, a
    field left out stays as it is."""

    model_config = _STRICT

    bpm: float | None = Field(default=None, gt=0, le=1000, description="tempo in BPM")
    key: str | None = Field(
        default=None,
        min_length=1,
        max_length=32,
        description="e.g. `A minor`, `Am`, `F# major`, `Bb`, Camelot `8A`, Open Key `1m`",
    )


class QuickAnalysisPublic(BaseModel):
    """The cached analysis an on-play request answers with."""

    host: str
    host_track_id: str
    analyzer_versions: dict[str, int]
    bpm: float | None
    key: str | None
    camelot: str | None
    loudness_lufs: float | None
    loudness_range_lu: float | None
    true_peak_dbtp: float | None
    replaygain_track_gain_db: float | None

    @classmethod
    def of(cls, cached: CachedAnalysis) -> QuickAnalysisPublic:
        """From a result-cache entry."""
        return cls(
            host=cached.track.host,
            host_track_id=cached.track.host_track_id,
            analyzer_versions=dict(cached.versions),
            bpm=cached.bpm,
            key=None if cached.key is None else cached.key.name,
            camelot=None if cached.key is None else cached.key.camelot,
            loudness_lufs=cached.loudness_lufs,
            loudness_range_lu=cached.loudness_range_lu,
            true_peak_dbtp=cached.true_peak_dbtp,
            replaygain_track_gain_db=cached.replaygain_track_gain_db,
        )


class OnPlayPublic(BaseModel):
    """``ready`` with the analysis, or ``queued`` with the analyzers queued and where to look."""

    state: Literal["ready", "queued"]
    host: str
    host_track_id: str
    analysis: QuickAnalysisPublic | None = None
    analyzers: list[str] = []
    status_url: str | None = None
    events_url: str | None = None


class SimilarTrackPublic(BaseModel):
    """One similar track: cosine distance to the seed (0 = same direction, up to 2) and its tempo/key."""

    track_id: int
    host: str
    host_track_id: str
    distance: float
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float | None
    key: str | None
    camelot: str | None

    @classmethod
    def of(cls, row: SimilarTrack) -> SimilarTrackPublic:
        """From a storage row."""
        return cls(
            track_id=row.track_id,
            host=row.host,
            host_track_id=row.host_track_id,
            distance=row.distance,
            title=row.title,
            artist=row.artist,
            album=row.album,
            duration_s=row.duration_s,
            bpm=row.bpm,
            key=row.key,
            camelot=row.camelot,
        )


class SimilarTracksPublic(BaseModel):
    """Similar tracks, nearest first."""

    seed_track_id: int
    model: str
    tracks: list[SimilarTrackPublic]


class PlaylistEntryPublic(BaseModel):
    """One playlist track and why it is there."""

    position: int
    track_id: int
    host: str
    host_track_id: str
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float | None
    camelot: str | None
    distance: float | None
    reason: str


class PlaylistPublic(BaseModel):
    """An ordered playlist; ``host_playlist_id`` is set when it was written to the host."""

    kind: Literal["sonic-match", "bpm-range", "harmonic-mix"]
    name: str | None
    tracks: list[PlaylistEntryPublic]
    host_playlist_id: str | None = None

    @classmethod
    def of(
        cls,
        kind: Literal["sonic-match", "bpm-range", "harmonic-mix"],
        name: str | None,
        entries: list[PlaylistEntry],
        host_playlist_id: str | None,
    ) -> PlaylistPublic:
        """From service entries (positions from 1)."""
        return cls(
            kind=kind,
            name=name,
            host_playlist_id=host_playlist_id,
            tracks=[
                PlaylistEntryPublic(
                    position=i,
                    track_id=e.track_id,
                    host=e.host,
                    host_track_id=e.host_track_id,
                    title=e.title,
                    artist=e.artist,
                    album=e.album,
                    duration_s=e.duration_s,
                    bpm=e.bpm,
                    camelot=e.camelot,
                    distance=e.distance,
                    reason=e.reason,
                )
                for i, e in enumerate(entries, start=1)
            ],
        )


class PlaylistBase(BaseModel):
    """Fields common to every playlist request."""

    model_config = _STRICT

    name: str | None = Field(default=None, min_length=1, max_length=200, description="host playlist name")
    write_to_host: bool = Field(default=False, description="create/replace the playlist on the host")
    limit: int = Field(default=30, ge=1, le=1000, description="tracks in the playlist")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("text must not contain NUL bytes")
        return value


class TagFiltersBase(BaseModel):
    """Mood/genre tag filters of a playlist request (MusiCNN tags at or above ``tags.min_probability``)."""

    moods: list[Annotated[str, Field(max_length=50)]] = Field(
        default=[], max_length=10, description="keep tracks with any of these mood tags (e.g. chill, sad)"
    )
    exclude_moods: list[Annotated[str, Field(max_length=50)]] = Field(
        default=[], max_length=10, description="drop tracks with any of these mood tags"
    )
    styles: list[Annotated[str, Field(max_length=50)]] = Field(
        default=[], max_length=28, description="keep tracks with any of these genre tags (e.g. rock, jazz)"
    )
    exclude_styles: list[Annotated[str, Field(max_length=50)]] = Field(
        default=[], max_length=28, description="drop tracks with any of these genre tags"
    )


class SonicMatchCreate(TagFiltersBase, PlaylistBase):
    """ "More like this" from one or several seed tracks."""

    seed_track_ids: list[TrackId] = Field(min_length=1, max_length=50)
    bpm_window_pct: float | None = Field(default=None, ge=0, le=100)
    half_double: bool = False
    camelot_compatible: bool = False
    max_per_artist: int | None = Field(default=None, ge=1, le=1000)
    max_per_album: int | None = Field(default=None, ge=1, le=1000)
    exclude_genres: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=100)
    exclude_libraries: list[Annotated[str, Field(max_length=200)]] = Field(default=[], max_length=100)


class BpmRangeCreate(TagFiltersBase, PlaylistBase):
    """Tracks between two tempi (e.g. running at 120-140), ordered by rising BPM."""

    bpm_min: float = Field(gt=0, le=400)
    bpm_max: float = Field(gt=0, le=400)
    half_double: bool = True

    @model_validator(mode="after")
    def _ordered(self) -> BpmRangeCreate:
        if self.bpm_min > self.bpm_max:
            raise ValueError(f"bpm_min {self.bpm_min} is above bpm_max {self.bpm_max}")
        return self


class HarmonicMixCreate(PlaylistBase):
    """A DJ-style path from a seed through key-compatible tracks with small BPM steps."""

    seed_track_id: TrackId
    max_bpm_step_pct: float = Field(default=4.0, gt=0, le=50, description="largest BPM change between neighbours")
    max_bpm_drift_pct: float = Field(default=10.0, gt=0, le=100, description="largest distance from the seed's BPM")
    min_key_confidence: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="leave out tracks whose key_confidence is below this (0: none; the seed and keys set by hand"
        " always pass)",
    )


class LibraryTrackPublic(BaseModel):
    """One track of the library listing (feature values ``None`` until analysed)."""

    track_id: int
    host: str
    host_track_id: str
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float | None
    bpm_confidence: float | None
    key: str | None
    camelot: str | None
    loudness_lufs: float | None
    overridden: list[Literal["bpm", "key"]] = Field(description="fields set by the user (`bpm`, `key`)")

    @classmethod
    def of(cls, row: LibraryTrack) -> LibraryTrackPublic:
        return cls.model_validate(row, from_attributes=True)


class LibraryPagePublic(BaseModel):
    """A page of the library: ``total`` tracks match; ``tracks`` holds those from ``offset`` on (after the
    ``after`` cursor when one was given; at most ``limit``)."""

    total: int
    limit: int
    offset: int
    tracks: list[LibraryTrackPublic]
    next_cursor: str | None = Field(
        default=None, description="`after` for the next page (opaque); null when this page is not full"
    )
