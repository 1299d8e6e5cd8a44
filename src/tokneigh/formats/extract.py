"""First use of a model: read its input (or output) embedding matrix and its tokenizer.

The dispatcher: a GGUF file goes to ``gguf``, anything else is a Hugging Face checkpoint
(``hf_checkpoint``: a local folder or a hub repo). Both read with ordinary file reads, never a
memory map, so a checkpoint truncated while it is read is a clear error, not a SIGBUS. Every
failure leaves ``extract`` as one of the library's errors (``errors.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

from ..errors import HubUnavailableError, ModelNotFoundError, TokneighError
from ..reporting import Report
from ..sources.models import ModelSource
from . import hf_checkpoint
from .extracted import Extracted
from .failures import first_line
from .rows import RowBlocks


def extract(source: ModelSource, report: Report, embeddings: str = "input") -> Extracted:
    """Fetch (if needed) and read one checkpoint's input embeddings and tokenizer.

    The matrix's shape and storage are checked here; its rows are read when
    ``Extracted.rows`` is iterated (a first use streams them into the cache).

    ``embeddings="output"`` reads the untied output matrix (the LM head) instead, and raises
    TiedEmbeddings when the checkpoint has no output matrix of its own. Whatever goes wrong
    raises one of the library's errors, whose message's first line says why.
    """
    with _library_errors(source):
        if source.kind == "gguf":
            from . import gguf as gguf_file

            extracted = gguf_file.extract(source, report, embeddings)
        else:
            extracted = hf_checkpoint.extract(source, report, embeddings)
    # The rows are read later, as the build streams them: their failures too are library errors.
    extracted.rows = _guarded(extracted.rows, source)
    return extracted


def _guarded(rows: RowBlocks, source: ModelSource) -> RowBlocks:
    def read(rows_per_block: int) -> Iterator[np.ndarray]:
        with _library_errors(source):
            yield from rows.read(rows_per_block)

    return RowBlocks(rows.shape, read)


def read_tokenizer(source: ModelSource, report: Report) -> tuple[str, list[int]]:
    """A checkpoint's tokenizer alone (its cleaned tokenizer.json and special ids), without
    reading any weights: what a command that only tokenizes needs."""
    with _library_errors(source, "its tokenizer cannot be read"):
        if source.kind == "gguf":
            from . import gguf as gguf_file

            return gguf_file.read_tokenizer(source, report)
        return hf_checkpoint.read_tokenizer(source, report)


def output_tensor(source: ModelSource, report: Report) -> str | None:
    """The tensor holding ``source``'s own output matrix, from the checkpoint's headers alone
    (no weights, no torch in the usual cases): cheap enough to ask before a build.

    Raises TiedEmbeddings when there is none; None when only loading the checkpoint can tell
    (no safetensors file).
    """
    with _library_errors(source):  # a truncated or malformed config.json or header
        if source.kind == "gguf":
            from . import gguf as gguf_file

            return gguf_file.output_tensor(source, report)
        return hf_checkpoint.output_tensor(source, report)


@contextlib.contextmanager
def _library_errors(
    source: ModelSource, what: str = "the checkpoint cannot be read"
) -> Iterator[None]:
    """Turn anything but a library error into one: a checkpoint's files can fail in more ways
    (truncated, malformed, unreadable, a library's own bug) than can be listed."""
    try:
        yield
    except TokneighError:
        raise
    except Exception as exc:  # a truncated or malformed file: json, torch, tokenizers, httpx...
        if not source.is_local:
            raise HubUnavailableError(
                f"model {source.location!r}: fetching or reading its files failed "
                f"({first_line(exc)})"
            ) from exc
        raise ModelNotFoundError(f"{source.location}: {what} ({first_line(exc)})") from exc
