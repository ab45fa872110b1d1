"""``sonantica models``: list, fetch and import the embedding models' and Demucs' weights (offline machines too)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app

if TYPE_CHECKING:
    from sidecar.analyzers.embedding.weights import WeightsSpec

models_app = typer.Typer(
    help="Embedding and Demucs (stems) weights: list, fetch (download) and import (offline).", no_args_is_help=True
)
app.add_typer(models_app, name="models")

_MODEL_OPTION = typer.Option("--model", help="embedding model whose weights to handle")
_STEMS_OPTION = typer.Option(
    "--stems", help="Demucs weights for stems instead: SONANTICA_STEMS__MODEL, or the Demucs model named by --model"
)


def _stems_model(model: str) -> str:
    from sidecar.settings import get_settings

    return get_settings().stems.model if model == "openl3-music-mel128-512" else model


def _stems_fetch(model: str) -> None:
    from sidecar.settings import get_settings
    from sidecar.stems import models as stems_models

    settings = get_settings()
    try:
        paths = stems_models.fetch(model, settings)
    except stems_models.StemsModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for path in paths:
        typer.echo(f"{model}: {path} (SHA-256 prefix verified)")


def _spec(model: str) -> WeightsSpec:
    from sidecar.analyzers.embedding import MODELS, MUSICNN_DIMS
    from sidecar.analyzers.embedding.weights import configured_weights
    from sidecar.settings import get_settings

    if model not in MODELS:
        raise typer.BadParameter(f"unknown embedding model {model!r}; models: {', '.join(MODELS)}")
    spec = configured_weights(get_settings().embedding, model)
    if spec is None:
        why = " to download: they come with the musicnn package" if model in MUSICNN_DIMS else ""
        raise typer.BadParameter(
            f"{model} needs no weights{why}; models whose weights are fetched: {', '.join(_with_weights())}"
        )
    return spec


def _with_weights() -> list[str]:
    from sidecar.analyzers.embedding import MODELS
    from sidecar.analyzers.embedding.weights import weights_for

    return [m for m in MODELS if weights_for(m) is not None]


def _status(spec: WeightsSpec, model_dir: Path) -> str:
    from sidecar.analyzers.embedding.weights import WeightsChecksumError, cached_path, verify_file

    path = cached_path(spec, model_dir)
    if not path.is_file():
        return "missing"
    try:
        verify_file(spec, path)
    except WeightsChecksumError:
        return "corrupt (run `sonantica models fetch` again)"
    return "ok"


@models_app.command("list")
def list_models() -> None:
    """Show every embedding model, the configured one, and whether its weights are in the cache."""
    from sidecar.analyzers.embedding import MODELS, MUSICNN_DIMS, musicnn_weights
    from sidecar.analyzers.embedding.musicnn_model import checkpoints_of
    from sidecar.analyzers.embedding.weights import cached_path, configured_weights
    from sidecar.settings import get_settings
    from sidecar.stems import models as stems_models

    settings = get_settings()
    model_dir = settings.model_dir
    typer.echo(f"model cache: {model_dir}")
    for model in MODELS:
        spec = configured_weights(settings.embedding, model)
        marker = "*" if model == settings.embedding.model else " "
        if model in MUSICNN_DIMS:
            lines = (musicnn_weights.status(model_dir, checkpoint) for checkpoint in checkpoints_of(model))
            typer.echo(f"{marker} {model}: {'; '.join(lines)}")
        elif spec is None:
            typer.echo(f"{marker} {model}: no weights needed")
        else:
            status = _status(spec, model_dir)
            typer.echo(f"{marker} {model}: weights {status}: {cached_path(spec, model_dir)} (from {spec.url})")
    stems = settings.stems
    if stems.repo is not None:
        typer.echo(f"stems: Demucs {stems.model} from the local repository {stems.repo}")
        return
    typer.echo(f"stems (Demucs, cache {stems_models.cache_dir(settings)}):")
    for name in stems_models.KNOWN_MODELS:
        marker = "*" if name == stems.model else " "
        files = stems_models.cached_status(name, settings)
        typer.echo(f"{marker} {name}: " + ", ".join(f"{file} {state}" for file, state in files.items()))


@models_app.command("fetch")
def fetch(
    model: Annotated[str, _MODEL_OPTION] = "openl3-music-mel128-512",
    stems: Annotated[bool, _STEMS_OPTION] = False,
) -> None:
    """Download the official weights into the model cache and check them (also when stems.offline is set)."""
    from sidecar.analyzers.embedding.weights import WeightsError, cached_path, download_weights, verify_file
    from sidecar.settings import get_settings

    if stems:
        _stems_fetch(_stems_model(model))
        return
    spec, model_dir = _spec(model), get_settings().model_dir
    if _status(spec, model_dir) == "ok":
        typer.echo(f"{model}: already in the cache: {cached_path(spec, model_dir)}")
        return
    try:
        path = download_weights(spec, model_dir)
    except WeightsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{model}: stored {path} (SHA-256 {verify_file(spec, path).sha256})")


@models_app.command("import")
def import_file(
    file: Annotated[Path, typer.Argument(help="the published weights file, downloaded on another machine")],
    model: Annotated[str, _MODEL_OPTION] = "openl3-music-mel128-512",
    stems: Annotated[bool, _STEMS_OPTION] = False,
) -> None:
    """Copy a weights file downloaded elsewhere into the model cache after checking it is the official one."""
    from sidecar.analyzers.embedding.weights import WeightsError, import_weights, verify_file
    from sidecar.settings import get_settings
    from sidecar.stems import models as stems_models

    if stems:
        try:
            path = stems_models.import_file(file, get_settings())
            stems_models.fetch_bag(_stems_model(model), get_settings())
        except stems_models.StemsModelError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(1) from None
        typer.echo(f"stored {path} (SHA-256 prefix verified)")
        return
    spec, model_dir = _spec(model), get_settings().model_dir
    try:
        path = import_weights(spec, file, model_dir)
    except WeightsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{model}: stored {path} (SHA-256 {verify_file(spec, path).sha256})")
