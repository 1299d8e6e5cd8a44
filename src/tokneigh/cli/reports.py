"""What the cache and graph commands report: results built only by the CLI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..results.tables import Column, Human, Table, model_label
from ..store.listing import CachedModel


@dataclass(slots=True)
class CacheListing:
    root: str
    entries: list[CachedModel]

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_json() for e in self.entries]

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        header = [
            "model",
            "path",
            "source",
            "embeddings",
            "vocab_size",
            "dim",
            "size_bytes",
            "entry",
            "quantization",
        ]
        rows = [[("" if v is None else v) for v in e.to_json().values()] for e in self.entries]
        return header, rows

    def human(self) -> Human:
        if not self.entries:
            return [f"no cached models in {self.root}"]
        rows = []
        for e in self.entries:
            size = f"{e.size_bytes / 1e6:,.1f} MB"
            if e.model is None:
                rows.append(["(damaged: rebuilt on next use)", "", "", "", "", size, e.folder])
                continue
            tags = ["output"] if e.embeddings == "output" else []
            tags += [e.quantization] if e.quantization else []
            name = model_label(e.model) + (f" ({', '.join(tags)})" if tags else "")
            where = e.model if e.source in ("local", "gguf") else "hub"
            rows.append(
                [name, where, f"{e.vocab_size:,}", str(e.dim), size, e.folder.rsplit("/", 1)[-1]]
            )
        columns = [Column("model"), Column("source"), Column("vocab", True), Column("dims", True)]
        columns += [Column("size", True), Column("entry")]
        return [Table(f"tokneigh cache · {self.root}", columns, rows)]


@dataclass(slots=True)
class CacheBuild:
    """What ``cache build`` did: built an entry (``seconds``) or found one already there."""

    model: str
    embeddings: str
    vocab_size: int
    dim: int
    path: str
    seconds: float | None  # None: it was already cached

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "embeddings": self.embeddings,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "path": self.path,
            "built": self.seconds is not None,
            "seconds": self.seconds,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        return list(data), [["" if v is None else v for v in data.values()]]

    def human(self) -> Human:
        kind = " (output embeddings)" if self.embeddings == "output" else ""
        shape = f"{self.vocab_size:,} × {self.dim}"
        if self.seconds is None:
            return [f"already cached: {self.model}{kind}, {shape}, at {self.path}"]
        return [f"built {self.model}{kind}: {shape} in {self.seconds:.1f} s, at {self.path}"]


@dataclass(slots=True)
class CacheRemoval:
    root: str
    removed: list[CachedModel]

    def to_json(self) -> dict[str, Any]:
        return {"root": self.root, "removed": [e.to_json() for e in self.removed]}

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        return CacheListing(self.root, self.removed).tsv()

    def human(self) -> Human:
        n = len(self.removed)
        lines: Human = [f"removed {n} cached {'entry' if n == 1 else 'entries'} from {self.root}"]
        lines += [
            f"  {e.label or e.folder}" + (" (output)" if e.embeddings == "output" else "")
            for e in self.removed
        ]
        return lines


@dataclass(slots=True)
class GraphFile:
    """What ``tokneigh graph`` wrote."""

    path: str
    file_format: str
    model: str
    metric: str
    k: int
    tokens: int
    include_special: bool
    seconds: float
    cached: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.path,
            "format": self.file_format,
            "model": self.model,
            "metric": self.metric,
            "k": self.k,
            "tokens": self.tokens,
            "include_special": self.include_special,
            "seconds": self.seconds,
            "cached": self.cached,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        return list(data), [list(data.values())]

    def human(self) -> Human:
        how = "from the cache" if self.cached else f"in {self.seconds:.1f} s"
        return [
            f"wrote the {self.k} nearest neighbours ({self.metric}) of {self.tokens:,} tokens "
            f"of {model_label(self.model)} to {self.path} ({self.file_format}), {how}"
        ]


@dataclass(slots=True)
class ExportFile:
    """What ``tokneigh export`` wrote."""

    path: str
    export_format: str  # "atlas" or "projector"
    model: str
    method: str
    metric: str
    neighbors: int
    tokens: int
    clusters: int

    def to_json(self) -> dict[str, Any]:
        return {
            "output": self.path,
            "format": self.export_format,
            "model": self.model,
            "method": self.method,
            "metric": self.metric,
            "neighbors": self.neighbors,
            "tokens": self.tokens,
            "clusters": self.clusters,
        }

    def tsv(self) -> tuple[list[str], list[list[Any]]]:
        data = self.to_json()
        return list(data), [list(data.values())]

    def human(self) -> Human:
        what = (
            f"{self.path} (embedding-atlas Parquet, {self.neighbors} exact neighbours a token)"
            if self.export_format == "atlas"
            else f"{self.path}/vectors.tsv and metadata.tsv (Embedding Projector)"
        )
        return [
            f"wrote the {self.method} map ({self.metric}) of {self.tokens:,} tokens in "
            f"{self.clusters:,} clusters of {model_label(self.model)} to {what}"
        ]
