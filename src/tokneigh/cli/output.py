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
    ``(done, total)``; None when stderr is not a terminal (logs stay clean)."""
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

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

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
            passes = "token passes" if found == 1 else "tokens pass"
            report(
                f"note: only {found:,} {passes} the filters for {subject}"
                + (f"; {hidden}" if hidden else "")
            )
        elif hidden:
            report(f"note: {found:,} tokens listed for {subject}: {hidden}")


def emit(result: Renderable, output: Any) -> None:
    from ..present.render import emit as render_emit

    render_emit(result, _value(output))
