"""Demucs weights: the published files, their checksums, download, import, and loading a model.

**Where the weights come from.** Demucs 4 lists its published files in ``demucs/remote/files.txt`` (installed with
the package): each line is ``<signature>-<checksum>.th`` under a ``root:`` folder of
``https://dl.fbaipublicfiles.com/demucs/``; a named model such as ``htdemucs`` is a bag in
``demucs/remote/<name>.yaml`` listing its signatures (``htdemucs``: one model, ``htdemucs_ft``: four, ``mdx_extra``:
four). **Checksums**: the 8 hex digits after the ``-`` are the first digits of the file's SHA-256, which is what
Demucs itself checks (``demucs.repo.check_checksum`` and ``torch.hub``'s ``check_hash``); this module checks the same
before a file enters the cache, and Demucs checks it again when it loads the file.

**Cache layout** (``<model_dir>/demucs``, a Demucs *local repository*)::

    htdemucs.yaml                 # the bag, copied from the installed package
    955717e8-8726e21a.th          # verified, never modified
    955717e8-8726e21a.th.*.partial  # only while a download or import is in progress

Models are always loaded from a local repository (the cache, or ``stems.repo``), so Demucs never downloads on its
own (no HuggingFace hub, no ``torch.hub``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import tempfile
import urllib.parse
import urllib.request
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from sidecar.errors import SidecarError
from sidecar.settings import Settings

log = logging.getLogger(__name__)

ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"
"""Where Demucs publishes its weights (``demucs.pretrained.ROOT_URL``)."""

KNOWN_MODELS = ("htdemucs", "htdemucs_ft", "mdx_extra")
"""Named models documented for stems (any bag in the installed ``demucs/remote`` also works)."""

_FILE_NAME = re.compile(r"^(?P<sig>[0-9a-f]{8})-(?P<checksum>[0-9a-f]{8})\.th$")
_CHUNK_BYTES = 1 << 20


class StemsModelError(SidecarError):
    """A Demucs model cannot be had or loaded; the message names the file and the command that fixes it."""


class StemsModelMissingError(StemsModelError):
    """A weights file is not in the cache (offline, or the download failed)."""


class StemsModelChecksumError(StemsModelError):
    """A file is not the published weights file it claims to be."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One published weights file."""

    signature: str  # e.g. "955717e8"
    filename: str  # e.g. "955717e8-8726e21a.th"
    url: str

    @property
    def checksum(self) -> str:
        """The SHA-256 prefix carried by the file name."""
        return self.filename.rsplit("-", 1)[1].removesuffix(".th")


def _remote_dir() -> Any:
    return resources.files("demucs") / "remote"


def published_files() -> dict[str, RemoteFile]:
    """Signature -> published file, from the installed ``demucs/remote/files.txt``."""
    found: dict[str, RemoteFile] = {}
    root = ""
    for raw in (_remote_dir() / "files.txt").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
            continue
        match = _FILE_NAME.match(line)
        if match is not None:
            found[match["sig"]] = RemoteFile(match["sig"], line, ROOT_URL + root + line)
    return found


def bag_text(name: str) -> str | None:
    """The installed bag definition ``demucs/remote/<name>.yaml``, or ``None`` for an unknown name."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        return None
    path = _remote_dir() / f"{name}.yaml"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def model_files(name: str) -> list[RemoteFile]:
    """The published files the named model needs; raises :class:`StemsModelError` for an unknown name."""
    text = bag_text(name)
    if text is None:
        raise StemsModelError(
            f"unknown Demucs model {name!r}: use one of {', '.join(KNOWN_MODELS)} or set SONANTICA_STEMS__REPO to a"
            " local Demucs repository that has it"
        )
    published = published_files()
    signatures = [str(sig) for sig in yaml.safe_load(text)["models"]]
    missing = [sig for sig in signatures if sig not in published]
    if missing:
        raise StemsModelError(f"Demucs model {name!r} lists unpublished signatures {missing}")
    return [published[sig] for sig in signatures]


def cache_dir(settings: Settings) -> Path:
    """The Demucs local repository inside the model cache."""
    return settings.model_dir / "demucs"


def sha256_prefix_ok(path: Path, checksum: str) -> bool:
    """Whether the SHA-256 of ``path`` starts with ``checksum`` (how Demucs names its files)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest().startswith(checksum)


def how_to_get(file: RemoteFile, settings: Settings) -> str:
    """The sentence that tells a user how to put ``file`` into the cache."""
    return (
        f"Run `sonantica models fetch --stems` on a machine with internet access, or download {file.url} elsewhere"
        f" and run `sonantica models import --stems FILE` (cache: {cache_dir(settings)})."
    )


def _install_verified(partial: Path, file: RemoteFile, target_dir: Path) -> Path:
    if not sha256_prefix_ok(partial, file.checksum):
        partial.unlink(missing_ok=True)
        raise StemsModelChecksumError(
            f"{file.filename}: the SHA-256 does not start with {file.checksum} (the checksum in the published name);"
            " the file is corrupt or not the published one"
        )
    target = target_dir / file.filename
    partial.replace(target)
    return target


def _partial(target_dir: Path, file: RemoteFile) -> tuple[Any, Path]:
    target_dir.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed by the caller, kept on success
        dir=target_dir, prefix=f"{file.filename}.", suffix=".partial", delete=False
    )
    return handle, Path(handle.name)


def download(file: RemoteFile, settings: Settings, *, timeout_s: float = 60.0) -> Path:
    """Download ``file`` into the cache and verify it; nothing stays in the cache unless the checksum matches."""
    scheme = urllib.parse.urlsplit(file.url).scheme
    if scheme not in ("https", "http"):
        raise StemsModelError(f"refusing to download weights from a {scheme!r} URL: {file.url}")
    handle, partial = _partial(cache_dir(settings), file)
    log.info("downloading Demucs weights %s", file.url)
    try:
        with handle, urllib.request.urlopen(file.url, timeout=timeout_s) as response:  # noqa: S310 - scheme checked
            shutil.copyfileobj(response, handle, _CHUNK_BYTES)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise StemsModelMissingError(f"could not download {file.url} ({exc}). {how_to_get(file, settings)}") from exc
    return _install_verified(partial, file, cache_dir(settings))


def import_file(source: Path, settings: Settings) -> Path:
    """Copy a published ``<sig>-<checksum>.th`` downloaded elsewhere into the cache after checking its checksum."""
    if not source.is_file():
        raise StemsModelMissingError(f"cannot import {source}: no such file")
    file = published_files().get(source.name.split("-", 1)[0])
    if file is None or file.filename != source.name:
        raise StemsModelError(
            f"{source.name} is not a published Demucs weights file (expected a name like 955717e8-8726e21a.th from"
            f" {ROOT_URL})"
        )
    handle, partial = _partial(cache_dir(settings), file)
    with handle, source.open("rb") as src:
        shutil.copyfileobj(src, handle, _CHUNK_BYTES)
    return _install_verified(partial, file, cache_dir(settings))


def fetch_bag(name: str, settings: Settings) -> None:
    """Copy the named model's bag definition into the cache (imports bring only the ``.th`` files)."""
    model_files(name)  # unknown names raise
    _write_bag(name, settings)


def _write_bag(name: str, settings: Settings) -> None:
    text = bag_text(name)
    assert text is not None
    target = cache_dir(settings) / f"{name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.write_text(text, encoding="utf-8")


def cached_status(name: str, settings: Settings) -> dict[str, str]:
    """``{file name: "ok" | "missing" | "corrupt"}`` for the named model's files in the cache."""
    status: dict[str, str] = {}
    for file in model_files(name):
        path = cache_dir(settings) / file.filename
        if not path.is_file():
            status[file.filename] = "missing"
        else:
            status[file.filename] = "ok" if sha256_prefix_ok(path, file.checksum) else "corrupt"
    return status


def fetch(name: str, settings: Settings) -> list[Path]:
    """Put every file of the named model into the cache (downloading what is missing or corrupt); returns them."""
    paths: list[Path] = []
    for file, state in zip(model_files(name), cached_status(name, settings).values(), strict=True):
        path = cache_dir(settings) / file.filename
        if state != "ok":
            path.unlink(missing_ok=True)
            path = download(file, settings)
        paths.append(path)
    _write_bag(name, settings)
    return paths


def ensure_repository(settings: Settings) -> Path:
    """The local repository to load ``stems.model`` from: ``stems.repo`` as it is, else the cache, completed by a
    download unless ``stems.offline``. Raises :class:`StemsModelMissingError` naming the first missing file."""
    config = settings.stems
    if config.repo is not None:
        if not config.repo.is_dir():
            raise StemsModelMissingError(f"SONANTICA_STEMS__REPO={config.repo} is not a folder")
        return config.repo
    status = cached_status(config.model, settings)
    absent = [name for name, state in status.items() if state != "ok"]
    if absent:
        if config.offline:
            file = next(f for f in model_files(config.model) if f.filename == absent[0])
            raise StemsModelMissingError(
                f"Demucs weights {file.filename} for model {config.model!r} are {status[file.filename]} in the"
                f" model cache and offline mode is on (SONANTICA_STEMS__OFFLINE). {how_to_get(file, settings)}"
            )
        fetch(config.model, settings)
    _write_bag(config.model, settings)
    return cache_dir(settings)


def load_model(settings: Settings) -> Any:
    """The configured Demucs model (a single model or a bag), in eval mode on the CPU.

    Raises :class:`StemsModelError` when it cannot be found, fails its checksum or cannot be read.
    """
    repo = ensure_repository(settings)
    from demucs.pretrained import get_model
    from demucs.repo import ModelLoadingError

    name = settings.stems.model
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.load and Demucs' own deprecation notices
            return get_model(name, repo=repo)
    except ModelLoadingError as exc:
        raise StemsModelError(f"Demucs model {name!r} in {repo}: {exc}") from None
    except (OSError, RuntimeError, KeyError, ValueError, EOFError, AttributeError, ImportError) as exc:
        raise StemsModelError(f"Demucs model {name!r} in {repo} could not be read: {exc!r}") from None
    except SystemExit as exc:  # demucs.utils.fatal exits on a missing repository
        raise StemsModelError(f"Demucs model {name!r}: {repo} is not a usable repository ({exc})") from None


def model_version(settings: Settings) -> str:
    """What made the stems: ``demucs <version> <model> (<repo>)``."""
    import demucs

    where = str(settings.stems.repo) if settings.stems.repo is not None else "published weights"
    return f"demucs {demucs.__version__} {settings.stems.model} ({where})"
