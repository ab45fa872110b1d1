"""Write-back as item Tags, pure: format our tags, merge them into a full item, decide whether to write.

Format (one tag per value; see docs/jellyfin.md):

======================  =========================  ==============================================
value                   tag                        rule
======================  =========================  ==============================================
BPM                     ``bpm:128``                rounded half up to a whole number
key                     ``key:A minor``            canonical spelling (sharps, ``major``/``minor``)
Camelot                 ``camelot:8A``             ``1A``-``12B``
ReplayGain track gain   ``replaygain:-7.2 dB``     signed, one decimal, ``dB``
mood / genre labels     ``mood:chill``             as given (:attr:`TrackTags.labels`), after the above
======================  =========================  ==============================================

Tags starting with ``bpm:``, ``key:``, ``camelot:`` or ``replaygain:`` (any case), and tags equal (any case) to a
label of :attr:`TrackTags.label_vocabulary` (e.g. ``genre:rock``), are the sidecar's: they are replaced on every
write-back. Every other tag is the user's and is kept, in its order, including a ``genre:...`` tag the sidecar
never writes (e.g. ``genre:shoegaze``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from typing import Any

from adapters.base import HostResponseError, TrackTags
from adapters.jellyfin import const

_CAMELOT = re.compile(r"(1[0-2]|[1-9])[AB]")
_KEY = re.compile(r"[A-G][#b]? (major|minor)")


def is_our_tag(tag: str, label_vocabulary: frozenset[str] = frozenset()) -> bool:
    """True for a tag the sidecar owns: one of our prefixes, or one of ``label_vocabulary`` (case-insensitive)."""
    lowered = tag.lower()
    return lowered in label_vocabulary or any(lowered.startswith(prefix) for prefix in const.OUR_TAG_PREFIXES)


def format_tags(tags: TrackTags) -> list[str]:
    """Our tags for ``tags``, in a fixed order; ``None`` values give no tag.

    Raises ``ValueError`` on values that cannot be written: a BPM that is not a positive finite number, a key not
    spelled ``<tonic> major|minor``, a Camelot code outside ``1A``-``12B``, a gain that is not finite.
    ``loudness_lufs`` is not written: the ReplayGain tag carries the same information. ``labels`` follow in their
    order; one that is not in ``label_vocabulary`` is refused (``ValueError``): it could never be removed again.
    """
    out: list[str] = []
    if tags.bpm is not None:
        if not math.isfinite(tags.bpm) or tags.bpm <= 0:
            raise ValueError(f"BPM must be a positive number, got {tags.bpm!r}")
        out.append(f"{const.TAG_PREFIX_BPM}{math.floor(tags.bpm + 0.5)}")
    if tags.key is not None:
        if not _KEY.fullmatch(tags.key):
            raise ValueError(f"key must be spelled like 'A minor' or 'C# major', got {tags.key!r}")
        out.append(f"{const.TAG_PREFIX_KEY}{tags.key}")
    if tags.camelot is not None:
        if not _CAMELOT.fullmatch(tags.camelot):
            raise ValueError(f"Camelot code must be 1A-12B, got {tags.camelot!r}")
        out.append(f"{const.TAG_PREFIX_CAMELOT}{tags.camelot}")
    if tags.replaygain_track_gain_db is not None:
        if not math.isfinite(tags.replaygain_track_gain_db):
            raise ValueError(f"ReplayGain must be finite, got {tags.replaygain_track_gain_db!r}")
        gain_db = round(tags.replaygain_track_gain_db, 1) + 0.0  # "+ 0.0" turns -0.0 into 0.0
        out.append(f"{const.TAG_PREFIX_REPLAYGAIN}{gain_db:+.1f} dB")
    for label in tags.labels:
        if label.lower() not in tags.label_vocabulary:
            raise ValueError(f"label {label!r} is not in the label vocabulary, so it could not be removed later")
        out.append(label)
    return out


def _tag_list(item: Mapping[str, Any]) -> list[str]:
    raw = item.get("Tags")
    if raw is None:
        return []
    if not isinstance(raw, list) or not all(isinstance(tag, str) for tag in raw):
        raise HostResponseError("item Tags is not a list of strings")
    return list(raw)


def plan_tag_update(item: Mapping[str, Any], tags: TrackTags) -> dict[str, Any] | None:
    """The whole item to POST back to ``/Items/{id}`` with our tags replaced, or ``None`` if nothing changes.

    ``item`` is the full DTO from ``GET /Items/{id}`` (``POST /Items/{id}`` replaces every field, so nothing may
    be dropped). The user's tags are kept in their order and ours appended; when we write any, ``"Tags"`` is
    added to ``LockedFields`` so a "Replace all metadata" refresh keeps them. A missing or null ``Tags`` or
    ``ProviderIds`` is sent as an empty list/object: Jellyfin answers a null one with HTTP 500. Stream data
    (``MediaSources``, ``MediaStreams``) is left out: the server computes it and UpdateItem ignores it.

    Nothing changes when the item already has exactly our tags (in any order) and, if it has any of ours, the
    Tags lock. Raises ``ValueError`` for unwritable values, ``HostResponseError`` for a malformed item.
    """
    existing = _tag_list(item)
    ours_now = sorted(tag for tag in existing if is_our_tag(tag, tags.label_vocabulary))
    ours_new = format_tags(tags)
    locked = item.get("LockedFields")
    if locked is not None and not isinstance(locked, list):
        raise HostResponseError("item LockedFields is not a list")
    locked_fields = list(locked or [])
    is_locked = const.TAGS_LOCK_FIELD in locked_fields
    if ours_now == sorted(ours_new) and (is_locked or not ours_new):
        return None
    updated = {key: copy.deepcopy(value) for key, value in item.items() if key not in const.UPDATE_ITEM_OMITTED_FIELDS}
    updated["Tags"] = [tag for tag in existing if not is_our_tag(tag, tags.label_vocabulary)] + ours_new
    if ours_new and not is_locked:
        updated["LockedFields"] = [*locked_fields, const.TAGS_LOCK_FIELD]
    if updated.get("ProviderIds") is None:
        updated["ProviderIds"] = {}
    return updated


def normalization_disagreement_db(
    host_gain_db: float | None, loudness_lufs: float | None, *, tolerance_db: float = 1.0
) -> float | None:
    """How far Jellyfin's ``NormalizationGain`` is from the gain our loudness implies, when it is too far.

    Jellyfin reports ``NormalizationGain = -18 - LUFS`` (ReplayGain 2.0 reference, the same as ours), so the gain
    our measurement implies is ``-18 - loudness_lufs``. Returns ``host - ours`` in dB when its magnitude exceeds
    ``tolerance_db``; ``None`` when they agree or either value is unknown (``None`` or not finite).
    """
    if host_gain_db is None or loudness_lufs is None:
        return None
    if not math.isfinite(host_gain_db) or not math.isfinite(loudness_lufs):
        return None
    difference_db = host_gain_db - (const.NORMALIZATION_REFERENCE_LUFS - loudness_lufs)
    return difference_db if abs(difference_db) > tolerance_db else None
