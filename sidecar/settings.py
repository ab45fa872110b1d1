"""All configuration, read from ``SONANTICA_*`` environment variables (``__`` nests sub-models).

This is the only module that reads the environment. Create settings with :func:`get_settings` and pass them on;
tests set variables with ``monkeypatch.setenv`` and call ``get_settings.cache_clear()``.
"""

from __future__ import annotations

import datetime as dt
import enum
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, SettingsError

from sidecar.errors import ConfigError


class HostKindSetting(enum.StrEnum):
    """Which media server the sidecar talks to (``none`` runs analysis only)."""

    NONE = "none"
    NAVIDROME = "navidrome"
    JELLYFIN = "jellyfin"


def _default_data_dir() -> Path:
    """Per-user data directory: ``$XDG_DATA_HOME/sonantica`` or ``~/.local/share/sonantica``."""
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "sonantica"


class PathMapping(BaseModel):
    """One host-path prefix and the read-only mount prefix it maps to."""

    host_prefix: str
    local_prefix: str


def parse_path_map(raw: str) -> list[PathMapping]:
    """Parse ``HOST:LOCAL[,HOST:LOCAL...]`` (also ``;``-separated) into mappings, longest host prefix first.

    ``"/data/music:/mnt/library"`` maps the host path ``/data/music/a.flac`` to ``/mnt/library/a.flac``.
    An empty string gives no mappings. Raises ``ValueError`` on an entry without a ``:``.
    """
    mappings: list[PathMapping] = []
    for entry in raw.replace(";", ",").split(","):
        entry = entry.strip()
        if not entry:
            continue
        host, sep, local = entry.rpartition(":")
        if not sep or not host or not local:
            raise ValueError(f"path map entry {entry!r} is not HOST_PREFIX:LOCAL_PREFIX")
        mappings.append(PathMapping(host_prefix=host, local_prefix=local))
    return sorted(mappings, key=lambda m: len(m.host_prefix), reverse=True)


def parse_scan_hours(text: str) -> tuple[dt.time, dt.time]:
    """``"HH:MM-HH:MM"`` (local time; the end may be past midnight: ``"22:00-06:00"``) as ``(start, end)``.

    Raises ``ValueError`` naming the expected form for anything else.
    """
    start_text, sep, end_text = text.partition("-")
    try:
        if not sep:
            raise ValueError(text)
        return dt.time.fromisoformat(start_text.strip()), dt.time.fromisoformat(end_text.strip())
    except ValueError:
        raise ValueError(f"scan hours {text!r} are not HH:MM-HH:MM, e.g. 01:00-07:00") from None


class DatabaseSettings(BaseModel):
    """PostgreSQL connection pool (the URL is ``Settings.database_url``)."""

    pool_min_size: int = Field(default=1, ge=1, description="connections kept open")
    pool_max_size: int = Field(default=8, ge=1, description="connections opened at most")
    connect_timeout_s: float = Field(default=10.0, gt=0, description="seconds to wait for a connection")
    index_build_memory_mb: int = Field(
        default=1024,
        ge=64,
        description="maintenance_work_mem of the worker's HNSW index builds, in MiB (a parallel build takes it from "
        "/dev/shm; 1M tracks need about 4096 for the graph to fit)",
    )
    embedded_shared_buffers_mb: int = Field(
        default=128,
        ge=16,
        description="shared_buffers of the embedded PostgreSQL in MiB, applied when it starts (PostgreSQL's default; "
        "6 GB was slower at 1M tracks here: docs/benchmarks/scale.md)",
    )
    warm_index_on_start: bool = Field(
        default=True,
        description="read the Sonic Match index once when the API starts (pgvector 0.8 on), so the first searches "
        "after a restart do not read it from disk; seconds to a minute at 1M tracks (docs/benchmarks/scale.md)",
    )


class RedisSettings(BaseModel):
    """Redis keys and timeouts (the URL is ``Settings.redis_url``)."""

    key_prefix: str = Field(default="sonantica:", description="prefix of every Redis key and channel")
    socket_timeout_s: float = Field(default=5.0, gt=0, description="bound on every Redis command, in seconds")
    rebuild_lock_s: float = Field(default=300.0, gt=0, description="lock held while refilling the queues")
    rebuild_batch_size: int = Field(default=1000, ge=1, description="jobs per pipelined round trip in a rebuild")
    failed_jobs_kept: int = Field(default=10_000, ge=1, description="newest entries kept in the failed-jobs list")


class WorkerSettings(BaseModel):
    """Job processing: leases, locks, retries and how hard background analysis may work."""

    lease_s: float = Field(default=30.0, gt=0, description="worker liveness lease; jobs of a dead worker return")
    lock_s: float = Field(default=600.0, gt=0, description="per-track analysis lock; longer than lease_s")
    poll_s: float = Field(default=1.0, gt=0, description="how long an idle worker blocks waiting for work")
    max_attempts: int = Field(default=3, ge=1, description="per-track attempts before a track is failed")
    retry_base_s: float = Field(default=2.0, gt=0, description="first back-off delay for transient errors")
    retry_max_s: float = Field(default=300.0, gt=0, description="back-off ceiling")
    concurrency: int = Field(default=1, ge=1, description="tracks analysed at once by one worker process")
    nice: int = Field(default=5, ge=0, le=19, description="CPU niceness added to analysis processes")
    analysis_timeout_s: float = Field(
        default=3600.0, gt=0, description="wall-clock limit of one track's analysis; a hung analysis is killed"
    )
    queues: Annotated[list[Literal["on_play", "scan", "stems"]], NoDecode] = Field(
        default=["on_play", "scan", "stems"],
        description="queues this worker takes: on-play, scan, stems (separations, after analysis) or a subset",
    )
    scan_paused: bool = Field(default=False, description="stop taking scan work (on-play still runs)")
    scan_hours: str | None = Field(
        default=None,
        description="local hours when scan work may run, e.g. '01:00-07:00'; on-play always runs",
    )

    @field_validator("queues", mode="before")
    @classmethod
    def _split_queues(cls, value: object) -> object:
        if isinstance(value, str):
            return [q.strip().replace("-", "_") for q in value.split(",") if q.strip()]
        return value

    @field_validator("scan_hours")
    @classmethod
    def _check_scan_hours(cls, value: str | None) -> str | None:
        if value:
            parse_scan_hours(value)
        return value

    @model_validator(mode="after")
    def _lock_outlives_lease(self) -> WorkerSettings:
        if self.lock_s <= self.lease_s:
            raise ValueError("worker.lock_s must be longer than worker.lease_s")
        return self


class AnalysisSettings(BaseModel):
    """Which analyzers run and on how much audio."""

    enabled: Annotated[list[str], NoDecode] = Field(
        default=["loudness", "tempo", "key", "embedding", "waveform"],
        description="analyzers to run: loudness, tempo, key, embedding, waveform",
    )
    max_duration_s: float | None = Field(
        default=None,
        description="tracks longer than this many seconds (audiobooks, DJ sets) are not analysed; unset: all",
    )

    @field_validator("enabled", mode="before")
    @classmethod
    def _split_enabled(cls, value: object) -> object:
        if isinstance(value, str):
            return [a.strip() for a in value.split(",") if a.strip()]
        return value


class EmbeddingSettings(BaseModel):
    """The 'how it sounds' embedding model."""

    model: Literal[
        "musicnn-msd-mtt-harmonic-pool-ln-1506",
        "musicnn-msd-mtt-harmonic-pool-1506",
        "musicnn-msd-pool-753",
        "musicnn-msd-taggram-50",
        "openl3-music-mel128-512",
        "timbre-v1",
    ] = Field(default="musicnn-msd-mtt-harmonic-pool-ln-1506", description="embedding model for Sonic Match")
    fallback: bool = Field(
        default=True, description="use the DSP timbre model when the configured model's weights are absent"
    )
    model_dir: Path | None = Field(default=None, description="weights cache; default <data_dir>/models")
    weights_url: str | None = Field(
        default=None, description="download OpenL3 weights from this mirror instead of the official URL (same checks)"
    )
    weights_sha256: str | None = Field(
        default=None,
        pattern=r"^[0-9a-f]{64}$",
        description="pin the SHA-256 of the OpenL3 weights file (enforced with the published git blob id)",
    )
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="where the embedding model runs")
    batch_size: int = Field(default=32, ge=1, description="embedding windows per forward pass")
    windows_per_track: int = Field(default=24, ge=1, description="1 s windows sampled across a track")
    patches_per_track: int = Field(default=8, ge=1, description="3 s MusiCNN patches sampled across a track")


class ApiSettings(BaseModel):
    """The Sonic Match HTTP API."""

    bind_host: str = Field(default="127.0.0.1", description="interface the API listens on")
    port: int = Field(default=8787, ge=1, le=65535, description="API port")
    token: SecretStr | None = Field(default=None, description="bearer token required by every /api endpoint")
    public_read: bool = Field(
        default=False, description="let GET/HEAD under /api (analysis, similar tracks, events) answer without a token"
    )
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="largest request body accepted, in bytes (larger: 413)"
    )
    sse_max_clients: int = Field(default=256, ge=1, description="open /api/events streams at most (more: 503)")
    sse_client_queue: int = Field(
        default=64, ge=1, description="events buffered per /api/events client; a client further behind is dropped"
    )
    sse_retry_after_s: int = Field(default=5, ge=1, description="Retry-After of a 503 when the stream cap is reached")
    access_log: bool = Field(default=True, description="log one line per HTTP request (method, route, status, ms)")
    result_cache_s: int = Field(
        default=7 * 24 * 3600, ge=1, description="seconds a track's analysis stays in the Redis result cache"
    )


class WebSettings(BaseModel):
    """The web client at ``/``: sign-in sessions."""

    session_ttl_s: int = Field(
        default=12 * 3600, ge=60, le=90 * 24 * 3600, description="seconds a web sign-in lasts before signing in again"
    )
    session_secret: SecretStr | None = Field(
        default=None, description="key that signs session cookies; unset: generated once in <data_dir>/session-key"
    )
    cookie_secure: bool = Field(
        default=False, description="mark the session cookie Secure (set it when the client is served over HTTPS)"
    )
    login_attempts: int = Field(default=10, ge=1, description="sign-in attempts per client address per window")
    login_window_s: float = Field(default=60.0, gt=0, description="the sign-in rate-limit window, in seconds")


class NavidromeSettings(BaseModel):
    """Navidrome (or another Subsonic server)."""

    url: str | None = Field(default=None, description="Navidrome (Subsonic) base URL, e.g. http://navidrome:4533")
    username: str | None = Field(default=None, description="Navidrome user")
    password: SecretStr | None = Field(default=None, description="Navidrome password")
    client_name: str = Field(default="sonantica", description="client name sent to the server (one player record)")
    timeout_s: float = Field(default=15.0, gt=0, description="seconds before a request times out")


class JellyfinSettings(BaseModel):
    """Jellyfin."""

    url: str | None = Field(default=None, description="Jellyfin base URL, e.g. http://jellyfin:8096")
    api_key: SecretStr | None = Field(default=None, description="Jellyfin API key (Dashboard > API Keys)")
    username: str | None = Field(default=None, description="Jellyfin user (instead of an API key)")
    password: SecretStr | None = Field(default=None, description="Jellyfin password (with username)")
    user_id: str | None = Field(default=None, description="playlist owner; default: the first administrator")
    webhook_secret: SecretStr | None = Field(
        default=None, description="shared secret the webhook plugin sends in X-Sonantica-Token"
    )
    write_tags: bool = Field(default=True, description="write bpm/key/camelot/replaygain as item tags")
    trigger_normalization: bool = Field(
        default=False, description="start Jellyfin's Audio Normalization task after a sync"
    )
    timeout_s: float = Field(default=15.0, gt=0, description="seconds before a request times out")


class SchedulerSettings(BaseModel):
    """Periodic work done by ``sonantica scheduler`` (one instance)."""

    sync_interval_s: float = Field(default=6 * 3600.0, gt=0, description="seconds between library syncs")
    now_playing_interval_s: float = Field(default=10.0, gt=0, description="seconds between now-playing polls")
    reconcile_interval_s: float = Field(default=300.0, gt=0, description="seconds between queue reconciliations")
    lock_s: float = Field(default=30.0, gt=0, description="single-instance lock; a dead scheduler's expires after it")
    sync_attempts: int = Field(default=3, ge=1, description="library listings tried while the host is unavailable")
    sync_retry_base_s: float = Field(default=2.0, ge=0, description="first wait between sync attempts (doubles)")
    full_sync_interval_s: float = Field(
        default=86400.0,
        ge=0,
        description="seconds between full listings of a host that can list changes (Jellyfin); the syncs between"
        " ask only for tracks saved since the last listing. A full listing also marks removed tracks missing"
        " (0: every sync is full)",
    )
    deep_sync_interval_s: float = Field(
        default=7 * 86400.0,
        ge=0,
        description="seconds between deep syncs, which stat every listed file even when the host's facts are"
        " unchanged (0: every sync)",
    )


class StemsSettings(BaseModel):
    """Demucs stem separation on demand (files under ``stems_dir``)."""

    model: str = Field(
        default="htdemucs",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
        description="Demucs model: htdemucs, htdemucs_ft, mdx_extra, or a name in stems.repo",
    )
    repo: Path | None = Field(
        default=None, description="a local Demucs repository (.th and .yaml files) used instead of the model cache"
    )
    offline: bool = Field(default=False, description="never download Demucs weights; use only the model cache")
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="where Demucs runs (auto: CUDA if any)")
    format: Literal["flac", "opus"] = Field(default="flac", description="stem files: flac (lossless) or opus")
    opus_bitrate_kbps: int = Field(default=96, ge=16, le=512, description="Opus bitrate per stereo stem, kbit/s")
    segment_s: float | None = Field(
        default=None, gt=0, description="Demucs segment length in seconds; unset: the model's own (7.8 s htdemucs)"
    )
    overlap: float = Field(default=0.25, ge=0, lt=1, description="overlap between Demucs segments (fraction)")
    block_s: float = Field(
        default=60.0, ge=10, description="audio separated at once, in seconds (bounds memory on long tracks)"
    )
    threads: int | None = Field(default=None, ge=1, description="torch threads for a separation; unset: torch's")
    ttl_days: float = Field(default=30.0, gt=0, description="stems unused for this many days are deleted")
    max_bytes: int | None = Field(
        default=None, ge=0, description="disk quota of all stems; least recently used are deleted beyond it"
    )
    evict_interval_s: float = Field(default=3600.0, gt=0, description="seconds between eviction runs (scheduler)")


class PlaylistSettings(BaseModel):
    """Playlists written to the host."""

    name_prefix: str = Field(default="Sonic Match · ", description="name prefix of generated playlists")


class TagsSettings(BaseModel):
    """Mood/genre tags (MusiCNN's MSD taggram): which count, and how many are written to the host."""

    min_probability: float = Field(
        default=0.3, ge=0, le=1, description="a tag counts (filters, host tags) at or above this probability"
    )
    max_tags: int = Field(default=3, ge=0, le=50, description="most tags written to the host per track; 0: none")


class Settings(BaseSettings):
    """The sidecar's configuration. Environment: ``SONANTICA_<FIELD>`` and ``SONANTICA_<SECTION>__<FIELD>``."""

    model_config = SettingsConfigDict(
        env_prefix="SONANTICA_",
        env_nested_delimiter="__",
        case_sensitive=False,
        extra="ignore",
    )

    data_dir: Path = Field(
        default_factory=_default_data_dir,
        description="where the embedded servers and model weights live (default ~/.local/share/sonantica)",
    )
    database_url: SecretStr | None = Field(
        default=None, description="PostgreSQL with pgvector; unset: an embedded server under data_dir"
    )
    redis_url: SecretStr | None = Field(default=None, description="Redis; unset: an embedded server under data_dir")
    stems_dir: Path | None = Field(default=None, description="where stems are kept; default <data_dir>/stems")
    library_dir: Path | None = Field(default=None, description="the read-only mount of the music library")
    path_map: Annotated[list[PathMapping], NoDecode] = Field(
        default=[], description="host path prefix -> mount prefix pairs, e.g. /music:/mnt/music,/data:/mnt/data"
    )
    host: HostKindSetting = Field(default=HostKindSetting.NONE, description="media server: none, navidrome or jellyfin")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(default="INFO", description="log level")
    log_format: Literal["plain", "json"] = Field(default="plain", description="log format: plain or json")

    db: DatabaseSettings = DatabaseSettings()
    redis: RedisSettings = RedisSettings()
    worker: WorkerSettings = WorkerSettings()
    analysis: AnalysisSettings = AnalysisSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    api: ApiSettings = ApiSettings()
    web: WebSettings = WebSettings()
    navidrome: NavidromeSettings = NavidromeSettings()
    jellyfin: JellyfinSettings = JellyfinSettings()
    scheduler: SchedulerSettings = SchedulerSettings()
    playlists: PlaylistSettings = PlaylistSettings()
    stems: StemsSettings = StemsSettings()
    tags: TagsSettings = TagsSettings()

    @field_validator("redis_url")
    @classmethod
    def _check_redis_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not value.get_secret_value().lower().startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("a Redis URL starts with redis://, rediss:// or unix://")
        return value

    @field_validator("path_map", mode="before")
    @classmethod
    def _parse_path_map(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_path_map(value)
        return value

    @model_validator(mode="after")
    def _poll_within_socket_timeout(self) -> Settings:
        if self.worker.poll_s >= self.redis.socket_timeout_s:
            raise ValueError(
                "worker.poll_s must be shorter than redis.socket_timeout_s (a blocking claim would time out)"
            )
        return self

    @property
    def model_dir(self) -> Path:
        """Where model weights are cached."""
        return self.embedding.model_dir or self.data_dir / "models"

    @property
    def stems_root(self) -> Path:
        """Where stems are kept (``stems_dir``, default ``<data_dir>/stems``)."""
        return self.stems_dir or self.data_dir / "stems"


def environment_variable_names() -> set[str]:
    """Every ``SONANTICA_*`` variable the settings read (for documentation and deploy-file checks)."""
    names: set[str] = set()
    for field_name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names.update(f"SONANTICA_{field_name}__{sub}".upper() for sub in annotation.model_fields)
        else:
            names.add(f"SONANTICA_{field_name}".upper())
    return names


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "(required)"
    value = info.get_default(call_default_factory=False)
    if value is None:
        return "unset"
    if info.default_factory is not None:
        return "(computed)"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, SecretStr):
        return "(secret)"
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value) or "(empty)"
    return str(value)


def settings_reference() -> list[tuple[str, str, str]]:
    """``(variable, default, description)`` for every setting, in declaration order (docs and ``sonantica config``)."""
    rows: list[tuple[str, str, str]] = []
    for field_name, info in Settings.model_fields.items():
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = (annotation.__doc__ or "").strip().splitlines()[0]
            for sub, sub_info in annotation.model_fields.items():
                name = f"SONANTICA_{field_name}__{sub}".upper()
                rows.append((name, _default_text(sub_info), sub_info.description or section))
        else:
            rows.append((f"SONANTICA_{field_name}".upper(), _default_text(info), info.description or ""))
    return rows


def _variable_of(loc: tuple[int | str, ...]) -> str | None:
    """The ``SONANTICA_*`` variable a validation error's location names (``None`` for a check across fields)."""
    names = [part for part in loc if isinstance(part, str)]
    info = Settings.model_fields.get(names[0]) if names else None
    if info is None:
        return None
    annotation = info.annotation
    depth = 2 if isinstance(annotation, type) and issubclass(annotation, BaseModel) else 1
    return "SONANTICA_" + "__".join(names[:depth]).upper() if len(names) >= depth else None


def describe_invalid(exc: ValidationError) -> str:
    """One line naming each refused variable and why, without its value (it may be a secret)."""
    parts: list[str] = []
    for error in exc.errors(include_url=False, include_input=False):
        message = error["msg"].removeprefix("Value error, ")
        variable = _variable_of(error["loc"])
        parts.append(f"{variable}: {message}" if variable else message)
    return "invalid setting: " + "; ".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once from the environment.

    Raises :class:`~sidecar.errors.ConfigError` (one line naming the variable) when a value is refused.
    """
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(describe_invalid(exc)) from None
    except SettingsError as exc:
        raise ConfigError(f"invalid setting: {exc}") from None
