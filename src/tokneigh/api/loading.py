"""Loading: a model's cached embeddings (``load``), or its tokenizer alone (``load_vocabulary``)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import UsageError
from ..reporting import Progress, Report, note
from ..sources.models import DEFAULT_MODEL, ModelSource, resolve
from ..space.metrics import Metric
from ..store import entries, layout
from .embeddings import Embeddings
from .logreport import log_report
from .vocabulary import Vocabulary


def _source(model: str | None) -> ModelSource:
    # None is "not given"; an empty name is refused by resolve (an empty TOKNEIGH_MODEL is unset).
    if model is None:
        model = os.environ.get("TOKNEIGH_MODEL") or DEFAULT_MODEL
    return resolve(model)


def load(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    report: Report | None = None,
    embeddings: str = "input",
    metric: str | Metric | None = None,
    progress: Progress | None = None,
) -> Embeddings:
    """Load a model's embeddings from the cache, extracting and caching them on first use.

    ``model`` is a hub id or a local checkpoint folder (default ``$TOKNEIGH_MODEL`` or gpt2).
    ``report`` receives progress and warning lines (the CLI prints them on stderr); without
    it they go to the ``tokneigh`` logger. ``embeddings="output"`` serves the output matrix (the
    LM head) when the model has one of its own, cached separately; for a tied model it says so
    and serves the input matrix, which is the same. ``metric`` compares them under another
    metric than cosine (``Embeddings.under``); ``progress`` follows a long first computation.
    """
    from ..errors import TiedEmbeddings

    if embeddings not in layout.EMBEDDINGS_KINDS:
        raise UsageError(f"embeddings must be 'input' or 'output', not {embeddings!r}")
    source = _source(model)
    root = layout.resolve_root(cache_dir)
    say = report or log_report
    try:
        entry = entries.get(source, root, embeddings, rebuild=rebuild, report=say)
    except TiedEmbeddings as exc:
        say(
            note(
                f"{source.name} has no separate output embeddings ({exc}): input and output "
                "are the same matrix; serving the input embeddings"
            )
        )
        entry = entries.get(source, root, "input", rebuild=rebuild, report=say)
    emb = Embeddings(entry)
    return emb if metric is None else emb.under(metric, report=say, progress=progress)


def load_vocabulary(
    model: str | None = None,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    report: Report | None = None,
) -> Vocabulary:
    """A model's tokenizer alone: from its cache entry when there is one, else read from the
    checkpoint (no embedding matrix is extracted, nothing is cached)."""
    import json
    import tempfile

    from ..formats.extract import read_tokenizer
    from ..tokens.codec import TokenCodec
    from ..tokens.display import detect_style

    source = _source(model)
    codec = entries.open_tokenizer(source, layout.resolve_root(cache_dir))
    if codec is None:
        tokenizer_json, special_ids = read_tokenizer(source, report or log_report)
        style = detect_style(json.loads(tokenizer_json))
        # The codec reads its file once, when it is made: a scratch folder is enough.
        with tempfile.TemporaryDirectory(prefix="tokneigh-") as scratch:
            path = Path(scratch) / layout.TOKENIZER
            path.write_text(tokenizer_json, encoding="utf-8", errors="surrogatepass")
            codec = TokenCodec(path, style, special_ids)
    return Vocabulary(source.name, codec)
