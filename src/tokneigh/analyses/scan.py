"""Under-trained ("glitch") tokens: rank every token by an indicator, most suspect first.

Indicators (smaller is always more under-trained, so every ranking is ascending):

- ``magikarp`` (Land & Bartolo, "Fishing for Magikarp", arXiv 2405.05417). We follow
  ``embedding_distance_metrics`` in cohere-ai/magikarp's ``magikarp/utils.py``, its indicator
  "E_out Cosine Distance w/o 1st PC": the first principal component is that of the raw
  (un-normalized) rows, fitted on mean-centred rows (sklearn's PCA centres); it is then
  projected out of the *uncentred* rows, ``M' = M - (M pc) pc^T``; the reference vector is the
  mean of the reference rows of ``M'``; the score is the cosine distance ``1 - cos(M'_i, ref)``
  (denominator clipped at 1e-6 as there). Tokens closest to the mean of known-unused tokens
  are the most under-trained, so the smallest distance ranks first. The matrix is the one
  given: callers pass the output embeddings when the model has its own (as magikarp does).
- ``norm``: the L2 norm of the raw row (magikarp's "E_in L2 Norm"), smallest first: weight
  decay shrinks rows that gradients never reach.
- ``centroid``: the L2 distance of the raw row to the mean raw row, smallest first.

Rows with no direction (NaN, infinite or all zero: ``SpaceView.unusable``) are never scored;
the result says how many were left out.

Reachability: a token is reachable when encoding its own decoded text (no special tokens
added) yields its id. Details per tokenizer family are in ``reachability``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TokenIdError, UsageError
from ..results import ScanToken, TokenScan
from ..tokens import display

if TYPE_CHECKING:
    from .view import SpaceView

INDICATORS = ("magikarp", "norm", "centroid")

# Named reserved slots that no training text contains: BERT's [unused12], Gemma's <unused3>,
# Llama 3's <|reserved_special_token_5|>. Narrower than display.RESERVED: T5's <extra_id_N>
# are sentinels that pre-training does use, so they are no reference.
UNUSED_SLOT = re.compile(r"\[unused\d+\]|<unused\d+>|<\|reserved_special_token_\d+\|>")

# Bytes that occur in no valid UTF-8 text (overlong lead bytes C0/C1, F5..FF beyond U+10FFFF):
# a token holding one can never come out of encoding text (GPT-2's ids 124, 125, 177-187).
_NEVER_IN_UTF8 = frozenset([0xC0, 0xC1, *range(0xF5, 0x100)])

# Prefixes that put a WordPiece continuation piece ("##ana") at the end of a word: with the
# prefix as the word's first piece, greedy longest-match takes the whole rest ("##ana") next.
# Several, because a prefix may merge with the piece's start ("7" + "th" is the word "7th").
_WORDPIECE_PREFIXES = ("7", "q", "x", "z")

_BLOCK = 8192  # rows per block: float64 copies of the rows stay a few tens of MB


class Reachability:
    """Which rows the tokenizer can produce from text.

    ``reachable[i]``: encoding token i's decoded text yields i. ``fragment[i]``: the token's
    bytes are not valid UTF-8 on their own (GPT-2's 447 is the first two bytes of "’"); its
    text cannot round-trip, so it counts as unreachable, yet valid text may still contain it.
    ``impossible[i]``: unreachable for certain (a byte no UTF-8 text holds, or a row the
    tokenizer names no token for)."""

    def __init__(self, reachable: np.ndarray, fragment: np.ndarray, impossible: np.ndarray):
        self.reachable = reachable
        self.fragment = fragment
        self.impossible = impossible


# The last few answers of ``reachability``, by tokenizer file (it lies in the cache folder, named
# from the checkpoint's content): the shell or a test asks again about the same model.
_memo: dict[tuple[str, int], Reachability] = {}


def reachability(view: SpaceView) -> Reachability:
    """Round-trip every row through the model's tokenizer, in batches (``encode_batch``: one
    call for the whole vocabulary instead of one per token; about a second for GPT-2)."""
    key = (str(view.tokenizer_file), view.vocab_size)
    known = _memo.get(key)
    if known is None:
        known = _reachability(view)
        if len(_memo) >= 4:
            _memo.pop(next(iter(_memo)))
        _memo[key] = known
    return known


def _reachability(view: SpaceView) -> Reachability:
    from tokenizers import Tokenizer

    codec = view.codec
    n = view.vocab_size
    tokenizer = Tokenizer.from_file(str(view.tokenizer_file))
    tokenizer.no_padding()  # a saved tokenizer.json can pad or truncate (MiniLM: 128)
    tokenizer.no_truncation()
    reachable = np.zeros(n, dtype=bool)
    fragment = np.zeros(n, dtype=bool)
    impossible = np.zeros(n, dtype=bool)
    ids: list[int] = []
    texts: list[str] = []
    pieces: list[tuple[int, str]] = []  # WordPiece continuations: (id, text after "##")
    for i in range(n):
        raw = codec.raw(i)
        if raw is None:  # padding rows past the tokenizer (Qwen2, Phi): no text at all
            impossible[i] = True
            continue
        if i in codec.special_ids:  # control tokens are matched by their stored string
            ids.append(i)
            texts.append(raw)
            continue
        data = display.token_bytes(raw, codec.style)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            fragment[i] = True
            impossible[i] = any(b in _NEVER_IN_UTF8 for b in data)
            continue
        if codec.style == display.WORDPIECE and raw.startswith("##") and len(raw) > 2:
            pieces.append((i, text[2:]))
            continue
        if text:
            ids.append(i)
            texts.append(text)
    for i, encoding in zip(ids, tokenizer.encode_batch(texts, add_special_tokens=False)):
        reachable[i] = i in encoding.ids
    for prefix in _WORDPIECE_PREFIXES:
        if not pieces:
            break
        batch = tokenizer.encode_batch([prefix + t for _, t in pieces], add_special_tokens=False)
        for (i, _), encoding in zip(pieces, batch):
            reachable[i] = i in encoding.ids
        pieces = [p for p in pieces if not reachable[p[0]]]
    return Reachability(reachable, fragment, impossible)


# More digits than any vocabulary's ids have (and fewer than the 4,300 past which Python
# refuses to read a number).
_ID_DIGITS = 18

_PART = re.compile(r"(\d+)(?:\s*-\s*(\d+))?")


def _shown(text: str) -> str:
    # An 8 KB argument must not become an 8 KB error line.
    return repr(text) if len(text) <= 60 else repr(text[:57]) + "..."


def parse_reference(text: str, vocab_size: int | None) -> list[int] | None:
    """``auto`` (None) or token ids: ``177,178,179``, ranges ``177-187``, or both mixed.
    With ``vocab_size`` None only the spelling is checked (before a model is loaded).

    Time and memory are linear in the text plus the vocabulary, however long and however
    overlapping the ranges: each range adds +1 at its start and -1 past its end, and a
    running sum marks the ids (never a list of every id a range holds)."""
    spec = text.strip()
    if spec.lower() == "auto":
        return None
    starts: list[int] = []
    stops: list[int] = []
    for part in spec.split(","):
        part = part.strip()
        match = _PART.fullmatch(part)
        if match is None:
            raise UsageError(
                f"reference {_shown(text)}: {_shown(part)} is neither a token id nor a range "
                "such as 177-187 (the reference is auto or token ids and ranges, "
                "comma-separated)"
            )
        digits = [g for g in match.groups() if g is not None]
        for number in digits:
            if len(number.lstrip("0")) > _ID_DIGITS:
                raise UsageError(
                    f"reference token id {number[:12]}... ({len(number):,} digits) is beyond "
                    "any vocabulary"
                )
        low, high = int(digits[0]), int(digits[-1])
        if high < low:
            raise UsageError(f"reference {_shown(text)}: the range {part} runs backwards")
        if vocab_size is None:
            continue
        for token_id in (low, high):
            if token_id >= vocab_size:
                raise TokenIdError(token_id, vocab_size, "reference token id")
        starts.append(low)
        stops.append(high + 1)
    if vocab_size is None:
        return []
    delta = np.zeros(vocab_size + 1, dtype=np.int64)
    np.add.at(delta, starts, 1)
    np.add.at(delta, stops, -1)
    ids: list[int] = np.flatnonzero(np.cumsum(delta[:-1]) > 0).tolist()
    return ids


def auto_reference(
    view: SpaceView, reach: Reachability, usable: np.ndarray
) -> tuple[np.ndarray, int, int]:
    """(ids, unreachable, named slots): the rows known to be unused.

    Named unused slots, plus unreachable tokens except (1) control tokens (``<s>``, ``[CLS]``:
    trained, whether or not text produces them) and (2) byte fragments that valid UTF-8 text
    can still contain (they are trained as pieces of longer characters: counting GPT-2's 344
    fragments in would put trained rows into the reference mean). Fragments holding a byte
    that no UTF-8 text holds stay in. Rows with no direction are never part of it."""
    codec = view.codec
    named = np.zeros(view.vocab_size, dtype=bool)
    for i in range(view.vocab_size):
        raw = codec.raw(i)
        if raw is not None and UNUSED_SLOT.fullmatch(raw):
            named[i] = True
    control = np.zeros(view.vocab_size, dtype=bool)
    control[[i for i in codec.special_ids if i < view.vocab_size]] = True
    unreachable = ~reach.reachable & ~control & (~reach.fragment | reach.impossible)
    unreachable &= ~named & usable
    named &= usable
    ids = np.flatnonzero(named | unreachable)
    return ids, int(unreachable.sum()), int(named.sum())


def _raw_blocks(view: SpaceView, rows: np.ndarray) -> Any:
    """The raw rows (unit row x norm) of ``rows``, in float64 blocks."""
    for start in range(0, rows.size, _BLOCK):
        block = rows[start : start + _BLOCK]
        unit = np.asarray(view.unit[block], dtype=np.float64)
        yield block, unit * view.norms[block, None].astype(np.float64)


def first_principal_component(view: SpaceView, rows: np.ndarray) -> np.ndarray:
    """The unit direction of largest variance of the raw ``rows`` (mean removed, as PCA)."""
    d = view.dim
    gram = np.zeros((d, d))
    total = np.zeros(d)
    for _, raw in _raw_blocks(view, rows):
        gram += raw.T @ raw
        total += raw.sum(axis=0)
    mean = total / rows.size
    covariance = gram / rows.size - np.outer(mean, mean)
    _, vectors = np.linalg.eigh(covariance)  # ascending eigenvalues: the last is the largest
    pc: np.ndarray = vectors[:, -1]
    return pc


def indicator_scores(
    view: SpaceView, indicator: str, rows: np.ndarray, reference: np.ndarray | None
) -> np.ndarray:
    """The indicator of each of ``rows`` (float64, same order)."""
    norms = view.norms[rows].astype(np.float64)
    if indicator == "norm":
        return norms
    if indicator == "centroid":
        mean = np.zeros(view.dim)
        for _, raw in _raw_blocks(view, rows):
            mean += raw.sum(axis=0)
        mean /= rows.size
        return np.concatenate(
            [np.sqrt(((raw - mean) ** 2).sum(axis=1)) for _, raw in _raw_blocks(view, rows)]
        )
    assert reference is not None
    pc = first_principal_component(view, rows)
    # The reference mean of M' = M - (M pc) pc^T, then each row's cosine distance to it; M'
    # is built a block at a time, never as a whole second matrix.
    ref_sum = np.zeros(view.dim)
    for _, raw in _raw_blocks(view, reference):
        ref_sum += (raw - np.outer(raw @ pc, pc)).sum(axis=0)
    ref = ref_sum / reference.size
    ref_norm = float(np.linalg.norm(ref))
    out = np.empty(rows.size)
    done = 0
    for _, raw in _raw_blocks(view, rows):
        projected = raw - np.outer(raw @ pc, pc)
        lengths = np.sqrt((projected * projected).sum(axis=1))
        out[done : done + raw.shape[0]] = 1.0 - (projected @ ref) / np.clip(
            lengths * ref_norm, 1e-6, None
        )
        done += raw.shape[0]
    return out


def check_request(indicator: str, top: int) -> None:
    """Refuse an unknown indicator or a count below 1 (before any model is loaded)."""
    if indicator not in INDICATORS:
        raise UsageError(
            f"unknown indicator {indicator!r}; the indicators are {', '.join(INDICATORS)}"
        )
    if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
        raise UsageError(f"the number of tokens to list must be at least 1, got {top}")


def scan(
    view: SpaceView,
    *,
    indicator: str = "magikarp",
    reference: str | Sequence[int] | None = "auto",
    top: int = 20,
    include_special: bool = True,
    exclude_reference: bool = False,
) -> TokenScan:
    """Every usable token ranked by ``indicator``, most likely under-trained first; the first
    ``top`` are listed. ``reference`` (magikarp only): ``"auto"`` (unreachable tokens and named
    unused slots, see ``auto_reference``), token ids, or a spec such as ``"177-187,200"``.
    Give magikarp the output embeddings when the model has its own, ``norm`` the input ones.

    Every usable row is scored; ``include_special=False`` leaves special tokens out of the list
    and ``exclude_reference=True`` the reference tokens (known to be unused, so no news), and
    the ranks run 1..top over what is listed.
    """
    check_request(indicator, top)
    if exclude_reference and indicator != "magikarp":
        raise UsageError(f"the {indicator} indicator uses no reference tokens to leave out")
    usable = np.ones(view.vocab_size, dtype=bool)
    usable[view.unusable] = False
    rows = np.flatnonzero(usable)
    if rows.size == 0:
        raise UsageError(f"no row of {view.model} has a direction: nothing to rank")
    if isinstance(reference, str):
        explicit = parse_reference(reference, view.vocab_size)
    elif reference is None:
        explicit = None
    else:
        explicit = [int(i) for i in reference]
        for i in explicit:
            if not 0 <= i < view.vocab_size:
                raise TokenIdError(i, view.vocab_size, "reference token id")
        if not explicit:
            raise UsageError("the reference holds no token ids")
    reach = reachability(view)
    ref_ids: np.ndarray | None = None
    kind: str | None = None
    unreachable = named = 0
    if indicator == "magikarp":
        if explicit is None:
            ref_ids, unreachable, named = auto_reference(view, reach, usable)
            kind = "auto"
            if ref_ids.size == 0:
                raise UsageError(
                    f"{view.model} has no token known to be unused (none is unreachable or a "
                    "named unused slot): give reference token ids"
                )
        else:
            ref_ids = np.asarray(explicit, dtype=np.int64)
            kind = "ids"
            bad = ref_ids[~usable[ref_ids]]
            if bad.size:
                raise UsageError(
                    f"reference token id {int(bad[0])} has no direction (its row holds NaN, "
                    "infinite values or zeros)"
                )
    elif explicit is not None:
        raise UsageError(f"the {indicator} indicator uses no reference tokens")
    scores = indicator_scores(view, indicator, rows, ref_ids)
    order = np.lexsort((rows, scores))  # ascending score, ties by lower id
    left_out = np.zeros(view.vocab_size, dtype=bool)
    hidden_special = hidden_reference = 0
    if exclude_reference and ref_ids is not None:
        left_out[ref_ids] = True
        hidden_reference = int(left_out[rows].sum())
    if not include_special:
        special = np.zeros(view.vocab_size, dtype=bool)
        special[view.special_ids()] = True
        special[left_out] = False  # a reference token left out is counted there
        hidden_special = int(special[rows].sum())
        left_out |= special
    kept = order[~left_out[rows[order]]]
    listed = []
    for rank, j in enumerate(kept[:top].tolist(), start=1):
        token_id = int(rows[j])
        text, label = view.shown(token_id)
        listed.append(
            ScanToken(
                rank=rank,
                id=token_id,
                token=text,
                label=label,
                score=float(scores[j]),
                reachable=bool(reach.reachable[token_id]),
                special=bool(view.codec.is_special(token_id)),
            )
        )
    return TokenScan(
        model=view.model,
        embeddings=view.embeddings,
        indicator=indicator,
        reference_kind=kind,
        reference_ids=[] if ref_ids is None else [int(i) for i in ref_ids],
        reference_unreachable=unreachable,
        reference_named=named,
        tokens=listed,
        include_special=include_special,
        exclude_reference=exclude_reference,
        hidden_special=hidden_special,
        hidden_reference=hidden_reference,
        ranked=int(rows.size),
        unusable=int(view.unusable.size),
        unreachable=int((~reach.reachable).sum()),
        scores=scores,
    )
