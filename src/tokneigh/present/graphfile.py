"""Writing a neighbour graph (``results.NeighborGraph``) to a file, chosen by its extension:

- ``.parquet``: one row per pair, columns ``id``, ``rank`` (1-based), ``neighbor_id``,
  ``similarity``, then ``token`` and ``neighbor_token`` (dictionary-encoded strings, null for a
  row with no token); the facts (``describe``) as the schema's key-value metadata (pyarrow);
- ``.npz``: arrays ``ids`` (n,), ``neighbors`` (n, k), ``similarities`` (n, k), and two 0-d
  arrays of JSON text: ``meta`` (the facts) and ``tokens`` (a list, one per ``ids`` entry);
- ``.jsonl``: one object per token, ``{"id", "token", "neighbors": [{"rank", "id", "token",
  "similarity"}, ...]}`` (orjson); the first object also has ``"meta"``: the facts.

The tokens are those of the JSON contract (``Embeddings.token_text``). Each format keeps what
it had before, so a reader of the old files reads the new ones.

The file appears whole or not at all: it is written beside its destination and renamed into
place, and the partial file of an interrupted write is deleted. A file it replaces keeps its
permission bits; anything else in the way (a FIFO, a device) is refused, before the work.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import OutputFileError
from ..results import NeighborGraph
from ..version import __version__

if TYPE_CHECKING:
    from ..api.embeddings import Embeddings

FORMATS = {".parquet": "parquet", ".npz": "npz", ".jsonl": "jsonl"}

Shown = Callable[[int], "str | None"]  # token id -> its text (None for padding rows)


def file_format(path: Path) -> str:
    """The format a graph file's name asks for; refused before any work when unknown or
    when the file cannot be created there (``destination``)."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise OutputFileError(
            f"output {path}: the file name must end in {', '.join(FORMATS)} (the format)"
        )
    destination(path)
    return fmt


# What the scratch file's name adds to nothing: a fixed length, so any name the folder
# allows leaves room for it (".tokneigh-" + 16 hex digits + ".tmp": 30 bytes).
_SCRATCH = ".tokneigh-{}.tmp"


def destination(path: Path) -> tuple[Path, int | None]:
    """Where ``path`` is written and the permission bits of the file it replaces (None: a
    new file). A link is followed: the file it names is replaced and the link kept. Refused
    in one line: a name the folder's file system cannot hold, a folder that does not exist
    or is not writable, and anything but a regular file in the way (a FIFO, a device, a
    folder: ``os.replace`` would put a regular file in its place)."""
    shown = f"output {path}"
    target = Path(os.path.realpath(path.expanduser()))
    parent = target.parent
    if not parent.is_dir():
        raise OutputFileError(f"{shown}: folder {parent} does not exist")
    try:
        limit = os.pathconf(parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255  # what every common file system allows
    size = len(os.fsencode(target.name))
    if size > limit:
        raise OutputFileError(
            f"{shown}: the file name is {size} bytes; the file system allows {limit}"
        )
    try:
        info = os.stat(target)
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputFileError(f"{shown}: cannot be written ({exc.strerror or exc})") from exc
    else:
        if stat.S_ISDIR(info.st_mode):
            raise OutputFileError(f"{shown}: is a folder")
        if not stat.S_ISREG(info.st_mode):
            raise OutputFileError(f"{shown}: is not a regular file, and is not replaced")
        mode = stat.S_IMODE(info.st_mode)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputFileError(f"{shown}: folder {parent} is not writable")
    return target, mode


Facts = Mapping[str, Any]  # what a file says of its graph (``describe``)


def describe(emb: Embeddings, graph: NeighborGraph) -> dict[str, Any]:
    """The facts a graph file carries: which matrix of which model, compared how, and when."""
    return {
        "model": graph.model,
        "source": emb.meta["source"],  # "local" (a folder), "gguf" (a file) or "hub"
        "embeddings": emb.embeddings,  # "input", or "output" (an untied LM head)
        "metric": graph.metric,
        "k": graph.k,
        "include_special": graph.include_special,
        "vocab_size": emb.vocab_size,
        "dim": emb.dim,
        "tokneigh_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_graph(
    graph: NeighborGraph, path: Path, shown: Shown, facts: Facts | None = None
) -> str:
    """Write ``graph`` to ``path`` in the format its extension names, with ``shown``'s text of
    each token and ``facts`` (``describe``); the format."""
    fmt = file_format(path)
    texts = _Texts(shown)
    if fmt == "parquet":
        write_atomically(path, lambda scratch: _write_parquet(graph, scratch, texts, facts))
    elif fmt == "npz":
        write_atomically(path, lambda scratch: _write_npz(graph, scratch, texts, facts))
    else:
        write_atomically(path, lambda scratch: _write_jsonl(graph, scratch, texts, facts))
    return fmt


def write_atomically(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a file at a scratch name beside ``path``'s target, then rename it into place:
    the file appears whole or not at all (see ``destination``), and a failed or interrupted
    write leaves nothing behind."""
    target, _ = destination(path)
    scratch = target.parent / _SCRATCH.format(uuid.uuid4().hex[:16])
    try:
        write(scratch)
        # Checked again now: what is in the way may have changed during the pass.
        target, mode = destination(path)
        if mode is not None:
            os.chmod(scratch, mode)
        os.replace(scratch, target)
    except OSError as exc:
        raise OutputFileError(
            f"output {path}: cannot be written ({exc.strerror or exc})"
        ) from exc
    finally:  # an interrupted or failed write leaves nothing behind
        with contextlib.suppress(OSError):
            scratch.unlink()


def schema_metadata(facts: Facts) -> dict[str, str]:
    """Facts as Parquet key-value metadata, which is text: strings as they are, numbers and
    booleans as JSON spells them."""
    return {
        key: value if isinstance(value, str) else _json(value).decode()
        for key, value in facts.items()
    }


class _Texts:
    """``shown`` asked once per token id."""

    def __init__(self, shown: Shown) -> None:
        self.shown = shown
        self.known: dict[int, str | None] = {}

    def __call__(self, token_id: int) -> str | None:
        if token_id not in self.known:
            self.known[token_id] = self.shown(token_id)
        return self.known[token_id]


def _write_parquet(
    graph: NeighborGraph, path: Path, texts: _Texts, facts: Facts | None
) -> None:
    import pyarrow as pa  # type: ignore[import-untyped]
    import pyarrow.parquet as pq  # type: ignore[import-untyped]

    n, k = graph.neighbors.shape
    ids = np.repeat(graph.ids, k)
    neighbors = graph.neighbors.ravel()
    # One dictionary of the distinct token texts; each token column holds indices into it (a
    # dictionary with a value twice would make the Parquet writer store plain strings).
    known = np.unique(np.concatenate([graph.ids, neighbors]))
    coded = pa.array([texts(i) for i in known.tolist()], pa.string()).dictionary_encode()
    position = np.zeros(int(known[-1]) + 1 if known.size else 0, dtype=np.int32)
    position[known] = np.arange(known.size, dtype=np.int32)  # token id -> its row of known

    def tokens(of: np.ndarray) -> Any:
        where = pa.array(position[of])
        return pa.DictionaryArray.from_arrays(coded.indices.take(where), coded.dictionary)

    table = pa.table(
        {
            "id": pa.array(ids),
            "rank": pa.array(np.tile(np.arange(1, k + 1, dtype=np.int32), n)),
            "neighbor_id": pa.array(neighbors),
            "similarity": pa.array(graph.similarities.ravel()),
            "token": tokens(ids),
            "neighbor_token": tokens(neighbors),
        }
    )
    if facts is not None:
        table = table.replace_schema_metadata(schema_metadata(facts))
    pq.write_table(table, path)


def _json(value: Any) -> bytes:
    import orjson

    return orjson.dumps(value)


def _write_npz(graph: NeighborGraph, path: Path, texts: _Texts, facts: Facts | None) -> None:
    arrays: dict[str, Any] = {
        "ids": graph.ids, "neighbors": graph.neighbors, "similarities": graph.similarities
    }
    if facts is not None:
        arrays["meta"] = np.array(_json(dict(facts)).decode())  # 0-d str: loads without pickle
    # UTF-8 bytes (a 0-d bytes array): a str array would take 4 bytes a character.
    arrays["tokens"] = np.array(_json([texts(i) for i in graph.ids.tolist()]))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def _write_jsonl(graph: NeighborGraph, path: Path, texts: _Texts, facts: Facts | None) -> None:
    import orjson

    with open(path, "wb") as handle:
        for token_id, row, sims in zip(
            graph.ids.tolist(), graph.neighbors.tolist(), graph.similarities.tolist()
        ):
            neighbors = [
                {"rank": rank, "id": other, "token": texts(other), "similarity": sim}
                for rank, (other, sim) in enumerate(zip(row, sims), start=1)
            ]
            line: dict[str, Any] = {
                "id": token_id, "token": texts(token_id), "neighbors": neighbors
            }
            if facts is not None:  # the first object only: every line is still one token
                line["meta"] = dict(facts)
                facts = None
            handle.write(orjson.dumps(line) + b"\n")
