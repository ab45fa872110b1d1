"""Host adapters (Jellyfin, Navidrome) behind one small protocol; nothing here imports the sidecar."""
