"""Output rendering: Rich tables for people, JSON and TSV for scripts.

JSON and TSV never import Rich (it costs start-up time and scripts do not need it). The JSON
shapes here are the documented contract; tests pin them.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from .api import (
    Comparison,
    MostSimilar,
    Neighbor,
    NeighborList,
    Tokenization,
    TokenMap,
    Verification,
)

# --- machine-readable -----------------------------------------------------------------------


def tokenization_json(t: Tokenization) -> dict[str, Any]:
    return {"text": t.text, "ids": t.ids, "tokens": t.tokens}


def neighbors_json(result: NeighborList) -> dict[str, Any]:
    return {
        "query": result.query,
        "query_ids": result.query_ids,
        "query_tokens": result.query_tokens,
        "model": result.model,
        "vocab_size": result.vocab_size,
        "dim": result.dim,
        "neighbors": [neighbor_json(n) for n in result.neighbors],
    }


def neighbor_json(n: Neighbor) -> dict[str, Any]:
    """One neighbour; "variants" only when the list was deduplicated (--dedupe)."""
    data: dict[str, Any] = {
        "rank": n.rank,
        "id": n.id,
        "token": n.token,
        "similarity": n.similarity,
    }
    if n.variants is not None:
        data["variants"] = [
            {"id": v.id, "token": v.token, "similarity": v.similarity} for v in n.variants
        ]
    return data


def comparison_json(c: Comparison) -> dict[str, Any]:
    return {
        "a": tokenization_json(c.a),
        "b": tokenization_json(c.b),
        "cosine": c.cosine,
        "angle_degrees": c.angle_degrees,
        "pearson": c.pearson,
        "norm_a": c.norm_a,
        "norm_b": c.norm_b,
        "rank_of_b": c.rank_of_b,
    }


def write_json(data: Any) -> None:
    """JSON on stdout: indented for a person at a terminal, one compact line for a pipe."""
    sys.stdout.write(json_text(data, indent=sys.stdout.isatty()) + "\n")


def json_text(data: Any, indent: bool = False) -> str:
    """``data`` as JSON: UTF-8 text, indented by two spaces or on one compact line.

    Written by orjson: the 20,000 neighbours of 1,000 queries take a few milliseconds, against
    about 80 ms for the standard library's encoder.
    """
    import orjson

    try:
        return orjson.dumps(data, option=orjson.OPT_INDENT_2 if indent else 0).decode("utf-8")
    except orjson.JSONEncodeError:  # e.g. a lone surrogate, which UTF-8 cannot hold: escape it
        return json.dumps(data, ensure_ascii=True, indent=2 if indent else None)


def tsv_field(value: Any) -> str:
    """One TSV cell: backslash, tab, newline and carriage return escaped as \\\\, \\t, \\n, \\r."""
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def write_tsv(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    lines = ["\t".join(header)]
    lines += ["\t".join(tsv_field(v) for v in row) for row in rows]
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def neighbors_tsv(results: Sequence[NeighborList]) -> None:
    if any(n.variants is not None for r in results for n in r.neighbors):
        # --dedupe: the folded variants' ids, comma-separated (ids never need escaping).
        write_tsv(
            ["query", "rank", "id", "token", "similarity", "variant_ids"],
            (
                [r.query, n.rank, n.id, n.token, n.similarity, _variant_ids(n)]
                for r in results
                for n in r.neighbors
            ),
        )
        return
    write_tsv(
        ["query", "rank", "id", "token", "similarity"],
        ([r.query, n.rank, n.id, n.token, n.similarity] for r in results for n in r.neighbors),
    )


def _variant_ids(n: Neighbor) -> str:
    return ",".join(str(v.id) for v in n.variants or ())


def tokenize_tsv(items: Sequence[Tokenization]) -> None:
    # One row per token, keyed by the TEXT argument's 1-based index: repeating the text on
    # every row would grow as length x tokens (gigabytes for a 100,000-character text).
    write_tsv(
        ["text_index", "position", "id", "token"],
        (
            [number, pos, i, tok]
            for number, t in enumerate(items, start=1)
            for pos, (i, tok) in enumerate(zip(t.ids, t.tokens))
        ),
    )


def comparison_tsv(c: Comparison) -> None:
    write_tsv(
        ["a", "b", "cosine", "angle_degrees", "pearson", "norm_a", "norm_b", "rank_of_b"],
        [
            [
                c.a.text,
                c.b.text,
                c.cosine,
                c.angle_degrees,
                c.pearson,
                c.norm_a,
                c.norm_b,
                c.rank_of_b,
            ]
        ],
    )


# --- human-readable -------------------------------------------------------------------------


def _console():
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _safe(text: str) -> str:
    # Rich writes to a UTF-8 stream; undecodable argv bytes arrive as lone surrogates.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def pieces(t: Tokenization) -> str:
    """`"ban" + "ana"`: the pieces of a query as a person reads them."""
    return " + ".join(t.labels)


def query_title(result: NeighborList) -> str:
    query = (
        result.query
        if result.query.startswith("#")
        else json.dumps(result.query, ensure_ascii=False)
    )
    parts = f"{query}"
    if len(result.query_ids) > 1:
        parts += f" = {' + '.join(result.query_labels)} (mean of {len(result.query_ids)} tokens)"
    elif result.query.startswith("#"):
        parts += f" = {result.query_labels[0]}"
    return (
        f"Neighbours of {parts} · {result.model} · {result.vocab_size:,} tokens × {result.dim} dims"
    )


def neighbors_tables(results: Sequence[NeighborList]) -> None:
    from rich.text import Text

    console = _console()
    for result in results:
        # The title is printed on its own line: as a table title Rich would wrap it to the
        # (narrow) table width.
        console.print(Text(_safe(query_title(result)), style="bold"), soft_wrap=True)
        console.print(neighbor_table(result.neighbors))


def neighbor_table(neighbors: Sequence[Neighbor]) -> Any:  # -> rich.table.Table
    """rank, token, id, cosine; special tokens marked; a variants column after --dedupe."""
    from rich.table import Table
    from rich.text import Text

    table = Table()
    # Text headers and cells, not str: Rich would parse a str for markup and emoji (its emoji
    # table alone takes milliseconds to load); the output is the same.
    table.add_column(Text("rank"), justify="right")
    table.add_column(Text("token"))
    table.add_column(Text("id"), justify="right")
    table.add_column(Text("cosine"), justify="right")
    deduped = any(n.variants is not None for n in neighbors)
    if deduped:
        table.add_column(Text("variants"))
    for n in neighbors:
        token = Text(_safe(n.label))
        if n.special:
            token.append("  special", style="dim italic")
        row: list[Any] = [Text(str(n.rank)), token, Text(str(n.id)), Text(f"{n.similarity:.3f}")]
        if deduped:
            row.append(Text(_safe(", ".join(v.label for v in n.variants or ()))))
        table.add_row(*row)
    return table


def tokenize_lines(items: Sequence[tuple[Tokenization, Tokenization | None]]) -> None:
    """The seed's sentence per text, plus how the space-prefixed variant splits."""
    out = []
    for t, spaced in items:
        out.append(_describe(t))
        if spaced is not None:
            same = spaced.ids == t.ids
            out.append("  " + _describe(spaced) + ("  (same tokens)" if same else ""))
    sys.stdout.write(_safe("\n".join(out)) + "\n")


def _describe(t: Tokenization) -> str:
    n = len(t.ids)
    noun = "token" if n == 1 else "tokens"
    text = json.dumps(t.text, ensure_ascii=False)
    return f"{text} comprises {n} {noun}: [{', '.join(t.labels)}]  ids {t.ids}"


def comparison_table(c: Comparison, model: str) -> None:
    from rich.table import Table
    from rich.text import Text

    a = json.dumps(c.a.text, ensure_ascii=False)
    b = json.dumps(c.b.text, ensure_ascii=False)
    console = _console()
    console.print(Text(_safe(f"{a} vs {b} · {model}"), style="bold"), soft_wrap=True)
    table = Table()
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("pieces of A", pieces(c.a)),
        ("pieces of B", pieces(c.b)),
        ("cosine similarity", f"{c.cosine:.3f}"),
        ("angle", f"{c.angle_degrees:.1f}°"),
        ("Pearson correlation (raw)", f"{c.pearson:.3f}"),
        ("norm of A (raw)", f"{c.norm_a:.3f}"),
        ("norm of B (raw)", f"{c.norm_b:.3f}"),
        ("rank of B among A's neighbours", f"{c.rank_of_b:,}"),
    ]
    for name, value in rows:
        table.add_row(name, Text(_safe(value)))
    console.print(table)


# --- analogy / most_similar -----------------------------------------------------------------


def most_similar_json(result: MostSimilar) -> dict[str, Any]:
    return {
        "positive": [t.text for t in result.positive],
        "negative": [t.text for t in result.negative],
        "neighbors": [neighbor_json(n) for n in result.neighbors],
    }


def most_similar_tsv(result: MostSimilar) -> None:
    header = ["rank", "id", "token", "similarity"]
    deduped = any(n.variants is not None for n in result.neighbors)
    rows = []
    for n in result.neighbors:
        row: list[Any] = [n.rank, n.id, n.token, n.similarity]
        if deduped:
            row.append(_variant_ids(n))
        rows.append(row)
    write_tsv(header + (["variant_ids"] if deduped else []), rows)


def expression(result: MostSimilar) -> str:
    """`"king" + "woman" − "man"`: the positives added, the negatives subtracted."""
    text = " + ".join(_term(t) for t in result.positive)
    for t in result.negative:
        text += f" − {_term(t)}" if text else f"− {_term(t)}"
    return text


def _term(t: Tokenization) -> str:
    return t.text if t.text.startswith("#") else json.dumps(t.text, ensure_ascii=False)


def most_similar_table(result: MostSimilar, heading: str | None = None) -> None:
    """The ranked tokens under a heading (the analogy sentence, else the expression)."""
    from rich.text import Text

    console = _console()
    title = heading or f"Nearest to {expression(result)}"
    title += f" · {result.model} · {result.vocab_size:,} tokens × {result.dim} dims"
    lines = [title]
    for t in result.positive + result.negative:
        if len(t.ids) > 1 or t.text.startswith("#"):
            lines.append(f"  {_term(t)} = {pieces(t)}")
    console.print(Text(_safe("\n".join(lines)), style="bold"), soft_wrap=True)
    console.print(neighbor_table(result.neighbors))


# --- verify ---------------------------------------------------------------------------------


def _finite(value: float) -> float | None:
    # JSON has no Infinity: a speed-up over a product too quick to time is null.
    return value if value == value and abs(value) != float("inf") else None


def verification_json(v: Verification) -> dict[str, Any]:
    return {
        "query": v.query.text,
        "query_ids": v.query.ids,
        "query_tokens": v.query.tokens,
        "model": v.model,
        "vocab_size": v.vocab_size,
        "dim": v.dim,
        "k": v.k,
        "pearson": v.pearson,
        "max_abs_diff": v.max_abs_diff,
        "top_k_identical": v.top_k_identical,
        "top_k_agree": v.top_k_agree,
        "top_k_tied_swaps": v.top_k_tied_swaps,
        "top_k_loop": v.top_k_loop,
        "top_k_vectorized": v.top_k_vectorized,
        "loop_seconds": v.loop_seconds,
        "vectorized_seconds": v.vectorized_seconds,
        "speedup": _finite(v.speedup),
    }


def verification_tsv(v: Verification) -> None:
    data = verification_json(v)
    keys = [k for k in data if k not in ("query_ids", "query_tokens")]
    cells = [",".join(map(str, data[k])) if isinstance(data[k], list) else data[k] for k in keys]
    write_tsv(keys, [["" if c is None else c for c in cells]])


def _duration(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def verification_table(v: Verification) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    query = _term(v.query)
    console.print(
        Text(_safe(f"Loop vs vectorized for {query} · {v.model}"), style="bold"), soft_wrap=True
    )
    table = Table()
    table.add_column("measure")
    table.add_column("value", justify="right")
    if v.top_k_identical:
        same = "yes"
    elif v.top_k_agree:
        same = f"yes, up to {v.top_k_tied_swaps} tied tokens swapped"
    else:
        same = "NO"
    speedup = f"{v.speedup:,.0f}×" if v.speedup != float("inf") else "too quick to time"
    rows = [
        ("query", pieces(v.query)),
        ("rows compared", f"{v.vocab_size:,} × {v.dim}"),
        ("Pearson correlation", f"{v.pearson:.6f}"),
        ("largest |difference|", f"{v.max_abs_diff:.2e}"),
        (f"same top {v.k} (ids and order)", same),
        ("Python loop, row by row", _duration(v.loop_seconds)),
        ("vectorized (best of 5)", _duration(v.vectorized_seconds)),
        ("speed-up", speedup),
    ]
    for name, value in rows:
        table.add_row(name, Text(_safe(value)))
    console.print(table)
    if not v.top_k_identical:
        # Show both rankings: which tokens moved is the first thing a user will ask.
        console.print(
            Text(
                _safe(
                    f"loop top {v.k}:       {v.top_k_loop}\nvectorized top {v.k}: "
                    f"{v.top_k_vectorized}"
                )
            ),
            soft_wrap=True,
        )


# --- map ------------------------------------------------------------------------------------


def token_map_json(m: TokenMap) -> dict[str, Any]:
    r = m.result
    return {
        "query": r.query,
        "query_ids": r.query_ids,
        "query_tokens": r.query_tokens,
        "model": r.model,
        "explained_variance": list(m.explained),
        "query_xy": list(m.query_xy),
        "neighbors": [
            {**neighbor_json(n), "x": x, "y": y} for n, (x, y) in zip(r.neighbors, m.points)
        ],
    }


def token_map_tsv(m: TokenMap) -> None:
    r = m.result
    rows: list[list[Any]] = [[0, "", r.query, 1.0, m.query_xy[0], m.query_xy[1]]]
    rows += [
        [n.rank, n.id, n.token, n.similarity, x, y] for n, (x, y) in zip(r.neighbors, m.points)
    ]
    write_tsv(["rank", "id", "token", "similarity", "x", "y"], rows)


def token_map_table(m: TokenMap) -> None:
    from rich.table import Table
    from rich.text import Text

    console = _console()
    r = m.result
    title = (
        f"{query_title(r).replace('Neighbours of', 'Map of', 1)} · PCA axes explain "
        f"{m.explained[0]:.0%} and {m.explained[1]:.0%} of the variance"
    )
    console.print(Text(_safe(title), style="bold"), soft_wrap=True)
    table = Table()
    for name in ("rank", "token", "id", "cosine", "x", "y"):
        table.add_column(name, justify="left" if name == "token" else "right")
    table.add_row("", Text(_safe(_term_of(r)), style="bold"), "", "", *_xy(m.query_xy))
    for n, xy in zip(r.neighbors, m.points):
        table.add_row(str(n.rank), Text(_safe(n.label)), str(n.id), f"{n.similarity:.3f}", *_xy(xy))
    console.print(table)


def _term_of(r: NeighborList) -> str:
    text = r.query if r.query.startswith("#") else json.dumps(r.query, ensure_ascii=False)
    return f"{text} (query)"


def _xy(xy: tuple[float, float]) -> tuple[str, str]:
    return f"{xy[0]:+.3f}", f"{xy[1]:+.3f}"
