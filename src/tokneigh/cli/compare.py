"""`tokneigh compare`: how close two tokens (or words) are."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from .batch import QueriesOption
from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    DEFAULT_METRIC,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    MetricOption,
    ModelOption,
    help_text,
)
from .filters import IncludeSpecialOption
from .help import HelpCommand
from .output import emit, load, make_filters, report

HELP = """Compare A and B: cosine similarity, angle, Pearson correlation of the raw vectors,
both raw norms, and B's rank among A's neighbours.

The rank counts neighbours as `tokneigh neighbors A` lists them: special tokens are left out
unless --include-special.

A and B are text, or #N for token id N (\\#N is the literal text "#N"). --queries FILE reads
one pair per line, A and B separated by a TAB (- for stdin): every line is answered, and a bad
line is reported with its number; the command then exits with an error.

Examples:

  tokneigh compare ban ana

  tokneigh compare "#3364" queen

  tokneigh compare king queen --plot king-queen.png

  tokneigh compare --queries pairs.tsv --format tsv
"""


def compare(
    a: Annotated[
        str | None,
        typer.Argument(metavar="A", help="First text (or #N).", show_default=False),
    ] = None,
    b: Annotated[
        str | None,
        typer.Argument(metavar="B", help="Second text (or #N).", show_default=False),
    ] = None,
    queries_file: QueriesOption = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            metavar="FILE",
            help="Write a scatter of A's raw vector against B's (.png, .svg or .pdf).",
            show_default=False,
        ),
    ] = None,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import UsageError
    from ..present.plot import check_destination

    if queries_file is not None:
        if a is not None or plot is not None:
            raise UsageError("--queries FILE takes the pairs from the file: no A B, no --plot")
        _compare_lines(queries_file, include_special, output, metric, embeddings, model, cache_dir)
        return
    if a is None or b is None:  # as click words a missing argument
        missing = "A B, or --queries FILE" if a is None else "B"
        raise UsageError(f"missing {missing} (see 'tokneigh compare --help')")
    if plot is not None:
        check_destination(plot)  # fail before the (possibly slow) load
    emb = load(model, cache_dir, embeddings, metric)
    result = emb.compare(a, b, filters=make_filters(include_special=include_special))
    if plot is not None:
        from ..present.plot import compare_scatter

        compare_scatter(emb.raw_vector(a), emb.raw_vector(b), result, plot)
        report(f"wrote {plot}")
    emit(result, output)


def _compare_lines(
    spec: str,
    include_special: bool,
    output: Any,
    metric: str,
    embeddings: Any,
    model: str,
    cache_dir: Path | None,
) -> None:
    from ..results import Comparisons
    from .batch import Failures, answer_rows, read_lines, rows

    parsed = rows(read_lines(spec), 2, "A<TAB>B")  # a bad file fails before the load
    emb = load(model, cache_dir, embeddings, metric)
    filters = make_filters(include_special=include_special)
    failures = Failures()
    results = answer_rows(parsed, lambda ab: emb.compare(*ab, filters=filters), failures)
    emit(Comparisons(results), output)
    failures.finish()


def register(app: typer.Typer) -> None:
    app.command("compare", cls=HelpCommand, help=help_text(HELP))(compare)
