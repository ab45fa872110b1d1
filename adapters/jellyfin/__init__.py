"""Jellyfin adapter."""
