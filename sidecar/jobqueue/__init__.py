"""The Redis traffic controller (§H.6): priority queues, leases, track locks, result cache, notifications.

The only package that imports redis. Everything it keeps in Redis is derived state that PostgreSQL can rebuild.
"""

from sidecar.jobqueue.cache import ResultCache
from sidecar.jobqueue.connection import (
    RedisClient,
    connect,
    connect_from_settings,
    dedicated_client,
    queue_retrying,
)
from sidecar.jobqueue.events import AnalysisReadySubscription, EventBus, HubEvent
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.locks import TokenLock, TrackLock
from sidecar.jobqueue.messages import (
    AnalysisReady,
    AnalyzeTrack,
    CachedAnalysis,
    FailedEntry,
    Job,
    JobType,
    SyncLibrary,
    decode_job,
    encode_job,
)
from sidecar.jobqueue.queue import ClaimedJob, JobQueue, backoff_s, new_worker_id
from sidecar.jobqueue.rebuild import RebuildItem, RebuildOutcome, get_epoch, rebuild_queues, set_epoch

__all__ = [
    "AnalysisReady",
    "AnalysisReadySubscription",
    "AnalyzeTrack",
    "CachedAnalysis",
    "ClaimedJob",
    "EventBus",
    "FailedEntry",
    "HubEvent",
    "Job",
    "JobQueue",
    "JobType",
    "Keys",
    "RebuildItem",
    "RebuildOutcome",
    "RedisClient",
    "ResultCache",
    "SyncLibrary",
    "TokenLock",
    "TrackLock",
    "backoff_s",
    "connect",
    "connect_from_settings",
    "decode_job",
    "dedicated_client",
    "encode_job",
    "get_epoch",
    "new_worker_id",
    "queue_retrying",
    "rebuild_queues",
    "set_epoch",
]
