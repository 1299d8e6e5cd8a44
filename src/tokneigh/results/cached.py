"""One cache entry as ``cache list`` shows it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .tables import model_label


@dataclass(slots=True)
class CachedModel:
    """One cache entry as ``cache list`` shows it (``model`` None: a damaged entry)."""

    model: str | None  # the hub id or the full checkpoint path
    source: str | None  # "hub" or "local"
    embeddings: str | None  # "input" or "output"
    vocab_size: int | None
    dim: int | None
    size_bytes: int
    folder: str  # the entry's folder
    quantization: str | None = None  # a GGUF tensor's storage type ("Q8_0"), else None

    @property
    def label(self) -> str | None:
        return None if self.model is None else model_label(self.model)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.label,
            "path": self.model,
            "source": self.source,
            "embeddings": self.embeddings,
            "vocab_size": self.vocab_size,
            "dim": self.dim,
            "size_bytes": self.size_bytes,
            "entry": self.folder,
            "quantization": self.quantization,
        }
