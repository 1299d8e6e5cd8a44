"""`tokneigh vocab`: every row of the embedding matrix, as a table or a file."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    CacheDirOption,
    EmbeddingsOption,
    ModelOption,
    help_text,
)
from .help import HelpCommand
from .output import emit, load, report

HELP = """List every row of the embedding matrix: id, token, label, special, unusable,
reachable, norm, padding.

token is the decoded text (empty in TSV and CSV, null in JSON and Parquet, where the
tokenizer names no token); label is how the other tables show it; special marks control
tokens, reserved slots and unnamed rows (what neighbour lists hide); unusable marks rows of
NaN, infinite values or zeros (never ranked); reachable says that encoding the token's own text
gives its id (as `tokneigh scan` decides); norm is the raw row's L2 norm (null where the row
holds NaN or infinite values); padding marks rows past the tokenizer (Qwen2 and Phi pad the
matrix).

The table shows counts for the whole vocabulary and its first --top rows (default 20): a
vocabulary has 30,000 to 250,000 rows, more than anyone reads in a terminal. json, tsv, csv and
parquet hold every row; --output FILE writes them to FILE (parquet always needs it, with the
model's facts as the file's key-value metadata, as `tokneigh graph` writes them). Without
--format, the extension of FILE (.json, .tsv, .csv, .parquet) picks the format.

Examples:

  tokneigh vocab

  tokneigh vocab --output gpt2-vocab.parquet

  tokneigh vocab --format csv > vocab.csv
"""

DEFAULT_TOP = 20


class VocabFormat(str, Enum):
    table = "table"
    json = "json"
    tsv = "tsv"
    csv = "csv"
    parquet = "parquet"


_EXTENSIONS = {".json": "json", ".tsv": "tsv", ".csv": "csv", ".parquet": "parquet"}


def pick_format(asked: VocabFormat | None, output_file: Path | None, top: int | None) -> str:
    """The format to write, from --format or the output file's extension; refused when the
    options contradict each other."""
    from ..errors import UsageError

    if asked is not None:
        fmt = asked.value
    elif output_file is None:
        fmt = "table"
    else:
        found = _EXTENSIONS.get(output_file.suffix.lower())
        if found is None:
            raise UsageError(
                f"output {output_file}: the file name must end in {', '.join(_EXTENSIONS)}, "
                "or --format must name the format"
            )
        fmt = found
    if fmt == "table" and output_file is not None:
        raise UsageError("--output writes json, tsv, csv or parquet, not the table")
    if fmt == "parquet" and output_file is None:
        raise UsageError("parquet is a binary file: give --output FILE")
    if top is not None and fmt != "table":
        raise UsageError(f"--top limits the table; {fmt} holds every row")
    return fmt


def vocab(
    output: Annotated[
        VocabFormat | None,
        typer.Option(
            "--format",
            "-f",
            case_sensitive=False,
            metavar="table|json|tsv|csv|parquet",
            help="table for people (counts and the first rows); json, tsv, csv, parquet hold "
            "every row.",
            show_default=False,
        ),
    ] = None,
    output_file: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write to FILE instead of stdout (required for parquet).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[
        int | None,
        typer.Option(
            "--top",
            "-k",
            min=1,
            metavar="N",
            help=f"Rows the table shows, the first ids (default {DEFAULT_TOP}).",
            show_default=False,
        ),
    ] = None,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    fmt = pick_format(output, output_file, top)
    if output_file is not None:
        from ..present.graphfile import destination

        destination(output_file)  # a missing folder or a FIFO fails before the work
    emb = load(model, cache_dir, embeddings)
    table = emb.vocabulary_table()
    if output_file is None:
        table.shown = top if top is not None else DEFAULT_TOP
        emit(table, fmt)
        return
    from ..present.graphfile import describe_model
    from ..present.vocabfile import write_vocabulary

    write_vocabulary(table, output_file, fmt, describe_model(emb))
    report(f"wrote {table.vocab_size:,} rows to {output_file} ({fmt})")


def register(app: typer.Typer) -> None:
    app.command("vocab", cls=HelpCommand, help=help_text(HELP))(vocab)
