"""`tokneigh analogy`: "A is to B as C is to ?", and longer sums of word vectors."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    ModelOption,
    OutputFormat,
    help_text,
    load,
)
from .filters import (
    DedupeOption,
    IncludeSpecialOption,
    MinSimOption,
    WordsOnlyOption,
    filter_args,
    report_shortfall,
)

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

Examples:

  tokneigh analogy man king woman

  tokneigh analogy france paris germany --top 5 --format json

  tokneigh analogy -p king -p woman -n man --words-only
"""


def analogy(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[A B C]", help="A is to B as C is to ?: ranks B − A + C.", show_default=False
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
    top: Annotated[int, typer.Option("--top", "-k", min=1, help="How many tokens.")] = 10,
    dedupe: DedupeOption = False,
    min_sim: MinSimOption = None,
    words_only: WordsOnlyOption = False,
    include_special: IncludeSpecialOption = False,
    output: FormatOption = DEFAULT_FORMAT,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from .. import render
    from ..errors import UsageError

    words = words or []
    if len(words) not in (0, 3):
        raise UsageError(
            f"give exactly three words A B C (A is to B as C is to ?), got {len(words)}; "
            "for other expressions use --positive/--negative"
        )
    plus = [*words[1:], *(positive or [])]
    minus = [*words[:1], *(negative or [])]
    if not plus and not minus:
        raise UsageError("give A B C, or at least one --positive/--negative word")
    emb = load(model, cache_dir, embeddings)
    result = emb.most_similar(
        positive=plus,
        negative=minus,
        k=min(top, emb.vocab_size),
        **filter_args(dedupe, min_sim, words_only, include_special),
    )
    report_shortfall(len(result.neighbors), top, "this expression", emb.vocab_size)
    if output is OutputFormat.json:
        render.write_json(render.most_similar_json(result))
    elif output is OutputFormat.tsv:
        render.most_similar_tsv(result)
    else:
        heading = None
        if words and not positive and not negative:
            a, b, c = (json.dumps(w, ensure_ascii=False) for w in words)
            heading = f"{a} is to {b} as {c} is to ?  ({b} − {a} + {c})"
        render.most_similar_table(result, heading)


def register(app: typer.Typer) -> None:
    app.command("analogy", help=help_text(HELP), no_args_is_help=True)(analogy)
