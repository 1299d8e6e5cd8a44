"""`tokneigh cache ...`: list, build, clear and locate cached models."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    CacheDirOption,
    EmbeddingsOption,
    ModelOption,
    help_text,
    load,
)

app = typer.Typer(
    help=help_text(
        "Manage the cache of extracted embedding matrices.\n\n"
        "Examples:\n\n"
        "  tokneigh cache list\n\n"
        "  tokneigh cache build --model ./my-checkpoint\n\n"
        "  tokneigh cache clear --model gpt2"
    ),
    no_args_is_help=True,
)


def _root(cache_dir):  # -> Path
    from ..cache import resolve_root

    return resolve_root(cache_dir)


@app.command("path", help=help_text("Print the cache root.\n\nExample:\n\n  tokneigh cache path"))
def path(cache_dir: CacheDirOption = None) -> None:
    typer.echo(str(_root(cache_dir)))


@app.command(
    "list",
    help=help_text(
        "List cached models: name, source, vocabulary, dims, size on disk.\n\n"
        "Example:\n\n  tokneigh cache list"
    ),
)
def list_(cache_dir: CacheDirOption = None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from ..cache import list_entries

    root = _root(cache_dir)
    entries = list_entries(root)
    if not entries:
        typer.echo(f"no cached models in {root}", err=True)
        return
    table = Table(title=Text(f"tokneigh cache · {root}"), title_justify="left")
    for column in ("model", "source", "vocab", "dims", "size", "entry"):
        table.add_column(column, justify="right" if column in ("vocab", "dims", "size") else "left")
    for folder, meta, size in entries:
        if meta is None:
            table.add_row(
                Text("(damaged: rebuilt on next use)"), "", "", "", _mb(size), folder.name
            )
        else:
            table.add_row(
                Text(meta["model"] + (" (output)" if meta.get("embeddings") == "output" else "")),
                meta["source"],
                f"{meta['vocab_size']:,}",
                str(meta["dim"]),
                _mb(size),
                folder.name,
            )
    Console(highlight=False).print(table)


def _mb(size: int) -> str:
    return f"{size / 1e6:,.1f} MB"


@app.command(
    "build",
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
    from ..api import load as api_load
    from .common import report

    emb = (
        api_load(
            model, cache_dir=cache_dir, rebuild=force, report=report, embeddings=embeddings.value
        )
        if force
        else load(model, cache_dir, embeddings)
    )
    kind = " (output embeddings)" if emb.embeddings == "output" else ""
    typer.echo(f"{emb.model}{kind}: {emb.vocab_size:,} x {emb.dim} at {emb.path}")


@app.command(
    "clear",
    help=help_text(
        "Remove one model's entry (--model) or every tokneigh entry (--all). Other files in "
        "the cache root are left alone.\n\nExamples:\n\n  tokneigh cache clear --model gpt2\n\n"
        "  tokneigh cache clear --all"
    ),
)
def clear(
    all_: Annotated[bool, typer.Option("--all", help="Remove every cached model.")] = False,
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="The model whose entry to remove.")
    ] = None,
    cache_dir: CacheDirOption = None,
) -> None:
    from .. import cache
    from ..errors import UsageError
    from ..models import resolve

    root = _root(cache_dir)
    if all_ == (model is not None):
        raise UsageError("say which: --model NAME or --all")
    if all_:
        count = cache.clear_all(root)
        typer.echo(f"removed {count} cached model(s) from {root}")
        return
    source = resolve(model)
    from ..api import EMBEDDINGS_KINDS, entry_folder_name

    # Every matrix cached for the model goes: input, and output if it was built.
    folders = {kind: entry_folder_name(source, kind) for kind in EMBEDDINGS_KINDS}
    removed = [kind for kind, name in folders.items() if cache.remove_entry(root, name)]
    if removed:
        what = " and ".join(removed)
        typer.echo(f"removed {source.name} ({what} embeddings) from {root}")
    else:
        typer.echo(f"{source.name} is not cached in {root}", err=True)
