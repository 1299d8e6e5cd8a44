"""`tokneigh diff`: neighbourhoods of two spaces compared, each measure against a reference
written out here in plain numpy (float64 cosines, full sorts, ranks counted by hand)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import cli
from safetensors.numpy import load_file, save_file

import tokneigh
from tokneigh.analyses import diff

SHARED_CACHE = True
EMBED = "model.embed_tokens.weight"
K = 8


# --- references ---------------------------------------------------------------------------------


def unit64(matrix: np.ndarray) -> np.ndarray:
    x = np.asarray(matrix, dtype=np.float64)
    return x / np.sqrt((x * x).sum(axis=1))[:, None]


def top_k(scores: np.ndarray, ids: np.ndarray, k: int) -> list[int]:
    """The k best of ``ids`` by a full sort, ties by the lower id."""
    return ids[np.lexsort((ids, -scores))][:k].tolist()


def ranks_by_hand(x: np.ndarray) -> np.ndarray:
    """Average ranks: 1 + how many are smaller + half of the others equal to it."""
    smaller = (x[None, :] < x[:, None]).sum(axis=1)
    equal = (x[None, :] == x[:, None]).sum(axis=1)
    return 1 + smaller + (equal - 1) / 2


def spearman_by_hand(x: np.ndarray, y: np.ndarray) -> float:
    rx, ry = ranks_by_hand(x), ranks_by_hand(y)
    dx, dy = rx - rx.mean(), ry - ry.mean()
    return float((dx * dy).sum() / np.sqrt((dx * dx).sum() * (dy * dy).sum()))


def reference(wa: np.ndarray, wb: np.ndarray, shared: np.ndarray, query: int, k: int):
    """(overlap, Jaccard, rho, A's list, B's list) of one token present at the same id in both
    matrices, ranked among ``shared`` (itself left out) by float64 cosine."""
    ua, ub = unit64(wa), unit64(wb)
    others = shared[shared != query]
    sa, sb = ua[others] @ ua[query], ub[others] @ ub[query]
    la, lb = top_k(sa, others, k), top_k(sb, others, k)
    common = len(set(la) & set(lb))
    return common / k, common / len(set(la) | set(lb)), spearman_by_hand(sa, sb), la, lb


# --- checkpoints --------------------------------------------------------------------------------


def copy_checkpoint(src: Path, dst: Path, rows=None, rename=None) -> Path:
    """A copy of the Llama-style checkpoint: ``rows(w)`` rewrites the input matrix, ``rename``
    ({old string: new string}) renames vocabulary entries (merges dropped: a renamed piece
    would break them, and these tests query ids, not text)."""
    shutil.copytree(src, dst)
    if rows is not None:
        tensors = load_file(str(dst / "model.safetensors"))
        tensors[EMBED] = np.ascontiguousarray(rows(tensors[EMBED].copy()))
        save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    if rename is not None:
        data = json.loads((dst / "tokenizer.json").read_text(encoding="utf-8"))
        vocab = data["model"]["vocab"]
        data["model"]["vocab"] = {rename.get(s, s): i for s, i in vocab.items()}
        data["model"]["merges"] = []
        (dst / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return dst


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory) -> Path:
    """conftest's Llama-style checkpoint (479 x 32, untied lm_head, the same tokenizer)
    without torch: only the two matrices a diff reads, random in numpy. Building the model
    in torch would take most of this module's time."""
    from checkpoints import llama_tokenizer

    folder = tmp_path_factory.mktemp("llama") / "ckpt"
    tokenizer = llama_tokenizer()
    tokenizer.save_pretrained(folder)
    n, dim = len(tokenizer), 32
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": dim,
        "vocab_size": n,
        "tie_word_embeddings": False,
        "bos_token_id": 1,
        "eos_token_id": 2,
    }
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    rng = np.random.default_rng(0)
    tensors = {
        EMBED: (0.02 * rng.standard_normal((n, dim))).astype(np.float32),
        "lm_head.weight": (0.02 * rng.standard_normal((n, dim))).astype(np.float32),
    }
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


@pytest.fixture(scope="module")
def cache_root(module_cache: Path) -> Path:
    return module_cache


@pytest.fixture(scope="module")
def base(llama_dir, cache_root):
    return tokneigh.load(str(llama_dir), cache_dir=cache_root)


@pytest.fixture(scope="module")
def weights(llama_dir) -> np.ndarray:
    return load_file(str(llama_dir / "model.safetensors"))[EMBED].astype(np.float32)


@pytest.fixture(scope="module")
def candidates(base) -> np.ndarray:
    """What neighbour lists may hold: every id the codec does not call special (no row of
    this checkpoint is zero or non-finite)."""
    assert base.unusable.size == 0
    return np.asarray([i for i in range(base.vocab_size) if not base.codec.is_special(i)])


@pytest.fixture(scope="module")
def permutation(base) -> np.ndarray:
    """new id of each old id: the special tokens (0-2) stay, every other id moves."""
    rng = np.random.default_rng(7)
    new = np.arange(base.vocab_size)
    new[3:] = 3 + rng.permutation(base.vocab_size - 3)
    return new


@pytest.fixture(scope="module")
def permuted(llama_dir, tmp_path_factory, base, permutation, cache_root):
    """The same tokens and vectors under other ids: rows and vocabulary ids moved together."""
    strings = {base.codec.raw(i): i for i in range(base.vocab_size)}
    data = json.loads((llama_dir / "tokenizer.json").read_text(encoding="utf-8"))
    assert set(data["model"]["vocab"]) <= set(strings)

    def move(w: np.ndarray) -> np.ndarray:
        out = np.empty_like(w)
        out[permutation] = w
        return out

    folder = copy_checkpoint(llama_dir, tmp_path_factory.mktemp("permuted") / "ckpt", move)
    data["model"]["vocab"] = {s: int(permutation[i]) for s, i in data["model"]["vocab"].items()}
    (folder / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return tokneigh.load(str(folder), cache_dir=cache_root)


NOISE = 0.6  # relative to each row's norm: lists change, but not beyond recognition


@pytest.fixture(scope="module")
def noised_weights(weights) -> np.ndarray:
    rng = np.random.default_rng(3)
    scale = np.linalg.norm(weights, axis=1, keepdims=True) / np.sqrt(weights.shape[1])
    return (weights + NOISE * scale * rng.standard_normal(weights.shape)).astype(np.float32)


@pytest.fixture(scope="module")
def noised_dir(llama_dir, tmp_path_factory, noised_weights) -> Path:
    folder = tmp_path_factory.mktemp("noised") / "ckpt"
    return copy_checkpoint(llama_dir, folder, lambda w: noised_weights)


@pytest.fixture(scope="module")
def noised(noised_dir, cache_root):
    return tokneigh.load(str(noised_dir), cache_dir=cache_root)


# --- the measures ------------------------------------------------------------------------------


def test_against_itself_every_overlap_and_rho_is_one(base, candidates):
    result = diff.compare_models(base.view, base.view, words=["king"], sample=50, k=K)
    assert result.shared == candidates.size
    assert len(result.items) == 51
    for item in result.items:
        assert (item.overlap, item.jaccard, item.spearman) == (1.0, 1.0, 1.0)
        assert [n.id for n in item.neighbors_a] == [n.id for n in item.neighbors_b]
    s = result.summary
    assert (s.overlap_mean, s.overlap_median, s.spearman_mean, s.overlap_below_half) == (
        1.0,
        1.0,
        1.0,
        0.0,
    )


def test_the_sample_is_seeded_uniform_and_the_lists_are_those_of_neighbors(base, candidates):
    result = diff.compare_models(base.view, base.view, sample=40, seed=5, k=K)
    drawn = np.sort(np.random.default_rng(5).choice(candidates.size, 40, replace=False))
    assert [i.id for i in result.items] == candidates[drawn].tolist()
    assert {i.source for i in result.items} == {"sample"}
    other = diff.compare_models(base.view, base.view, sample=40, seed=6, k=K)
    assert [i.id for i in other.items] != [i.id for i in result.items]
    filters = tokneigh.Filters(skip_special=True)
    for item in result.items[:5]:
        assert item.id is not None
        listed = base.neighbors(item.id, k=K, filters=filters, exclude_query=True).neighbors
        assert [(n.id, n.similarity) for n in item.neighbors_a] == [
            (n.id, n.similarity) for n in listed
        ]


def test_a_permuted_copy_matches_by_string_with_overlap_one(base, permuted, permutation):
    # The copy really moved: each string follows its row to the new id.
    for i in (3, 100, 300, base.vocab_size - 1):
        j = int(permutation[i])
        assert j != i or i < 3
        assert permuted.codec.raw(j) == base.codec.raw(i)
        np.testing.assert_array_equal(permuted.unit[j], base.unit[i])
    result = diff.compare_models(base.view, permuted.view, sample=60, k=K)
    assert result.shared == base.vocab_size - base._special_ids().size
    for item in result.items:
        assert item.overlap == 1.0 and item.jaccard == 1.0
        assert item.spearman == pytest.approx(1.0, abs=1e-12)
        # B's ids are the copy's own, each the moved id of A's neighbour at the same rank.
        assert [n.id for n in item.neighbors_b] == [
            int(permutation[n.id]) for n in item.neighbors_a
        ]
        assert [n.token for n in item.neighbors_b] == [n.token for n in item.neighbors_a]


def test_a_noised_copy_matches_the_numpy_reference(
    base, noised, weights, noised_weights, candidates
):
    result = diff.compare_models(base.view, noised.view, sample=80, seed=1, k=K)
    overlaps = []
    for item in result.items:
        assert item.id is not None
        overlap, jaccard, rho, la, lb = reference(weights, noised_weights, candidates, item.id, K)
        assert [n.id for n in item.neighbors_a] == la
        assert [n.id for n in item.neighbors_b] == lb
        assert item.overlap == pytest.approx(overlap)
        assert item.jaccard == pytest.approx(jaccard)
        assert item.spearman == pytest.approx(rho, abs=1e-6)
        overlaps.append(overlap)
    o = np.asarray(overlaps)
    assert 0 < o.mean() < 1 and o.min() < 1  # the noise changed lists, but kept some
    s = result.summary
    assert s.overlap_mean == pytest.approx(o.mean())
    assert s.overlap_median == pytest.approx(np.median(o))
    assert s.overlap_below_half == pytest.approx(np.mean(o < 0.5))
    assert s.spearman_median == pytest.approx(np.median([i.spearman for i in result.items]))
    # The most changed: lowest overlap, then lowest rho.
    ordered = sorted(result.items, key=lambda i: (i.overlap, i.spearman))
    assert [result.items[p] for p in result.most_changed] == ordered[:3]


def test_a_word_of_several_tokens_is_the_mean_of_its_vectors(
    base, noised, weights, noised_weights, candidates
):
    word = "bananas and cherries"
    ids_a = base.tokenize(word).ids
    assert len(ids_a) > 1 and noised.tokenize(word).ids == ids_a
    [item] = diff.compare_models(base.view, noised.view, words=[word], k=K).items
    assert item.id is None and item.query == word and item.source == "word"
    others = candidates[~np.isin(candidates, ids_a)]
    rows = []
    for w in (weights, noised_weights):
        u = unit64(w)
        v = u[ids_a].mean(axis=0)
        rows.append(u[others] @ (v / np.linalg.norm(v)))
    assert [n.id for n in item.neighbors_a] == top_k(rows[0], others, K)
    assert [n.id for n in item.neighbors_b] == top_k(rows[1], others, K)
    assert item.spearman == pytest.approx(spearman_by_hand(*rows), abs=1e-6)


def test_only_shared_tokens_are_ranked_and_csls_lists_are_those_of_neighbors(
    llama_dir, tmp_path_factory, base, weights, candidates, cache_root
):
    # 120 tokens renamed in B: they are not shared, so neither side may list them.
    renamed_ids = candidates[::4][:120]
    rename = {base.codec.raw(int(i)): f"renamed-{i}" for i in renamed_ids}
    folder = copy_checkpoint(llama_dir, tmp_path_factory.mktemp("renamed") / "ckpt", None, rename)
    b = tokneigh.load(str(folder), cache_dir=cache_root, metric="csls:5")
    shared = np.setdiff1d(candidates, renamed_ids)
    result = diff.compare_models(base.view, b.view, sample=30, k=K)
    assert result.shared == shared.size
    for item in result.items:
        assert item.id is not None and item.id in shared
        ua = unit64(weights)
        others = shared[shared != item.id]
        assert [n.id for n in item.neighbors_a] == top_k(ua[others] @ ua[item.id], others, K)
        assert not {n.id for n in item.neighbors_b} & set(renamed_ids.tolist())
    # B under csls, same vocabulary: its lists are what `neighbors` lists under csls.
    same = diff.compare_models(base.view, base.under("csls:5").view, sample=10, k=K)
    filters = tokneigh.Filters(skip_special=True)
    csls = base.under("csls:5")
    for item in same.items:
        assert item.id is not None
        listed = csls.neighbors(item.id, k=K, filters=filters, exclude_query=True).neighbors
        assert [(n.id, n.similarity) for n in item.neighbors_b] == [
            (n.id, n.similarity) for n in listed
        ]
    # Every token renamed: nothing is shared.
    everything = {base.codec.raw(int(i)): f"renamed-{i}" for i in candidates}
    folder = copy_checkpoint(
        llama_dir, tmp_path_factory.mktemp("disjoint") / "ckpt", None, everything
    )
    disjoint = tokneigh.load(str(folder), cache_dir=cache_root)
    with pytest.raises(tokneigh.UsageError, match="share no token"):
        diff.compare_models(base.view, disjoint.view, sample=10, k=K)


def test_average_ranks_share_ties():
    x = np.asarray([3.0, 1.0, 3.0, 2.0, 3.0, 1.0])
    np.testing.assert_array_equal(diff.average_ranks(x), ranks_by_hand(x))
    assert np.isnan(diff.spearman(np.ones(5), np.arange(5.0)))


# --- the command --------------------------------------------------------------------------------


def test_cli_output_embeddings_json_tsv_and_table(llama_dir, base, candidates, tmp_path):
    output = load_file(str(llama_dir / "model.safetensors"))["lm_head.weight"]
    words = tmp_path / "words.txt"
    words.write_text("king\n\nqueen\n", encoding="utf-8")
    args = ["diff", "Mike", "--words", str(words), "--model", str(llama_dir)]
    args += ["--against-embeddings", "output", "--top", str(K)]
    result = cli(*args, "--format", "json")
    assert result.exit_code == 0, result.stderr
    assert f"{candidates.size:,} shared tokens compared" in result.stderr
    data = json.loads(result.stdout)
    assert data["a"]["embeddings"] == "input" and data["b"]["embeddings"] == "output"
    assert [i["query"] for i in data["items"]] == ["Mike", "king", "queen"]  # no sample
    w = load_file(str(llama_dir / "model.safetensors"))[EMBED]
    for item in data["items"]:
        [token] = base.tokenize(item["query"]).ids
        overlap, jaccard, rho, la, lb = reference(w, output, candidates, token, K)
        assert item["id"] == token
        assert [n["id"] for n in item["neighbors_a"]] == la
        assert [n["id"] for n in item["neighbors_b"]] == lb
        assert (item["overlap"], item["jaccard"]) == pytest.approx((overlap, jaccard))
        assert item["spearman"] == pytest.approx(rho, abs=1e-6)
    overlaps = [i["overlap"] for i in data["items"]]
    assert data["summary"]["overlap"]["mean"] == pytest.approx(np.mean(overlaps))
    tsv = cli(*args, "--format", "tsv")
    assert tsv.exit_code == 0, tsv.stderr
    lines = tsv.stdout.strip().split("\n")
    assert lines[0].split("\t") == ["source", "query", "id", "overlap", "jaccard", "spearman"]
    assert [line.split("\t")[1] for line in lines[1:]] == ["Mike", "king", "queen"]
    table = cli(*args, "--changed", "1")
    assert table.exit_code == 0, table.stderr
    assert table.stdout.count("Most changed") == 1 and f"overlap@{K}" in table.stdout


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sample", "0"], "nothing to compare"),
        (["--top", "0"], "--top"),
        (["--sample", "-3"], "--sample"),
        (["--against-metric", "cosnie"], "metric"),
        (["--against-embeddings", "middle"], "--against-embeddings"),
        (["--words", "/nonexistent/words.txt"], "cannot read the word list"),
        (["   "], "empty"),
        (["--top", "500"], "is more than the"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(llama_dir, base, extra, message):
    # ``base`` has cached the model in this module's cache: a load prints nothing more.
    result = cli("diff", "--model", str(llama_dir), *extra)
    assert result.exit_code == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tokneigh: error: ") and message in lines[0], result.stderr
    assert not result.stdout


def test_a_bert_style_checkpoint_against_the_reference(bert_dir, minilm_dir):
    """Random weights against MiniLM's real ones, under the same WordPiece vocabulary."""
    import tokneigh

    a, b, word = bert_dir, minilm_dir, "king"
    ea, eb = tokneigh.load(str(a)), tokneigh.load(str(b))
    result = ea.diff(eb, [word], k=5)
    [item] = result.to_json()["items"]
    shared = np.asarray(
        [i for i in range(min(ea.vocab_size, eb.vocab_size))
         if not ea.codec.is_special(i) and i not in set(ea.unusable.tolist())
         and i not in set(eb.unusable.tolist())]
    )
    [query] = ea.tokenize(word).ids
    others = shared[shared != query]
    # Cosine rows by hand (the unit rows are what the cache holds), ranked by a full sort.
    sa = ea.unit[others].astype(np.float64) @ ea.unit[query].astype(np.float64)
    sb = eb.unit[others].astype(np.float64) @ eb.unit[query].astype(np.float64)
    la, lb = top_k(sa, others, 5), top_k(sb, others, 5)
    common = len(set(la) & set(lb))
    assert [n["id"] for n in item["neighbors_a"]] == la
    assert [n["id"] for n in item["neighbors_b"]] == lb
    assert item["overlap"] == pytest.approx(common / 5)
    assert item["jaccard"] == pytest.approx(common / len(set(la) | set(lb)))
    # Spearman over ~30,000-50,000 tokens: average ranks from a sort (ties share the mean
    # of their positions), then Pearson.
    def average_ranks(x: np.ndarray) -> np.ndarray:
        values, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
        last = np.cumsum(counts)
        return (last - (counts - 1) / 2)[inverse]

    ra, rb = average_ranks(sa), average_ranks(sb)
    rho = np.corrcoef(ra, rb)[0, 1]
    assert item["spearman"] == pytest.approx(rho, abs=1e-6)
