"""``sonantica embed``: the embedding vector of audio files, as JSON lines or a short summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from sidecar.cli.app import app
from sidecar.errors import FatalAnalyzerError

if TYPE_CHECKING:
    from sidecar.domain import EmbeddingResult


def _files(paths: list[Path]) -> list[Path]:
    """The given files, and the files under given folders (sorted); missing paths are kept to be reported."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            files.append(path)
    return files


def ranked_tags(result: EmbeddingResult) -> dict[str, float]:
    """The result's mood/genre tag probabilities (MusiCNN models only), canonical names, most probable first."""
    from sidecar.analyzers.tags import canonical_tag

    ranked = sorted(((canonical_tag(tag), p) for tag, p in result.tags), key=lambda item: (-item[1], item[0]))
    return {tag: round(float(p), 4) for tag, p in ranked}


@app.command()
def embed(
    paths: Annotated[list[Path], typer.Argument(help="audio files, or folders searched recursively")],
    json_lines: Annotated[
        bool, typer.Option("--json", help='one {"path", "model", "embedding"[, "tags"]} per line')
    ] = False,
    model: Annotated[
        Literal[
            "musicnn-msd-mtt-harmonic-pool-ln-1506",
            "musicnn-msd-pool-753",
            "musicnn-msd-taggram-50",
            "musicnn-msd-mtt-harmonic-pool-1506",
            "openl3-music-mel128-512",
            "timbre-v1",
        ]
        | None,
        typer.Option("--model", help="embedding model; default: the configured embedding.model"),
    ] = None,
) -> None:
    """Print the 'how it sounds' vector of each file. Exit status 1 when some file failed, 2 when none could run.

    An explicit --model is used or the command fails with the reason: it never falls back to another model.
    """
    from sidecar.analyzers.embedding import EmbeddingAnalyzer
    from sidecar.analyzers.pipeline import analyze_file
    from sidecar.domain import EmbeddingResult
    from sidecar.settings import get_settings

    settings = get_settings()
    if model is not None:
        chosen = settings.embedding.model_copy(update={"model": model, "fallback": False})
        settings = settings.model_copy(update={"embedding": chosen})
    analyzer = EmbeddingAnalyzer(settings)
    try:
        analyzer.check()
    except FatalAnalyzerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    failed = False
    for path in _files(paths):
        analysis = analyze_file(path, [analyzer])
        result = analysis.results.get(analyzer.name)
        if not isinstance(result, EmbeddingResult):
            failed = True
            failure = analysis.failures.get(analyzer.name)
            reason = analysis.error or (failure.error if failure else "no result")
            typer.echo(json.dumps({"path": str(path), "error": reason}) if json_lines else f"{path}: error: {reason}")
            continue
        tags = ranked_tags(result)
        if json_lines:
            row = {"path": str(path), "model": result.model, "embedding": [float(v) for v in result.vector]}
            typer.echo(json.dumps(row | ({"tags": tags} if tags else {})))
        else:
            head = ", ".join(f"{v:+.3f}" for v in result.vector[:4])
            top = ", ".join(f"{tag} {p:.2f}" for tag, p in list(tags.items())[:3])
            typer.echo(
                f"{path}: {result.model} ({result.vector.shape[0]} dims) [{head}, ...]"
                + (f" tags: {top}" if top else "")
            )
    if failed:
        raise typer.Exit(1)
