"""``sonantica models``: list, fetch and import the embedding models' weights (for offline machines too)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sidecar.analyzers.embedding import MODELS, MUSICNN_DIMS, musicnn_weights
from sidecar.analyzers.embedding.weights import (
    WeightsChecksumError,
    WeightsError,
    WeightsSpec,
    cached_path,
    configured_weights,
    download_weights,
    import_weights,
    verify_file,
    weights_for,
)
from sidecar.cli.app import app
from sidecar.settings import get_settings

models_app = typer.Typer(
    help="Embedding model weights: list, fetch (download) and import (offline).", no_args_is_help=True
)
app.add_typer(models_app, name="models")

_MODEL_OPTION = typer.Option("--model", help="embedding model whose weights to handle")


def _spec(model: str) -> WeightsSpec:
    spec = configured_weights(get_settings().embedding, model)
    if spec is None:
        raise typer.BadParameter(f"{model} needs no weights; models with weights: {', '.join(_with_weights())}")
    return spec


def _with_weights() -> list[str]:
    return [m for m in MODELS if weights_for(m) is not None]


def _status(spec: WeightsSpec, model_dir: Path) -> str:
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
    settings = get_settings()
    model_dir = settings.model_dir
    typer.echo(f"model cache: {model_dir}")
    for model in MODELS:
        spec = configured_weights(settings.embedding, model)
        marker = "*" if model == settings.embedding.model else " "
        if model in MUSICNN_DIMS:
            typer.echo(f"{marker} {model}: {musicnn_weights.status(model_dir)}")
        elif spec is None:
            typer.echo(f"{marker} {model}: no weights needed")
        else:
            status = _status(spec, model_dir)
            typer.echo(f"{marker} {model}: weights {status}: {cached_path(spec, model_dir)} (from {spec.url})")


@models_app.command("fetch")
def fetch(model: Annotated[str, _MODEL_OPTION] = "openl3-music-mel128-512") -> None:
    """Download the official weights into the model cache and check them (also when embedding.offline is set)."""
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
) -> None:
    """Copy a weights file downloaded elsewhere into the model cache after checking it is the official one."""
    spec, model_dir = _spec(model), get_settings().model_dir
    try:
        path = import_weights(spec, file, model_dir)
    except WeightsError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{model}: stored {path} (SHA-256 {verify_file(spec, path).sha256})")
