"""Module-scoped fixtures shared by the alignment tests (test_align.py, test_cross_model.py):
MiniLM's real matrix and vocabulary, and the ids a copy of its first ``SUBSET`` tokens shares
with it. A test module imports the ones it uses (pytest finds imported fixtures)."""

from __future__ import annotations

import align_refs as ref
import numpy as np
import pytest

import tokneigh

SUBSET = ref.SUBSET


@pytest.fixture(scope="module")
def weights() -> np.ndarray:
    return ref.minilm_weights()


@pytest.fixture(scope="module")
def vocab() -> list[str]:
    return ref.minilm_vocab()


@pytest.fixture(scope="module")
def compared(vocab) -> np.ndarray:
    return np.setdiff1d(np.arange(len(vocab)), ref.hidden(vocab))


@pytest.fixture(scope="module")
def pairs(compared) -> np.ndarray:
    """The ids of A that B has (non-hidden), ascending: what the rule must pair."""
    return compared[compared < SUBSET]


@pytest.fixture(scope="module")
def permutation() -> np.ndarray:
    return np.random.default_rng(11).permutation(SUBSET)


@pytest.fixture(scope="module")
def minilm(minilm_dir, module_cache):
    return tokneigh.load(str(minilm_dir), cache_dir=module_cache)
