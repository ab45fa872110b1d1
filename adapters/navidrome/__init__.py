"""Navidrome (Subsonic / OpenSubsonic) adapter: library with paths, now playing, playlists; no tag write-back."""

from adapters.navidrome.client import NavidromeAdapter
from adapters.navidrome.config import NavidromeConfig

__all__ = ["NavidromeAdapter", "NavidromeConfig"]
