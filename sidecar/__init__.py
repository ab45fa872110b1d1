"""Sonántica sidecar."""
