"""What every command does around the API: load with progress on stderr, filters from the
options, notes that explain a short list, and one call that writes the result."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..analyses.filters import Filters
    from ..api.embeddings import Embeddings
    from ..present.render import Renderable


def report(message: str) -> None:
    """Progress and warnings: stderr, so stdout stays clean for results."""
    print(f"tokneigh: {message}", file=sys.stderr, flush=True)


def _value(option: Any) -> str:
    return option.value if isinstance(option, Enum) else str(option)


def load(
    model: str, cache_dir: Path | None, embeddings: Any = "input", metric: str = "cosine"
) -> Embeddings:
    """The model's embeddings under ``metric``, with progress on stderr (and a line when this
    run built them)."""
    from ..api.loading import load as api_load

    emb = api_load(model, cache_dir=cache_dir, report=report, embeddings=_value(embeddings))
    if emb.built_seconds is not None:
        kind = "" if emb.embeddings == "input" else f" ({emb.embeddings} embeddings)"
        report(
            f"cached {emb.model}{kind}: {emb.vocab_size:,} x {emb.dim} in "
            f"{emb.built_seconds:.1f} s at {emb.path}"
        )
    if metric != "cosine":
        from ..space.metrics import parse_metric

        parse_metric(metric, emb.dim, emb.vocab_size)  # a typo fails before a long pass
        with progress_bar(f"metric {metric}") as progress:
            emb = emb.under(metric, report=report, progress=progress)
    return emb


@contextmanager
def progress_bar(what: str) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar with ETA on stderr for a long computation, as a callback
    ``(done, total)``; None when stderr is not a terminal (logs stay clean). A count that
    goes back or changes its total is a new stage: the bar starts again."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn(f"tokneigh: {what}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(what, total=None)
        last: list[int] | None = None  # (done, total) of the last call

        def update(done: int, total: int) -> None:
            nonlocal last
            # A new count starts the bar, and its ETA, afresh: the first call (a resumed pass
            # starts part done, and that share took no time in this run), and each stage of a
            # computation of several (a layout: the graph pass, then UMAP's epochs).
            if last is None or total != last[1] or done < last[0]:
                bar.reset(task, total=total, completed=done)
            else:
                bar.update(task, completed=done, total=total)
            last = [done, total]

        yield update


def make_filters(
    dedupe: bool = False,
    min_sim: float | None = None,
    words_only: bool = False,
    include_special: bool = False,
) -> Filters:
    """The API's filters for these options (the CLI hides special tokens by default; the API
    ranks every row unless asked)."""
    from ..analyses.filters import Filters

    return Filters(
        skip_special=not include_special, words_only=words_only, dedupe=dedupe, min_sim=min_sim
    )


def clamp_top(top: int, vocab_size: int) -> int:
    if top > vocab_size:
        report(f"warning: --top {top} is more than the model's {vocab_size} tokens")
        return vocab_size
    return top


def note_shortfall(results: Sequence[Any], top: int, filters: Filters, what: str = "") -> None:
    """A note on stderr for each list shorter than --top, naming why: the filters, and the
    special tokens hidden (``results`` are NeighborList or MostSimilar)."""
    for r in results:
        found = len(r.neighbors)
        if found >= top:
            continue
        if what:
            subject = what
        elif getattr(r, "vector", None) is not None:
            subject = r.vector.shown
        else:
            subject = f"token #{r.query_id}" if r.query_id is not None else repr(r.query)
        hidden = ""
        if r.hidden:
            noun = "token is" if r.hidden == 1 else "tokens are"
            hidden = f"{r.hidden:,} special {noun} hidden (--include-special lists them)"
        if r.unusable:
            rows = "row has" if r.unusable == 1 else "rows have"
            lost = f"{r.unusable:,} {rows} no direction (NaN, infinite or zero) and never rank"
            hidden = f"{hidden}; {lost}" if hidden else lost
        if filters.narrowing:
            # Name the options that cut the list, not the special tokens: with --min-sim 0.9
            # "999 special tokens are hidden" would point at the wrong cause.
            passes = "token passes" if found == 1 else "tokens pass"
            report(f"note: only {found:,} {passes} {_narrowing_options(filters)} for {subject}")
        elif hidden:
            report(f"note: {found:,} tokens listed for {subject}: {hidden}")


def _narrowing_options(filters: Filters) -> str:
    """The narrowing filters as the options that set them: "--words-only and --min-sim 0.9"."""
    names = []
    if filters.dedupe:
        names.append("--dedupe")
    if filters.words_only:
        names.append("--words-only")
    if filters.min_sim is not None:
        names.append(f"--min-sim {filters.min_sim}")
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _subject(text: str) -> str:
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def _unknown_note(asked: Any, same_as: Any = None) -> str | None:
    """The note for one text whose tokens hold the unknown token (``asked``: a Query or a
    Tokenization, with text, ids, labels and unknown positions); None when none do."""
    if not asked.unknown or asked.text is None:
        return None
    first = asked.unknown[0]
    token = f"{asked.labels[first]} (id {asked.ids[first]})"
    subject = _subject(asked.text)
    if len(asked.unknown) == len(asked.ids):
        note = (
            f"note: {subject} is text this model's vocabulary has no token for: it became "
            f"{token}, the one row that stands for any unknown text"
        )
    else:
        n, total = len(asked.unknown), len(asked.ids)
        verb = "is" if n == 1 else "are"
        note = (
            f"note: {n:,} of the {total:,} tokens of {subject} {verb} {token}, text this "
            "model's vocabulary has no token for"
        )
    if same_as is not None and same_as.unknown and same_as.ids == asked.ids:
        note += (
            f"; {_subject(same_as.text)} and {subject} are the same tokens to this model: it "
            "cannot tell them apart"
        )
    return note


def unknown_notes(result: Any) -> list[str]:
    """A note for each query in ``result`` that the tokenizer turned (in part) into its
    unknown token ([UNK]): without it, "😀" vs "🎉" reads as cosine 1 for no visible reason."""
    from ..results import (
        Comparison,
        MostSimilar,
        NeighborList,
        NeighborLists,
        Tokenizations,
        TokenMap,
    )

    asked: list[Any]  # Query or Tokenization: text, ids, labels, unknown
    if isinstance(result, NeighborLists):
        asked = [r.asked for r in result.lists]
    elif isinstance(result, NeighborList):
        asked = [result.asked]
    elif isinstance(result, TokenMap):
        asked = [result.result.asked]
    elif isinstance(result, MostSimilar):
        asked = [*result.negative, *result.positive]
    elif isinstance(result, Tokenizations):
        asked = list(result.items)
    elif isinstance(result, Comparison):
        notes = [_unknown_note(result.a), _unknown_note(result.b, same_as=result.a)]
        return [n for n in notes if n is not None]
    else:
        return []
    return [n for n in (_unknown_note(q) for q in asked) if n is not None]


def note_unknown(result: Any) -> None:
    """``unknown_notes`` on stderr."""
    for note in unknown_notes(result):
        report(note)


def emit(result: Renderable, output: Any) -> None:
    """The result on stdout, in the format asked for; first, on stderr, a note for each query
    the model could not see (``unknown_notes``)."""
    from ..present.render import emit as render_emit

    note_unknown(result)
    render_emit(result, _value(output))
