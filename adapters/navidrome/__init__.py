"""Navidrome (Subsonic / OpenSubsonic) adapter."""
