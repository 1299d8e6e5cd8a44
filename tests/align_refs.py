"""References for the alignment tests, each independent of tokneigh's code: MiniLM's real matrix
copied under a SentencePiece-style tokenizer (renamed pieces, permuted rows, a rotation or a
projection, noise), and the alignment's numbers written out in numpy.

Why the copy is a fair test of the matching rule: WordPiece's word-initial ``king`` becomes the
piece ``▁king`` and the continuation ``##ing`` the piece ``ing``, so no word-initial token and
no continuation keeps its stored string, and every continuation takes the string of a
*different* MiniLM token (``ing`` is also MiniLM's word-initial "ing"): matching by raw
strings pairs those wrongly, and the rows are permuted so that no id lines up by chance. What
each token decodes to (a word start as a leading space) is unchanged, so the rule must pair
every token with its own copy.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from checkpoints import minilm_folder, write_tied_gpt2

# The renaming and the Unigram tokenizer are the README's copy's (one recipe, not two).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from make_turned_copy import RESERVED, SPECIAL, renamed, turned_tokenizer  # noqa: E402

# A copy holds MiniLM's first SUBSET tokens (fast, and A's other 22,522 are left unmatched).
SUBSET = 8000


def minilm_weights() -> np.ndarray:
    from safetensors.numpy import load_file

    path = minilm_folder() / "model.safetensors"
    return load_file(str(path))["embeddings.word_embeddings.weight"].astype(np.float32)


def minilm_vocab() -> list[str]:
    return (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").splitlines()


def hidden(vocab: list[str]) -> np.ndarray:
    """Ids of MiniLM's special tokens and reserved slots (never compared)."""
    return np.asarray([i for i, t in enumerate(vocab) if t in SPECIAL or RESERVED.fullmatch(t)])


def write_copy(
    folder: Path, weights: np.ndarray, permutation: np.ndarray, unigram: bool = False
) -> Path:
    """A checkpoint of MiniLM's first ``len(permutation)`` tokens: its token
    ``permutation[i]`` is MiniLM's token ``i`` renamed, with row ``weights[i]``; a Metaspace
    pre-tokenizer and decoder (tokneigh's SentencePiece style). ``unigram``: the Unigram
    tokenizer of the README's copy (examples/make_turned_copy.py), which splits text into the
    fewest pieces (a word B holds is one token, as in MiniLM); otherwise a BPE with no merges,
    which splits text into characters (the matching rule reads only the vocabularies)."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = minilm_vocab()[: len(permutation)]
    weights = weights[: len(permutation)]
    if unigram:
        tokenizer = turned_tokenizer(vocab, permutation)
    else:
        pieces = {renamed(token): int(permutation[i]) for i, token in enumerate(vocab)}
        assert len(pieces) == len(vocab)  # the renaming is one to one
        tokenizer = Tokenizer(models.BPE(vocab=pieces, merges=[], unk_token="[UNK]"))
        metaspace = {"replacement": "▁", "prepend_scheme": "always"}
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(**metaspace)
        tokenizer.decoder = decoders.Metaspace(**metaspace)
        tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL])
    rows = np.empty_like(weights)
    rows[permutation] = weights
    return write_tied_gpt2(folder, tokenizer, rows)


def write_wordpiece_copy(folder: Path, weights: np.ndarray, permutation: np.ndarray) -> Path:
    """A checkpoint of MiniLM's first ``len(permutation)`` tokens under MiniLM's own WordPiece
    rules (its token ``permutation[i]`` is MiniLM's token ``i``, row ``weights[i]``): B's
    tokenizer splits a word it lacks into the pieces it has ("##ing", "##s"), as a real
    smaller vocabulary does, so the text of a token B lacks has a composition."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab = minilm_vocab()[: len(permutation)]
    pieces = {token: int(permutation[i]) for i, token in enumerate(vocab)}
    tokenizer = Tokenizer(models.WordPiece(vocab=pieces, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.decoder = decoders.WordPiece()
    tokenizer.add_special_tokens([AddedToken(t, special=True) for t in SPECIAL])
    rows = np.empty_like(weights[: len(permutation)])
    rows[permutation] = weights[: len(permutation)]
    return write_tied_gpt2(folder, tokenizer, rows)


def rotation(dim: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q * np.sign(np.diag(r))


# --- the alignment written out --------------------------------------------------------------


def prepared(weights: np.ndarray, ids: np.ndarray, compared: np.ndarray) -> np.ndarray:
    """MUSE's renorm, center, renorm of rows ``ids``, the mean over the rows ``compared``."""
    unit = weights.astype(np.float64)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    centred = unit[ids] - unit[compared].mean(axis=0)
    return centred / np.linalg.norm(centred, axis=1, keepdims=True)


def split(pairs: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    test = max(1, int(round(share * pairs)))
    order = np.random.default_rng(seed).permutation(pairs)
    return np.sort(order[test:]), np.sort(order[:test])


def procrustes(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """argmin over orthogonal W of ||xW - y||_F: U V^T of the SVD of x^T y (Schönemann)."""
    u, _, vt = np.linalg.svd(x.T @ y)
    return u @ vt


def ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y)


def precision(
    queries: np.ndarray,
    candidates: np.ndarray,
    truth: np.ndarray,
    pool: np.ndarray | None = None,
    k: int = 10,
) -> tuple[float, float]:
    """(P@1, P@10) of finding candidates[truth[i]] from queries[i] (both unit rows): by cosine,
    or by CSLS when ``pool`` (the mapped source rows B's r is measured against) is given."""
    scores = queries.astype(np.float32) @ candidates.astype(np.float32).T
    if pool is not None:
        against = candidates.astype(np.float32) @ pool.astype(np.float32).T
        r = np.partition(against, against.shape[1] - k, axis=1)[:, -k:].mean(axis=1)
        scores = 2 * scores - r[None, :]
    ranks = np.asarray(
        [1 + int((row > row[t]).sum()) for row, t in zip(scores, truth)], dtype=np.int64
    )
    return float(np.mean(ranks <= 1)), float(np.mean(ranks <= 10))


def unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def load_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def drifted_copy(
    folder: Path, weights: np.ndarray, permutation: np.ndarray, noised: list[int], seed: int = 5
) -> Path:
    """MiniLM's first ``len(permutation)`` tokens turned by a rotation (``write_copy``), with
    the rows of MiniLM's ids ``noised`` replaced by random vectors of the same norm: those
    tokens, and only they, moved (their drift is near 1, every other near 0)."""
    rows = weights @ rotation(weights.shape[1], seed)
    rng = np.random.default_rng(seed)
    for i in noised:
        fresh = rng.standard_normal(weights.shape[1])
        rows[i] = fresh / np.linalg.norm(fresh) * np.linalg.norm(rows[i])
    return write_copy(folder, rows.astype(np.float32), permutation, unigram=True)
