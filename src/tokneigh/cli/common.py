"""Options and helpers shared by the command modules."""

from __future__ import annotations

import sys
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from ..sources.models import DEFAULT_MODEL


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    tsv = "tsv"
    csv = "csv"


MODEL_KINDS = (
    "a Hugging Face hub id (gpt2), a local checkpoint folder, a GGUF file or ollama:NAME "
    "(a model Ollama has pulled)"
)


def non_empty_model(value: str | None) -> str | None:
    """Refuse an empty model name: usually an unset shell variable (``--model "$MINILM"``),
    which must not quietly become the default model. (An empty TOKNEIGH_MODEL is unset.)"""
    if value is not None and not value.strip():
        raise typer.BadParameter(
            "the name is empty (an unset shell variable?): give a hub id, a checkpoint "
            "folder, a GGUF file or ollama:NAME"
        )
    return value


ModelOption = Annotated[
    str,
    typer.Option(
        "--model",
        "-m",
        envvar="TOKNEIGH_MODEL",
        metavar="NAME",
        callback=non_empty_model,
        help=f"The model: {MODEL_KINDS}.",
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="TOKNEIGH_CACHE_DIR",
        metavar="PATH",
        help="Cache root (default: ~/.cache/tokneigh).",
        show_default=False,
    ),
]
FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        case_sensitive=False,
        metavar="table|json|tsv|csv",
        help="table for people; json, tsv, csv for scripts.",
    ),
]
DEFAULT_FORMAT = OutputFormat.table


class EmbeddingsKind(str, Enum):
    input = "input"
    output = "output"


EmbeddingsOption = Annotated[
    EmbeddingsKind,
    typer.Option(
        "--embeddings",
        case_sensitive=False,
        metavar="input|output",
        help="Which matrix: input (token embeddings) or output (the LM head, cached apart; "
        "tied models have one matrix for both).",
    ),
]
DEFAULT_EMBEDDINGS = EmbeddingsKind.input
MetricOption = Annotated[
    str,
    typer.Option(
        "--metric",
        metavar="cosine|centered|abtt[:D]|csls[:K]",
        help="Similarity: cosine; centered (mean row removed); abtt (also the top D principal "
        "components, default dim/100); csls (2 cos - r(x) - r(y), r the mean cosine of the K "
        "nearest, default 10). Computed once per model and cached.",
    ),
]
DEFAULT_METRIC = "cosine"
# B's matrix, for the commands that read a second model (diff, align, serve).
AgainstEmbeddingsOption = Annotated[
    EmbeddingsKind | None,
    typer.Option(
        "--against-embeddings",
        case_sensitive=False,
        metavar="input|output",
        help="B's matrix (default: A's).",
        show_default=False,
    ),
]
# The map's options (layout, export): one spelling, one check.
LayoutMethodOption = Annotated[
    str,
    typer.Option(
        "--method",
        metavar="umap|pca",
        help="umap (over the exact kNN graph) or pca (top two principal components).",
    ),
]
LayoutNeighborsOption = Annotated[
    int,
    typer.Option(
        "--neighbors",
        min=1,
        metavar="K",
        help="Neighbours per token in the exact graph the layout and its clusters use.",
    ),
]
LayoutSeedOption = Annotated[
    int, typer.Option("--seed", min=0, metavar="N", help="UMAP's and Leiden's seed.")
]


def layout_method(method: str) -> str:
    """``--method`` as the API takes it, or a usage error."""
    from ..errors import UsageError

    method = method.lower()
    if method not in ("umap", "pca"):
        raise UsageError(f"--method is umap or pca, not {method!r}")
    return method
DEFAULT = DEFAULT_MODEL


def help_text(text: str) -> str:
    """Command help as cli/help.py shows it: each paragraph on one line (the help page
    reflows it to the terminal; the source wraps at 100 columns), and indented example lines
    marked with "$ " and kept one per line. Text is plain: "[CLS]" shows as typed."""
    blocks = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        if all(line.startswith("  ") for line in lines):
            # Typer dedents help text, which would leave a lone example flush left: mark
            # example lines with a prompt instead of indentation.
            block = "\n".join("$ " + line.strip() for line in lines)
        else:
            block = " ".join(line.strip() for line in lines)
        blocks.append(block)
    return "\n\n".join(blocks)


def error_line(message: str) -> None:
    """One line on stderr: the whole of an error report."""
    text = " ".join(str(message).split())
    print(f"tokneigh: error: {text}", file=sys.stderr, flush=True)
