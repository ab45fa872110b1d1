"""Stems on demand: Demucs separation into vocals, drums, bass, other and an instrumental (karaoke) mix.

Pure of storage, queue and API: :mod:`.models` finds and verifies Demucs weights, :mod:`.codec` decodes the
original read-only and encodes the stems, :mod:`.separate` runs the model block by block, :mod:`.files` owns the
stems folder (temporary folders, atomic rename, path checks).
"""

STEMS = ("vocals", "drums", "bass", "other")
"""The four Demucs sources kept, in the order they are listed."""

INSTRUMENTAL = "instrumental"
"""The karaoke mix: drums + bass + other (everything but the vocals)."""

STEM_NAMES = (*STEMS, INSTRUMENTAL)
"""Every file a separation writes."""

SUFFIX: dict[str, str] = {"flac": ".flac", "opus": ".opus"}
"""File name ending per stem format (here, not in :mod:`.codec`, so status and listings need no audio libraries)."""
