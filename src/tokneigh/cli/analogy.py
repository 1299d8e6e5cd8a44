"""`tokneigh analogy`: "A is to B as C is to ?", and longer sums of word vectors."""

from __future__ import annotations

from typing import Annotated

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
from .filters import DedupeOption, IncludeSpecialOption, MinSimOption, WordsOnlyOption
from .help import HelpCommand
from .output import clamp_top, emit, load, make_filters, note_shortfall

HELP = """Solve "A is to B as C is to ?": rank every token by cosine similarity to B − A + C.

The order is A B C: `tokneigh analogy man king woman` asks "man is to king as woman is to
?" and ranks tokens against king − man + woman (expect "queen" near the top on a model that
has learnt it).

Each word is the unit vector of its token (a word of several tokens: the normalized mean of
their unit vectors, as in `neighbors`); the sum is normalized before ranking, and the input
words' own tokens are left out of the list.

For longer expressions, add terms with --positive/-p and --negative/-n (gensim's
most_similar): `-p king -p woman -n man` is the same as `man king woman`. With both, A B C
add B and C to the positives and A to the negatives.

Each word is text or #N for token id N (\\#N is the literal text "#N"). --queries FILE
reads one analogy per line, A B C separated by TABs (- for stdin): every line is answered,
and a bad line is reported with its number; the command then exits with an error.

Examples:

  tokneigh analogy man king woman

  tokneigh analogy man king "#8580"

  tokneigh analogy --queries analogies.tsv --format json

  tokneigh analogy france paris germany --top 5 --format json

  tokneigh analogy -p king -p woman -n man --words-only
"""


def analogy(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="A B C", help="A is to B as C is to ?: ranks B − A + C.", show_default=False
        ),
    ] = None,
    positive: Annotated[
        list[str] | None,
        typer.Option(
            "--positive",
            "-p",
            metavar="WORD",
            help="A word to add (repeatable).",
            show_default=False,
        ),
    ] = None,
    negative: Annotated[
        list[str] | None,
        typer.Option(
            "--negative",
            "-n",
            metavar="WORD",
            help="A word to subtract (repeatable).",
            show_default=False,
        ),
    ] = None,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, metavar="N", help="How many tokens.")
    ] = 10,
    queries_file: QueriesOption = None,
    dedupe: DedupeOption = False,
    min_sim: MinSimOption = None,
    words_only: WordsOnlyOption = False,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..errors import UsageError

    words = words or []
    if queries_file is not None and (words or positive or negative):
        raise UsageError("--queries FILE takes A B C from the file: no words, no -p/-n")
    if len(words) not in (0, 3):
        raise UsageError(
            f"give exactly three words A B C (A is to B as C is to ?), got {len(words)}; "
            "for other expressions use --positive/--negative"
        )
    if not words and not positive and not negative and queries_file is None:
        raise UsageError("give A B C, at least one --positive/--negative word, or --queries FILE")
    filters = make_filters(dedupe, min_sim, words_only, include_special)
    parsed = None
    if queries_file is not None:
        from .batch import read_lines, rows

        parsed = rows(read_lines(queries_file), 3, "A<TAB>B<TAB>C")  # fails before the load
    emb = load(model, cache_dir, embeddings, metric)
    top = clamp_top(top, emb.vocab_size)
    if parsed is not None:
        from ..results import Analogies
        from .batch import Failures, answer_rows

        failures = Failures()
        results = answer_rows(
            parsed,
            lambda abc: emb.analogy(abc[0], abc[1], abc[2], k=top, filters=filters),
            failures,
        )
        for result in results:
            note_shortfall([result], top, filters, result.expression())
        emit(Analogies(results), output)
        failures.finish()
        return
    if words and not positive and not negative:
        a, b, c = words
        result = emb.analogy(a, b, c, k=top, filters=filters)
    else:
        result = emb.most_similar(
            positive=[*words[1:], *(positive or [])],
            negative=[*words[:1], *(negative or [])],
            k=top,
            filters=filters,
        )
    note_shortfall([result], top, filters, "this expression")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("analogy", cls=HelpCommand, help=help_text(HELP))(analogy)
