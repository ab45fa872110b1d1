"""A tiny random-weight Demucs model in a local repository, for tests that go through the real loading and
``apply_model`` path (the published weights cannot be downloaded here)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from demucs.htdemucs import HTDemucs

TINY_MODEL = "tiny"
TINY_SIGNATURE = "7e570001"


def build_tiny_repository(folder: Path, *, seed: int = 0) -> Path:
    """Write ``tiny.yaml`` and ``<signature>-<sha256 prefix>.th`` (an HTDemucs with 4 channels) into ``folder``."""
    torch.manual_seed(seed)
    model = HTDemucs(
        sources=["drums", "bass", "other", "vocals"],
        channels=4,
        dconv_comp=2,
        depth=4,
        segment=2,
        bottom_channels=0,
        t_layers=1,
        t_heads=1,
        t_hidden_scale=1.0,
    )
    args, kwargs = model._init_args_kwargs
    package = {"klass": HTDemucs, "args": args, "kwargs": kwargs, "state": model.state_dict()}
    buffer = io.BytesIO()
    torch.save(package, buffer)
    data = buffer.getvalue()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{TINY_SIGNATURE}-{hashlib.sha256(data).hexdigest()[:8]}.th").write_bytes(data)
    (folder / f"{TINY_MODEL}.yaml").write_text(f"models: ['{TINY_SIGNATURE}']\n", encoding="utf-8")
    return folder
