"""The sidecar's error tree. Host errors live in ``adapters.base``."""

from __future__ import annotations


class SidecarError(Exception):
    """Base of every error the sidecar raises on purpose."""


class ConfigError(SidecarError):
    """A ``SONANTICA_*`` variable has a value the sidecar cannot use; the message names the variable and why."""


class AudioDecodeError(SidecarError):
    """A file could not be opened or decoded; the message says why in words a user can act on."""


class AnalyzerError(SidecarError):
    """One analyzer failed on one track: recorded against the track, the job moves on."""


class FatalAnalyzerError(SidecarError):
    """An analyzer cannot run at all (missing model weights, missing native library): stop at start-up."""


class StorageError(SidecarError):
    """The database refused an operation for a reason retrying will not fix."""


class RetryLaterError(SidecarError):
    """A transient failure (host or database down): the job is retried after ``delay_s``."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class StorageUnavailableError(StorageError):
    """PostgreSQL cannot be reached (down, restarting, pool exhausted): transient, retry with back-off."""


class QueueUnavailableError(SidecarError):
    """Redis cannot be reached (down, restarting, loading, timed out): transient, retry with back-off."""


class InvalidJobError(SidecarError):
    """A queue entry (or another Redis payload) is not one this version understands; the message says why."""


class NotFoundError(SidecarError):
    """Something the caller named (a track, a seed's embedding, an embedding model) is not stored."""
