"""OpenL3 weights: the official file, its checksums, download, import and cache (conversion: :mod:`.keras`).

**Where the weights come from.** openl3 0.4.x (``marl/openl3``; its code is MIT-licensed, its model weights are
CC BY 4.0: Cramer, Wu, Salamon and Bello, "Look, Listen and Learn More", ICASSP 2019) installs its weights from the
repository's ``models`` branch: ``setup.py`` downloads ``https://github.com/marl/openl3/raw/models/`` +
``openl3_audio_mel128_music-v0_4_0.h5.gz`` and gunzips it to ``openl3_audio_mel128_music.h5``. The cache keeps
that ``.h5.gz`` byte for byte and reads it in memory, so the file on disk can always be checked against the
published identity.

**Checksums.** The ``models`` branch at commit ``c2321e8c1e68213357431f1868380a0ef224ce03`` ("Models for v0.4.0")
lists the file as git blob ``73ff29de441865318c4b3a3f98c40763c4773e7c``: the SHA-1 of ``b"blob <size>\\0"`` plus
the file's bytes, which is what :func:`git_blob_sha1` computes. That identity is certain and always enforced. The
SHA-256 of the file is not published anywhere we could find (the upstream repository has no LFS pointer or
checksum list, and the ``models`` branch's blobs could not be read here), so :data:`OPENL3_MEL128_MUSIC` has
``sha256=None``; ``sonantica models fetch`` prints the SHA-256 of the verified download, and a deployment that
pins it in ``settings.embedding.weights_sha256`` has it enforced as well.

**Downloads** happen only in :func:`download_weights` (``sonantica models fetch``): a worker start-up only looks in
the cache (:func:`cached_weights`), so a network that drops packets never delays it.

**Layout in the cache** (``settings.model_dir``, default ``<data_dir>/models``)::

    openl3_audio_mel128_music-v0_4_0.h5.gz      # verified, never modified
    openl3_audio_mel128_music-v0_4_0.h5.gz.partial   # only while a download or import is in progress
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import shutil
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from sidecar.errors import SidecarError
from sidecar.settings import EmbeddingSettings

log = logging.getLogger(__name__)

_CHUNK_BYTES = 1 << 20


class WeightsError(SidecarError):
    """Model weights are missing, corrupt or not what they should be; the message says what to run."""


class WeightsMissingError(WeightsError):
    """The weights are not in the model cache (and could not or may not be downloaded)."""


class WeightsChecksumError(WeightsError):
    """A file does not match the published checksums of the weights."""


class WeightsFormatError(WeightsError):
    """A weights file could not be read or does not have the layers and shapes the network needs."""


@dataclass(frozen=True, slots=True, kw_only=True)
class WeightsSpec:
    """One published weights file and how to recognise it."""

    model: str  # the embedding model these weights belong to, e.g. "openl3-music-mel128-512"
    filename: str  # name in the cache, the same as the published file's
    url: str  # official download location
    git_blob_sha1: str  # git's object id of the file: SHA-1 of b"blob <size>\0" + content
    sha256: str | None  # SHA-256 of the file; None until established (then only git_blob_sha1 is checked)
    source: str  # where the URL and checksums were taken from


OPENL3_MEL128_MUSIC = WeightsSpec(
    model="openl3-music-mel128-512",
    filename="openl3_audio_mel128_music-v0_4_0.h5.gz",
    url="https://github.com/marl/openl3/raw/models/openl3_audio_mel128_music-v0_4_0.h5.gz",
    git_blob_sha1="73ff29de441865318c4b3a3f98c40763c4773e7c",
    sha256=None,
    source=(
        "marl/openl3 setup.py (base_url + '<name>-v0_4_0.h5.gz', v0.4.x) and the tree of its 'models' branch at"
        " c2321e8c1e68213357431f1868380a0ef224ce03"
    ),
)
"""The official OpenL3 audio weights: mel128 input, trained on music (openl3 0.4.0 release)."""

WEIGHTS: dict[str, WeightsSpec] = {OPENL3_MEL128_MUSIC.model: OPENL3_MEL128_MUSIC}
"""Embedding model name -> the weights it needs (models without an entry need none)."""


def weights_for(model: str, *, url: str | None = None, sha256: str | None = None) -> WeightsSpec | None:
    """The weights ``model`` needs (``None`` for a model without weights), optionally from a mirror ``url`` and
    with a pinned ``sha256``.

    A mirror changes only where the file is downloaded from; the published git blob id is always checked, and the
    pinned SHA-256 as well when given.
    """
    spec = WEIGHTS.get(model)
    if spec is None:
        return None
    return dataclasses.replace(spec, url=url or spec.url, sha256=sha256 or spec.sha256)


def configured_weights(config: EmbeddingSettings, model: str) -> WeightsSpec | None:
    """:func:`weights_for` with the mirror URL and pinned SHA-256 of ``settings.embedding``."""
    return weights_for(model, url=config.weights_url, sha256=config.weights_sha256)


# --------------------------------------------------------------------------------------------------- checksums


@dataclass(frozen=True, slots=True)
class FileDigest:
    """Checksums of one file."""

    size_bytes: int
    git_blob_sha1: str
    sha256: str


def digest_file(path: Path) -> FileDigest:
    """Git blob SHA-1 and SHA-256 of ``path`` in one pass."""
    size = path.stat().st_size
    blob = hashlib.sha1(f"blob {size}\0".encode(), usedforsecurity=False)
    sha256 = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            blob.update(chunk)
            sha256.update(chunk)
    return FileDigest(size, blob.hexdigest(), sha256.hexdigest())


def git_blob_sha1(data: bytes) -> str:
    """Git's object id for a file with content ``data`` (``git hash-object``)."""
    blob = hashlib.sha1(f"blob {len(data)}\0".encode(), usedforsecurity=False)
    blob.update(data)
    return blob.hexdigest()


def verify_file(spec: WeightsSpec, path: Path) -> FileDigest:
    """Check ``path`` against ``spec``'s checksums; raise :class:`WeightsChecksumError` naming what differs."""
    digest = digest_file(path)
    if digest.git_blob_sha1 != spec.git_blob_sha1:
        raise WeightsChecksumError(
            f"{path} is not the official {spec.filename}: git blob SHA-1 {digest.git_blob_sha1}, expected"
            f" {spec.git_blob_sha1}"
        )
    if spec.sha256 is not None and digest.sha256 != spec.sha256:
        raise WeightsChecksumError(
            f"{path} is not the official {spec.filename}: SHA-256 {digest.sha256}, expected {spec.sha256}"
        )
    return digest


# ------------------------------------------------------------------------------------------ cache, fetch, import


def cached_path(spec: WeightsSpec, model_dir: Path) -> Path:
    """Where ``spec``'s file lives in the cache (whether or not it is there)."""
    return model_dir / spec.filename


def missing_message(spec: WeightsSpec, model_dir: Path) -> str:
    """The message for absent weights: what is missing, and the commands that fix it."""
    return (
        f"OpenL3 weights for {spec.model} are missing: they are not in the model cache ({model_dir}); the sidecar"
        " downloads them only when asked. Run `sonantica models fetch` on a machine with internet access, or"
        f" download {spec.url} elsewhere and run `sonantica models import FILE`. Or set"
        " SONANTICA_EMBEDDING__MODEL=timbre-v1, or SONANTICA_EMBEDDING__FALLBACK=true to use the timbre model while"
        " the weights are absent."
    )


def _install_verified(spec: WeightsSpec, partial: Path, model_dir: Path) -> Path:
    """Verify ``partial`` and move it into place; remove it if it is not the official file."""
    try:
        digest = verify_file(spec, partial)
    except WeightsChecksumError:
        partial.unlink(missing_ok=True)
        raise
    target = cached_path(spec, model_dir)
    partial.replace(target)
    log.info(
        "OpenL3 weights verified and stored at %s (%d bytes, SHA-256 %s)", target, digest.size_bytes, digest.sha256
    )
    return target


def _partial_file(spec: WeightsSpec, model_dir: Path) -> tuple[IO[bytes], Path]:
    model_dir.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the caller, kept on success
        dir=model_dir, prefix=f"{spec.filename}.", suffix=".partial", delete=False
    )
    return handle, Path(handle.name)


def download_weights(spec: WeightsSpec, model_dir: Path, *, timeout_s: float = 60.0) -> Path:
    """Download ``spec.url`` into the cache, verify it, and return its path.

    Nothing is left in the cache unless the checksums match. Raises :class:`WeightsMissingError` when the
    download fails and :class:`WeightsChecksumError` when the downloaded bytes are not the official file.
    """
    scheme = urllib.parse.urlsplit(spec.url).scheme
    if scheme not in ("https", "http"):
        raise WeightsError(f"refusing to download weights from a {scheme!r} URL: {spec.url}")
    handle, partial = _partial_file(spec, model_dir)
    log.info("downloading OpenL3 weights from %s", spec.url)
    try:
        with handle, urllib.request.urlopen(spec.url, timeout=timeout_s) as response:  # noqa: S310 - scheme checked
            shutil.copyfileobj(response, handle, _CHUNK_BYTES)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise WeightsMissingError(
            f"could not download {spec.url} ({exc}). " + missing_message(spec, model_dir)
        ) from exc
    return _install_verified(spec, partial, model_dir)


def import_weights(spec: WeightsSpec, source: Path, model_dir: Path) -> Path:
    """Copy a file downloaded elsewhere into the cache after checking it is the official ``spec.filename``.

    ``source`` itself is checked first, so an error names the user's file; the copy is checked again before it
    replaces the cached file. Raises :class:`WeightsChecksumError` (for example for an already decompressed
    ``.h5``: only the published ``.h5.gz`` has a known checksum) or :class:`WeightsMissingError` when ``source``
    cannot be read.
    """
    if not source.is_file():
        raise WeightsMissingError(f"cannot import {source}: no such file")
    try:
        verify_file(spec, source)
    except WeightsChecksumError as exc:
        hint = " (import the published .h5.gz, not a decompressed copy)" if source.suffix == ".h5" else ""
        raise WeightsChecksumError(f"{exc}{hint}") from None
    handle, partial = _partial_file(spec, model_dir)
    with handle, source.open("rb") as src:
        shutil.copyfileobj(src, handle, _CHUNK_BYTES)
    try:
        return _install_verified(spec, partial, model_dir)
    except WeightsChecksumError:
        raise WeightsChecksumError(f"{source} changed while it was copied into the cache; import it again") from None


def cached_weights(spec: WeightsSpec, model_dir: Path) -> Path:
    """The verified cached file; never downloads (that is :func:`download_weights`, ``sonantica models fetch``).

    A cached file that fails the checksum is removed. Raises :class:`WeightsMissingError` with the commands that
    fix it when the file is absent, :class:`WeightsChecksumError` when it was corrupt.
    """
    path = cached_path(spec, model_dir)
    if not path.is_file():
        raise WeightsMissingError(missing_message(spec, model_dir))
    try:
        verify_file(spec, path)
    except WeightsChecksumError as exc:
        clear_cached(spec, model_dir)
        raise WeightsChecksumError(f"{exc}; the corrupt file was removed. {missing_message(spec, model_dir)}") from None
    return path


def clear_cached(spec: WeightsSpec, model_dir: Path) -> None:
    """Remove ``spec``'s file from the cache (a corrupt file is cleared before one retry)."""
    cached_path(spec, model_dir).unlink(missing_ok=True)
