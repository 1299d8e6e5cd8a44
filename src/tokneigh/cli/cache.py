"""`tokneigh cache ...`: list, build, clear and locate cached models."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    MODEL_KINDS,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    ModelOption,
    help_text,
    non_empty_model,
)
from .help import HelpCommand, HelpGroup
from .output import emit, report

app = typer.Typer(
    cls=HelpGroup,
    help=help_text(
        "Manage the cache of extracted embedding matrices.\n\n"
        "Examples:\n\n"
        "  tokneigh cache list\n\n"
        "  tokneigh cache build --model ./my-checkpoint\n\n"
        "  tokneigh cache clear --model gpt2"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _root(cache_dir):  # -> Path
    from ..store.layout import resolve_root

    return resolve_root(cache_dir)


@app.command(
    "path",
    cls=HelpCommand,
    help=help_text("Print the cache root.\n\nExample:\n\n  tokneigh cache path"),
)
def path(cache_dir: CacheDirOption = None) -> None:
    typer.echo(str(_root(cache_dir)))


@app.command(
    "list",
    cls=HelpCommand,
    help=help_text(
        "List cached models: name, full path or hub, vocabulary, dims, size on disk, entry "
        "folder. The name is what `cache clear --model` takes.\n\n"
        "Examples:\n\n  tokneigh cache list\n\n  tokneigh cache list --format json"
    ),
)
def list_(output: FormatOption = DEFAULT_FORMAT, cache_dir: CacheDirOption = None) -> None:
    from ..store.listing import list_entries
    from .reports import CacheListing

    root = _root(cache_dir)
    listing = CacheListing(str(root), list_entries(root))
    if not listing.entries and output.value == "table":
        report(f"no cached models in {root}")
        return
    emit(listing, output)


@app.command(
    "build",
    cls=HelpCommand,
    help=help_text(
        "Extract and cache a model now, so that the first query is fast.\n\n"
        "Examples:\n\n  tokneigh cache build --model gpt2\n\n"
        "  tokneigh cache build --model ./my-checkpoint --force"
    ),
)
def build(
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..api.loading import load
    from .reports import CacheBuild

    emb = load(
        model, cache_dir=cache_dir, rebuild=force, report=report, embeddings=embeddings.value
    )
    done = CacheBuild(
        emb.model, emb.embeddings, emb.vocab_size, emb.dim, str(emb.path), emb.built_seconds
    )
    emit(done, "table")


@app.command(
    "clear",
    cls=HelpCommand,
    help=help_text(
        "Remove one model's entries (--model, as `cache list` names it, or its hub id or "
        "folder) or every tokneigh entry (--all). Other files in the cache root are left "
        "alone, and a build in progress is never broken.\n\nExamples:\n\n"
        "  tokneigh cache clear --model gpt2\n\n  tokneigh cache clear --all"
    ),
)
def clear(
    all_: Annotated[bool, typer.Option("--all", help="Remove every cached model.")] = False,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            metavar="NAME",
            callback=non_empty_model,
            help=f"The model whose entries to remove: as `cache list` names it, or {MODEL_KINDS}.",
        ),
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import TokneighError, UsageError
    from ..sources.models import resolve
    from ..store import listing
    from .reports import CacheRemoval

    root = _root(cache_dir)
    if all_ == (model is not None):
        raise UsageError("say which: --model NAME or --all")
    if all_:
        emit(CacheRemoval(str(root), listing.clear_all(root)), "table")
        return
    assert model is not None
    try:
        source = resolve(model)
    except TokneighError:  # a folder that no longer exists can still be named as listed
        source = None
    found = listing.matching_entries(root, model, source)
    removed = listing.remove_entries(root, found)
    if not removed:
        report(f"{model} is not cached in {root} (see 'tokneigh cache list')")
        return
    emit(CacheRemoval(str(root), removed), "table")
