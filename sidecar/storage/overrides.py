"""BPM and key set by the user, over the analyzers' readings (table ``track_overrides``, migration 0027).

``track_features`` holds the values every query reads (playlists, filters, the per-key indexes, tag write-back), so
an override is written there: its BPM with confidence 1 and no alternative, or its key with confidence 1 and its
Camelot code, either without a missing reason. The analyzer's own values of an overridden group are kept in
``track_overrides.analyzed``; a later analysis of that group goes there too (:func:`divert_analyzed`), and removing
the override writes them back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from psycopg import sql
from psycopg.types.json import Jsonb

from sidecar.domain import KeySignature
from sidecar.errors import NotFoundError
from sidecar.storage import tracks
from sidecar.storage.db import Connection

GROUPS: dict[str, tuple[str, ...]] = {
    "bpm": ("bpm", "bpm_confidence", "bpm_alternative", "bpm_missing_reason"),
    "key": ("key", "key_confidence", "camelot", "key_missing_reason"),
}
"""The overridable groups and the ``track_features`` columns each one sets (its first column is the group's value;
an override has no missing reason, and the analyzer's reason waits in ``analyzed`` like its other values)."""


@dataclass(frozen=True, slots=True)
class Overrides:
    """A track's overrides: the user's ``bpm`` and ``key`` (``None``: not overridden) and the analyzer's own values
    of the overridden groups' columns (``analyzed``; ``None`` where the analyzer had found nothing yet)."""

    bpm: float | None = None
    key: str | None = None
    analyzed: dict[str, object] = field(default_factory=dict)

    @property
    def groups(self) -> list[str]:
        """The overridden groups, in :data:`GROUPS` order."""
        return [group for group in GROUPS if getattr(self, group) is not None]


def _user_columns(value: float | KeySignature) -> dict[str, object]:
    if isinstance(value, KeySignature):
        return {"key": value.name, "key_confidence": 1.0, "camelot": value.camelot, "key_missing_reason": None}
    return {"bpm": float(value), "bpm_confidence": 1.0, "bpm_alternative": None, "bpm_missing_reason": None}


async def get_overrides(conn: Connection, track_id: int) -> Overrides:
    """The track's overrides (empty when it has none). Writers hold the track's row (:func:`tracks.lock_track`),
    so one read under that lock stays current until the transaction ends."""
    cur = await conn.execute("SELECT bpm, key, analyzed FROM track_overrides WHERE track_id = %s", (track_id,))
    row = await cur.fetchone()
    return Overrides() if row is None else Overrides(bpm=row[0], key=row[1], analyzed=dict(row[2]))


async def _save(conn: Connection, track_id: int, overrides: Overrides) -> None:
    if not overrides.groups:
        await conn.execute("DELETE FROM track_overrides WHERE track_id = %s", (track_id,))
        return
    await conn.execute(
        "INSERT INTO track_overrides (track_id, bpm, key, analyzed) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT (track_id) DO UPDATE SET bpm = EXCLUDED.bpm, key = EXCLUDED.key,"
        " analyzed = EXCLUDED.analyzed, updated_at = now()",
        (track_id, overrides.bpm, overrides.key, Jsonb(overrides.analyzed)),
    )


def _checked(group: str, value: float | KeySignature) -> float | KeySignature:
    if group == "key":
        if not isinstance(value, KeySignature):
            raise ValueError(f"key must be a KeySignature (got {value!r})")
        return value
    if isinstance(value, KeySignature) or not 0 < value <= 1000:
        raise ValueError(f"bpm must be above 0 and at most 1000 (got {value})")
    return float(value)


async def update_overrides(
    conn: Connection, track_id: int, changes: Mapping[str, float | KeySignature | None]
) -> Overrides:
    """Set (a value) or remove (``None``) the named groups' overrides ("bpm": a tempo in BPM, > 0 and <= 1000;
    "key": a :class:`KeySignature`); groups not named stay as they are. Returns the track's overrides afterwards.

    Setting a group that was not overridden keeps the analyzer's values of its columns; removing one writes them
    back. Call in a transaction. Raises ``NotFoundError`` for an unknown track and ``ValueError`` for an unknown
    group or a value out of range.
    """
    unknown = sorted(set(changes) - set(GROUPS))
    if unknown:
        raise ValueError(f"cannot override {', '.join(unknown)}: only {' and '.join(GROUPS)}")
    checked = {group: None if value is None else _checked(group, value) for group, value in changes.items()}
    if not await tracks.lock_track(conn, track_id):
        raise NotFoundError(f"no track with id {track_id}")
    await conn.execute("INSERT INTO track_features (track_id) VALUES (%s) ON CONFLICT DO NOTHING", (track_id,))
    columns = [column for names in GROUPS.values() for column in names]
    cur = await conn.execute(
        sql.SQL("SELECT {} FROM track_features WHERE track_id = %s FOR UPDATE").format(
            sql.SQL(", ").join(map(sql.Identifier, columns))
        ),
        (track_id,),
    )
    row = await cur.fetchone()
    assert row is not None  # inserted above
    current = dict(zip(columns, row, strict=True))
    before = await get_overrides(conn, track_id)
    analyzed = dict(before.analyzed)
    bpm, key = before.bpm, before.key
    writes: dict[str, object] = {}
    for group, value in checked.items():
        names = GROUPS[group]
        overridden = (bpm if group == "bpm" else key) is not None
        if value is None:
            if overridden:
                writes |= {name: analyzed.pop(name, None) for name in names}
        else:
            if not overridden:
                analyzed |= {name: current[name] for name in names}
            writes |= _user_columns(value)
        if group == "key":
            key = value.name if isinstance(value, KeySignature) else None
        elif not isinstance(value, KeySignature):
            bpm = value
    if writes:
        await conn.execute(
            sql.SQL("UPDATE track_features SET {}, updated_at = now() WHERE track_id = %(track_id)s").format(
                sql.SQL(", ").join(
                    sql.SQL("{} = {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in writes
                )
            ),
            {"track_id": track_id, **writes},
        )
    after = Overrides(bpm=bpm, key=key, analyzed=analyzed)
    await _save(conn, track_id, after)
    return after


async def divert_analyzed(conn: Connection, track_id: int, columns: dict[str, object]) -> dict[str, object]:
    """An analyzer's ``track_features`` columns for this track, less those of groups the user overrides: those are
    kept in the override's ``analyzed`` values instead (so removing the override restores the latest reading).
    Call in the transaction that writes the rest."""
    touched = [group for group, names in GROUPS.items() if names[0] in columns]
    if not touched:
        return columns
    await tracks.lock_track(conn, track_id)  # an override committed between this check and the write would be lost
    overrides = await get_overrides(conn, track_id)
    diverted = [name for group in touched if getattr(overrides, group) is not None for name in GROUPS[group]]
    if not diverted:
        return columns
    kept = {**overrides.analyzed, **{name: columns[name] for name in diverted if name in columns}}
    await _save(conn, track_id, Overrides(bpm=overrides.bpm, key=overrides.key, analyzed=kept))
    return {name: value for name, value in columns.items() if name not in diverted}
