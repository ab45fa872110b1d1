"""Job messages, notifications and cache entries, and their JSON form: the only place they are (de)serialised.

A job message is a compact JSON object, e.g.::

    {"type":"analyze_track","id":"analyze:jellyfin:<id>","priority":"on_play","attempt":1,
     "enqueued_at":"2024-05-01T12:00:00+00:00","host":"jellyfin","host_track_id":"<id>",
     "analyzers":["key","loudness","tempo"]}

Job ids are deterministic (``analyze:{host}:{host_track_id}``, ``sync:{host}``) so duplicates are recognisable.
Decoding is strict: a missing, mistyped or unknown field raises :class:`~sidecar.errors.InvalidJobError` naming it.
The Lua scripts in :mod:`sidecar.jobqueue.queue` read one field of a job, ``priority``, to route it.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import ClassVar, Self

from sidecar.domain import KeySignature, Priority, TrackKey
from sidecar.errors import InvalidJobError

_HOST_RE = re.compile(r"[a-z][a-z0-9_-]*")
_ANALYZER_RE = re.compile(r"[a-z][a-z0-9_]*")
_MAX_TRACK_ID_CHARS = 512


class JobType(enum.StrEnum):
    """What a job asks for; the worker's handler registry is keyed by it."""

    ANALYZE_TRACK = "analyze_track"
    SYNC_LIBRARY = "sync_library"


def _check_host(host: str) -> None:
    if not _HOST_RE.fullmatch(host):
        raise ValueError(f"host {host!r} is not a lower-case name such as 'navidrome' or 'jellyfin'")


def _check_track_id(host_track_id: str) -> None:
    if not host_track_id or len(host_track_id) > _MAX_TRACK_ID_CHARS or not host_track_id.isprintable():
        raise ValueError(f"host track id {host_track_id!r} must be 1-{_MAX_TRACK_ID_CHARS} printable characters")


def _check_common(priority: Priority, attempt: int, enqueued_at: dt.datetime) -> None:
    if not isinstance(priority, Priority):
        raise ValueError(f"priority {priority!r} is not one of {', '.join(p.value for p in Priority)}")
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if enqueued_at.tzinfo is None:
        raise ValueError("enqueued_at must be timezone-aware")


def normalize_analyzers(analyzers: Iterable[str]) -> tuple[str, ...]:
    """Sorted, de-duplicated analyzer names; raises ``ValueError`` on an empty set or a malformed name."""
    names = tuple(sorted(set(analyzers)))
    if not names:
        raise ValueError("an analyze job needs at least one analyzer name")
    for name in names:
        if not _ANALYZER_RE.fullmatch(name):
            raise ValueError(f"analyzer name {name!r} is not a lower-case registry key such as 'tempo'")
    return names


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalyzeTrack:
    """Analyze one track with the named analyzers.

    ``attempt`` counts deliveries caused by retries (1 = first try); re-delivery after a worker died does not
    change it. ``analyzers`` is sorted and de-duplicated on construction.
    """

    type: ClassVar[JobType] = JobType.ANALYZE_TRACK

    host: str
    host_track_id: str
    priority: Priority
    analyzers: tuple[str, ...]
    enqueued_at: dt.datetime
    attempt: int = 1

    def __post_init__(self) -> None:
        _check_host(self.host)
        _check_track_id(self.host_track_id)
        _check_common(self.priority, self.attempt, self.enqueued_at)
        object.__setattr__(self, "analyzers", normalize_analyzers(self.analyzers))

    @property
    def id(self) -> str:
        """Deterministic job id ``analyze:{host}:{host_track_id}``."""
        return f"analyze:{self.host}:{self.host_track_id}"

    @property
    def track(self) -> TrackKey:
        """The track this job is about."""
        return TrackKey(self.host, self.host_track_id)

    def next_attempt(self) -> Self:
        """The same job for its next retry (``attempt + 1``)."""
        return replace(self, attempt=self.attempt + 1)


@dataclass(frozen=True, slots=True, kw_only=True)
class SyncLibrary:
    """Pull the host's track list and enqueue what is missing or stale (scan priority unless asked otherwise)."""

    type: ClassVar[JobType] = JobType.SYNC_LIBRARY

    host: str
    enqueued_at: dt.datetime
    priority: Priority = Priority.SCAN
    attempt: int = 1

    def __post_init__(self) -> None:
        _check_host(self.host)
        _check_common(self.priority, self.attempt, self.enqueued_at)

    @property
    def id(self) -> str:
        """Deterministic job id ``sync:{host}``."""
        return f"sync:{self.host}"

    def next_attempt(self) -> Self:
        """The same job for its next retry (``attempt + 1``)."""
        return replace(self, attempt=self.attempt + 1)


Job = AnalyzeTrack | SyncLibrary
"""Every job message type."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisReady:
    """Published after a track's results are committed: which analyzers just finished."""

    host: str
    host_track_id: str
    analyzers: tuple[str, ...]

    def __post_init__(self) -> None:
        _check_host(self.host)
        _check_track_id(self.host_track_id)
        object.__setattr__(self, "analyzers", normalize_analyzers(self.analyzers))

    @property
    def track(self) -> TrackKey:
        """The track whose analysis is ready."""
        return TrackKey(self.host, self.host_track_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAnalysis:
    """A track's analysis summary as the result cache keeps it (the seed's cache-hit answer).

    ``versions`` maps each analyzer that contributed to the version that computed it; a reader that needs a
    newer version treats the entry as a miss. Every value is ``None`` when its analyzer did not run or found
    nothing (silence has no BPM or key).
    """

    track: TrackKey
    versions: Mapping[str, int]
    computed_at: dt.datetime
    bpm: float | None = None
    key: KeySignature | None = None
    loudness_lufs: float | None = None  # integrated EBU R128 loudness, typically -30..-5 LUFS
    loudness_range_lu: float | None = None  # EBU Tech 3342 LRA, typically 2..20 LU
    true_peak_dbtp: float | None = None  # typically -10..+2 dBTP
    replaygain_track_gain_db: float | None = None  # -18 LUFS minus loudness_lufs

    def __post_init__(self) -> None:
        _check_host(self.track.host)
        _check_track_id(self.track.host_track_id)
        normalize_analyzers(self.versions)
        if self.computed_at.tzinfo is None:
            raise ValueError("computed_at must be timezone-aware")
        object.__setattr__(self, "versions", dict(sorted(self.versions.items())))

    def is_current(self, required_versions: Mapping[str, int]) -> bool:
        """Whether every analyzer in ``required_versions`` is present at that version or newer."""
        return all(self.versions.get(name, -1) >= version for name, version in required_versions.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedEntry:
    """A queue entry that was given up on (or could not be read), kept for operators with its reason."""

    raw: str  # the exact queue entry
    reason: str
    failed_at: dt.datetime
    job: Job | None = field(default=None)  # None when ``raw`` is not a readable job


# ---------------------------------------------------------------------------------------------------------------
# JSON


def _dumps(payload: Mapping[str, object]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _loads_object(raw: str, what: str) -> dict[str, object]:
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJobError(f"{what} is not JSON ({exc}): {raw[:200]!r}") from exc
    if not isinstance(payload, dict):
        raise InvalidJobError(f"{what} is not a JSON object: {raw[:200]!r}")
    return payload


class _Fields:
    """Typed access to a decoded JSON object that names the offending field on error."""

    def __init__(self, payload: dict[str, object], what: str) -> None:
        self._payload = payload
        self._what = what
        self._seen: set[str] = set()

    def _get(self, name: str) -> object:
        self._seen.add(name)
        if name not in self._payload:
            raise InvalidJobError(f"{self._what} has no field {name!r}")
        return self._payload[name]

    def _wrong(self, name: str, expected: str) -> InvalidJobError:
        return InvalidJobError(f"{self._what} field {name!r} is not {expected}: {self._payload[name]!r}")

    def text(self, name: str) -> str:
        value = self._get(name)
        if not isinstance(value, str):
            raise self._wrong(name, "a string")
        return value

    def integer(self, name: str) -> int:
        value = self._get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise self._wrong(name, "an integer")
        return value

    def optional_float(self, name: str) -> float | None:
        value = self._get(name)
        if value is None:
            return None
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise self._wrong(name, "a finite number or null")
        return float(value)

    def optional_text(self, name: str) -> str | None:
        value = self._get(name)
        if value is not None and not isinstance(value, str):
            raise self._wrong(name, "a string or null")
        return value

    def text_list(self, name: str) -> list[str]:
        value = self._get(name)
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise self._wrong(name, "a list of strings")
        return [str(item) for item in value]

    def int_map(self, name: str) -> dict[str, int]:
        value = self._get(name)
        if not isinstance(value, dict) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value.values()
        ):
            raise self._wrong(name, "an object of integers")
        return {str(k): int(v) for k, v in value.items()}

    def time(self, name: str) -> dt.datetime:
        text = self.text(name)
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError as exc:
            raise self._wrong(name, "an ISO 8601 time") from exc
        if value.tzinfo is None:
            raise self._wrong(name, "a timezone-aware ISO 8601 time")
        return value

    def priority(self, name: str) -> Priority:
        text = self.text(name)
        try:
            return Priority(text)
        except ValueError as exc:
            raise self._wrong(name, f"one of {', '.join(p.value for p in Priority)}") from exc

    def finish(self) -> None:
        unknown = sorted(set(self._payload) - self._seen)
        if unknown:
            raise InvalidJobError(f"{self._what} has unknown fields {unknown}")


def _iso(value: dt.datetime) -> str:
    return value.isoformat()


def encode_job(job: Job) -> str:
    """The queue entry for ``job``: compact JSON, fields in a fixed order."""
    payload: dict[str, object] = {
        "type": job.type.value,
        "id": job.id,
        "priority": job.priority.value,
        "attempt": job.attempt,
        "enqueued_at": _iso(job.enqueued_at),
        "host": job.host,
    }
    if isinstance(job, AnalyzeTrack):
        payload["host_track_id"] = job.host_track_id
        payload["analyzers"] = list(job.analyzers)
    return _dumps(payload)


def job_track_key(raw: str) -> TrackKey | None:
    """The track of an analyze-job entry, read without validating its other fields (the reconciler reads every
    queued entry, and a full :func:`decode_job` of a million entries costs seconds); ``None`` for another job type
    or an entry that is not a JSON object with text ``host`` and ``host_track_id``."""
    try:
        payload = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(payload, dict) or payload.get("type") != JobType.ANALYZE_TRACK.value:
        return None
    host, host_track_id = payload.get("host"), payload.get("host_track_id")
    if not isinstance(host, str) or not isinstance(host_track_id, str):
        return None
    return TrackKey(host, host_track_id)


def decode_job(raw: str) -> Job:
    """Parse a queue entry written by :func:`encode_job`.

    Raises
    ------
    InvalidJobError
        On anything that is not exactly such a message (bad JSON, missing/unknown/mistyped field, an id that
        does not match its fields); the message names the problem and quotes the start of ``raw``.
    """
    fields = _Fields(_loads_object(raw, "job"), "job")
    type_text = fields.text("type")
    try:
        job_type = JobType(type_text)
    except ValueError as exc:
        raise InvalidJobError(f"job type {type_text!r} is not one of {', '.join(t.value for t in JobType)}") from exc
    job: Job
    try:
        if job_type is JobType.ANALYZE_TRACK:
            job = AnalyzeTrack(
                host=fields.text("host"),
                host_track_id=fields.text("host_track_id"),
                priority=fields.priority("priority"),
                analyzers=tuple(fields.text_list("analyzers")),
                enqueued_at=fields.time("enqueued_at"),
                attempt=fields.integer("attempt"),
            )
        else:
            job = SyncLibrary(
                host=fields.text("host"),
                priority=fields.priority("priority"),
                enqueued_at=fields.time("enqueued_at"),
                attempt=fields.integer("attempt"),
            )
    except ValueError as exc:
        raise InvalidJobError(f"job {raw[:200]!r} is invalid: {exc}") from exc
    job_id = fields.text("id")
    if job_id != job.id:
        raise InvalidJobError(f"job id {job_id!r} does not match its fields (expected {job.id!r})")
    fields.finish()
    return job


def encode_analysis_ready(event: AnalysisReady) -> str:
    """The pub/sub payload ``{"host", "host_track_id", "analyzers"}``."""
    return _dumps({"host": event.host, "host_track_id": event.host_track_id, "analyzers": list(event.analyzers)})


def decode_analysis_ready(raw: str) -> AnalysisReady:
    """Parse a payload written by :func:`encode_analysis_ready`; raises ``InvalidJobError`` on anything else."""
    fields = _Fields(_loads_object(raw, "analysis-ready message"), "analysis-ready message")
    try:
        event = AnalysisReady(
            host=fields.text("host"),
            host_track_id=fields.text("host_track_id"),
            analyzers=tuple(fields.text_list("analyzers")),
        )
    except ValueError as exc:
        raise InvalidJobError(f"analysis-ready message {raw[:200]!r} is invalid: {exc}") from exc
    fields.finish()
    return event


def encode_cached_analysis(entry: CachedAnalysis) -> str:
    """The result-cache value for ``entry``."""
    return _dumps(
        {
            "host": entry.track.host,
            "host_track_id": entry.track.host_track_id,
            "versions": dict(entry.versions),
            "computed_at": _iso(entry.computed_at),
            "bpm": entry.bpm,
            "key": entry.key.name if entry.key is not None else None,
            "loudness_lufs": entry.loudness_lufs,
            "loudness_range_lu": entry.loudness_range_lu,
            "true_peak_dbtp": entry.true_peak_dbtp,
            "replaygain_track_gain_db": entry.replaygain_track_gain_db,
        }
    )


def decode_cached_analysis(raw: str) -> CachedAnalysis:
    """Parse a value written by :func:`encode_cached_analysis`; raises ``InvalidJobError`` on anything else."""
    fields = _Fields(_loads_object(raw, "cached analysis"), "cached analysis")
    key_name = fields.optional_text("key")
    try:
        entry = CachedAnalysis(
            track=TrackKey(fields.text("host"), fields.text("host_track_id")),
            versions=fields.int_map("versions"),
            computed_at=fields.time("computed_at"),
            bpm=fields.optional_float("bpm"),
            key=KeySignature.parse(key_name) if key_name is not None else None,
            loudness_lufs=fields.optional_float("loudness_lufs"),
            loudness_range_lu=fields.optional_float("loudness_range_lu"),
            true_peak_dbtp=fields.optional_float("true_peak_dbtp"),
            replaygain_track_gain_db=fields.optional_float("replaygain_track_gain_db"),
        )
    except ValueError as exc:
        raise InvalidJobError(f"cached analysis {raw[:200]!r} is invalid: {exc}") from exc
    fields.finish()
    return entry


def encode_failed_entry(raw: str, *, reason: str, failed_at: dt.datetime) -> str:
    """The failed-list record for a given-up queue entry ``raw``."""
    return _dumps({"raw": raw, "reason": reason, "failed_at": _iso(failed_at)})


def decode_failed_entry(record: str) -> FailedEntry:
    """Parse a failed-list record; ``job`` is the decoded entry, or ``None`` when the entry itself is unreadable."""
    fields = _Fields(_loads_object(record, "failed entry"), "failed entry")
    raw = fields.text("raw")
    entry = FailedEntry(raw=raw, reason=fields.text("reason"), failed_at=fields.time("failed_at"))
    fields.finish()
    try:
        return replace(entry, job=decode_job(raw))
    except InvalidJobError:
        return entry
