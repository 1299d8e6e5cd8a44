"""`tokneigh neighbors`: the tokens nearest to a query."""

from __future__ import annotations

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
from .crossmodel import InEmbeddingsOption, InOption, RefineOption, SeedOption
from .filters import DedupeOption, IncludeSpecialOption, MinSimOption, PlotOption, WordsOnlyOption
from .help import HelpCommand
from .output import clamp_top, emit, load, make_filters, note_shortfall, report

HELP = """Rank every token by cosine similarity to each QUERY.

A query is text, tokenized exactly as the model does it ("Mike" and " Mike" are different
GPT-2 tokens); a query of several tokens uses the mean of their unit vectors. #N is token id N
in any query (the same as --id N); \\#N is the literal text "#N".

--queries FILE reads one query per line (- for stdin): every line is answered, and a bad line
(a blank one, say) is reported with its number; the command then exits with an error.

Special tokens (<|endoftext|>, [CLS], [unused12], rows the tokenizer does not name) are left
out unless --include-special; a query's own special token still answers (--id 50256).
Filters (--dedupe, --min-sim, --words-only) apply to the ranking of the whole vocabulary
before --top is taken, and ranks run 1..k over what remains. --plot draws a bar chart.

A vector is a query too (--vector FILE.npy, --vector FILE.npy:ROW, --centroid): a direction
read as tokens, by cosine or, with --score dot, by its raw product with the rows.

Examples:

  tokneigh neighbors Mike --top 20

  tokneigh neighbors " Mike" banana --format json

  tokneigh neighbors "#50256" --model ./my-checkpoint

  tokneigh neighbors --queries words.txt --format json

  tokneigh neighbors Mike --dedupe --words-only --min-sim 0.3

  tokneigh neighbors king --top 15 --plot king.png

  tokneigh neighbors --vector steering.npy --top 10

  tokneigh neighbors --centroid --score dot --embeddings output

--in B reads each query of the model among B's tokens: A's query vector, centred and mapped
as `align --model A --against B` fits the map (--refine, --seed; fitted and cached on first
use, then read), ranked among B's tokens by cosine. It works for tokens B lacks; when B has the
query as one token, the list says where B's own token ranks.

  tokneigh neighbors " tokenization" --model gpt2 --in ./llama-style
"""


def neighbors(
    queries: Annotated[
        list[str] | None,
        typer.Argument(metavar="QUERY", help="Text to look up.", show_default=False),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, metavar="N", help="How many neighbours.")
    ] = 20,
    ids: Annotated[
        list[int] | None,
        typer.Option("--id", metavar="N", help="Query a token id directly (repeatable)."),
    ] = None,
    vectors: Annotated[
        list[str] | None,
        typer.Option(
            "--vector",
            metavar="FILE.npy[:ROW]",
            help="Query a vector: a 1-D .npy array, or one ROW of a 2-D one (repeatable).",
        ),
    ] = None,
    centroid: Annotated[
        bool, typer.Option("--centroid", help="Query the mean row of the matrix.")
    ] = False,
    queries_file: QueriesOption = None,
    score: Annotated[
        str,
        typer.Option(
            "--score",
            metavar="cosine|dot",
            help="For vector queries: cosine, or dot (the raw product with the unnormalized "
            "rows: a readout through the output embeddings).",
        ),
    ] = "cosine",
    exclude_query: Annotated[
        bool, typer.Option("--exclude-query", help="Leave the query's own tokens out.")
    ] = False,
    dedupe: DedupeOption = False,
    min_sim: MinSimOption = None,
    words_only: WordsOnlyOption = False,
    include_special: IncludeSpecialOption = False,
    plot: PlotOption = None,
    in_model: InOption = None,
    in_embeddings: InEmbeddingsOption = None,
    refine: RefineOption = 1,
    seed: SeedOption = 0,
    output: FormatOption = DEFAULT_FORMAT,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import UsageError
    from ..results import NeighborLists

    score = score.lower()
    if score not in ("cosine", "dot"):
        raise UsageError(f"the score is 'cosine' or 'dot', not {score!r}")
    if score == "dot" and metric.strip().lower() != "cosine":
        raise UsageError(f"dot products are raw products, not {metric} scores")  # before a pass
    if in_model is not None:
        from .crossmodel import refused

        problem = refused(
            score=score, metric=metric, plot=plot, exclude_query=exclude_query, centroid=centroid
        )
        if problem is not None:
            raise UsageError(problem)
        if not in_model.strip():
            raise UsageError("--in needs a model name or folder")
    wanted: list[object] = [*(queries or []), *(ids or [])]
    if vectors:
        from ..analyses.vectors import load_vector

        wanted += [load_vector(spec) for spec in vectors]  # a bad file fails before the load
    if queries_file is not None and (wanted or centroid):
        raise UsageError("give queries as arguments or in --queries FILE, not both")
    if not wanted and not centroid and queries_file is None:
        raise UsageError(
            "give a QUERY, --id N, --vector FILE, --centroid or --queries FILE "
            "(see 'tokneigh neighbors --help')"
        )
    lines = None
    if queries_file is not None:
        from .batch import read_lines

        lines = read_lines(queries_file)  # a bad file fails before the load
    filters = make_filters(dedupe, min_sim, words_only, include_special)
    if plot is not None:
        from ..present.plot import check_destination

        check_destination(plot)  # fail before the (possibly slow) load
    emb = load(model, cache_dir, embeddings, metric)
    top = clamp_top(top, emb.vocab_size)
    if centroid:
        wanted.append(emb.centroid())
    options: dict[str, Any] = {
        "k": top,
        "exclude_query": exclude_query,
        "filters": filters,
        "score": score,
    }
    failures = None
    if in_model is not None:
        from ..results import CrossNeighborLists
        from .crossmodel import answer

        cross = {"k": top, "filters": filters, "refine": refine, "seed": seed}
        chosen = embeddings if in_embeddings is None else in_embeddings
        results, failures = answer(emb, in_model, cache_dir, chosen, wanted, lines, cross)
        note_shortfall([r.listed for r in results], top, filters)
        emit(CrossNeighborLists(results), output)
        if failures is not None:
            failures.finish()
        return
    if lines is None:
        results = emb.neighbors_many(wanted, **options)
    else:
        results, failures = _answer_lines(emb, lines, options)
    note_shortfall(results, top, filters)
    if plot is not None and not results:  # every line of a batch failed
        report(f"no plot written to {plot}: no query was answered")
    elif plot is not None:
        from ..present.plot import MAX_BARS, neighbors_bars

        if top > MAX_BARS:
            report(f"warning: the plot shows the first {MAX_BARS} neighbours of each query")
        neighbors_bars(results, plot)
        report(f"wrote {plot}")
    emit(NeighborLists(results), output)
    if failures is not None:
        failures.finish()


def _answer_lines(emb: Any, lines: list[Any], options: dict[str, Any]) -> tuple[list[Any], Any]:
    """The lists of a batch file's good lines (ranked together), each bad line reported."""
    from .batch import Failures, rows
    from .lines import neighbors_each

    failures = Failures()
    parsed = rows(lines, 1, "one query per line")
    asked = [row[0] for row in parsed if not isinstance(row, str)]
    answers = iter(neighbors_each(emb, asked, **options))
    results = []
    for number, row in enumerate(parsed, 1):
        answer = row if isinstance(row, str) else next(answers)
        if isinstance(answer, (str, BaseException)):
            failures.report(number, answer)
        else:
            results.append(answer)
    return results, failures


def register(app: typer.Typer) -> None:
    app.command("neighbors", cls=HelpCommand, help=help_text(HELP))(neighbors)
