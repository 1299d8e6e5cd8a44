"""`tokneigh diff`: how token neighbourhoods change between two models or two matrices."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .common import (
    DEFAULT,
    DEFAULT_EMBEDDINGS,
    DEFAULT_FORMAT,
    DEFAULT_METRIC,
    MODEL_KINDS,
    AgainstEmbeddingsOption,
    CacheDirOption,
    EmbeddingsOption,
    FormatOption,
    MetricOption,
    ModelOption,
    help_text,
    non_empty_model,
)
from .help import HelpCommand
from .output import emit, load, report

HELP = """Compare the K nearest neighbours of each WORD, and of a sample of tokens, in A and B.

A is --model (with --embeddings, --metric); B is --against (default: the same model) with
--against-embeddings and --against-metric (default: A's). So B may be another model or file
(a GGUF copy, a fine-tune), the output matrix of the same model, or the same matrix under
another metric. For each query: overlap@K and Jaccard of the two neighbour sets, and Spearman's
rho of the two similarity rows; then their mean and median, the share with overlap below 0.5,
and the most changed queries with both lists side by side.

Both sides rank only the tokens the two vocabularies share, matched by what they decode to
(GPT-2's "Ġking" is Llama's "▁king"; byte fragments by their bytes; special tokens left out;
ties broken by the lower id in A). A word is tokenized by each model's own
tokenizer (several tokens: the mean of their vectors). The sample is --sample tokens drawn
uniformly from the shared ones with --seed; without a WORD it is 1000 tokens by default.

Examples:

  tokneigh diff --against-metric csls --model sentence-transformers/all-MiniLM-L6-v2

  tokneigh diff king queen --embeddings input --against-embeddings output

  tokneigh diff --model ./base --against ./fine-tuned --sample 2000 --format json

  tokneigh diff --words words.txt --model ./model --against ./model-q4_0.gguf
"""

DEFAULT_SAMPLE = 1000  # without a word: enough for a mean within about ±0.01


def _read_words(path: Path) -> list[str]:
    from ..errors import UsageError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"cannot read the word list {path}: {why}") from None
    # One word a line, kept as typed: a leading space is part of a GPT-2 token (" Mike").
    return [line for line in text.splitlines() if line.strip()]


def diff(
    words: Annotated[
        list[str] | None,
        typer.Argument(metavar="WORD", help="Text to compare.", show_default=False),
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(
            "--against",
            metavar="NAME",
            callback=non_empty_model,
            help=f"B: {MODEL_KINDS} (default: the same model).",
            show_default=False,
        ),
    ] = None,
    against_embeddings: AgainstEmbeddingsOption = None,
    against_metric: Annotated[
        str | None,
        typer.Option(
            "--against-metric",
            metavar="cosine|centered|abtt[:D]|csls[:K]",
            help="B's similarity (default: A's).",
            show_default=False,
        ),
    ] = None,
    words_file: Annotated[
        Path | None,
        typer.Option("--words", metavar="FILE", help="More words, one a line.", show_default=False),
    ] = None,
    sample: Annotated[
        int | None,
        typer.Option(
            "--sample",
            min=0,
            metavar="N",
            help=f"Shared tokens to sample (default: {DEFAULT_SAMPLE} without a WORD, else 0).",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Seed of the sample.")] = 0,
    top: Annotated[
        int, typer.Option("--top", "-k", min=1, metavar="K", help="Neighbours compared.")
    ] = 10,
    changed: Annotated[
        int,
        typer.Option(
            "--changed", min=0, metavar="N", help="Most changed queries listed side by side."
        ),
    ] = 3,
    output: FormatOption = DEFAULT_FORMAT,
    metric: MetricOption = DEFAULT_METRIC,
    embeddings: EmbeddingsOption = DEFAULT_EMBEDDINGS,
    model: ModelOption = DEFAULT,
    cache_dir: CacheDirOption = None,
) -> None:
    from ..analyses.diff import compare_models

    wanted = list(words or [])
    if words_file is not None:
        wanted += _read_words(words_file)
    if sample is None:
        sample = 0 if wanted else DEFAULT_SAMPLE
    if not wanted and sample == 0:  # before the (possibly slow) loads
        from ..errors import UsageError

        raise UsageError("nothing to compare: no word, and a sample of 0 tokens")
    a = load(model, cache_dir, embeddings, metric)
    b = load(
        model if against is None else against,
        cache_dir,
        embeddings if against_embeddings is None else against_embeddings,
        metric if against_metric is None else against_metric,
    )
    result = compare_models(
        a.view, b.view, words=wanted, sample=sample, seed=seed, k=top, changed=changed
    )
    if a.path == b.path and a.metric == b.metric:
        report("note: A and B are the same embeddings under the same metric: nothing changes")
    drawn = len(result.items) - len(wanted)
    if drawn < sample:
        report(f"note: sampled all {drawn:,} shared tokens (fewer than {sample:,})")
    matching = "" if result.matching is None else f" · {result.matching.line()}"
    report(f"{result.shared:,} shared tokens compared{matching}")
    emit(result, output)


def register(app: typer.Typer) -> None:
    app.command("diff", cls=HelpCommand, help=help_text(HELP))(diff)
