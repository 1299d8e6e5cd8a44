"""Independent references: the seed article's per-row loop, written without tokneigh's core."""

from __future__ import annotations

import math

import numpy as np


def raw_matrix(checkpoint: str) -> np.ndarray:
    """The input embedding matrix as transformers loads it (the seed's way)."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(checkpoint)
    return model.get_input_embeddings().weight.detach().double().numpy()


def loop_similarities(raw: np.ndarray, query: np.ndarray) -> np.ndarray:
    """One row at a time: dot / (norm x norm). A zero row scores 0 (cosine is undefined)."""
    qn = math.sqrt(float(np.dot(query, query)))
    out = np.empty(raw.shape[0])
    for i, row in enumerate(raw):
        rn = math.sqrt(float(np.dot(row, row)))
        out[i] = float(np.dot(row, query)) / (rn * qn) if rn > 0 and qn > 0 else 0.0
    return out


def mean_of_unit_rows(raw: np.ndarray, ids: list[int]) -> np.ndarray:
    rows = raw[ids]
    norms = np.linalg.norm(rows, axis=1, keepdims=True)
    return (rows / np.where(norms > 0, norms, 1)).mean(axis=0)


def ranking(similarities: np.ndarray, k: int, exclude: tuple[int, ...] = ()) -> list[int]:
    """Ids by descending similarity, ties broken by lower id (a stable full sort)."""
    order = sorted(range(len(similarities)), key=lambda i: (-similarities[i], i))
    return [i for i in order if i not in exclude][:k]
