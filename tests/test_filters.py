"""Neighbour-list filters: --dedupe, --min-sim, --words-only and special tokens."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest
from checkpoints import GPT2_VOCAB, gpt2_tokenizer
from explore_refs import assert_same_ranking, filtered_ranking
from helpers import cli
from hypothesis import given, settings
from hypothesis import strategies as st

import tokneigh
from tokneigh.space import core

SHARED_CACHE = True  # one cache per module: each model is built once


EXTRA_ROWS = 3  # rows past GPT-2's 50,257 tokens, as in checkpoints padded to a multiple of 64


@pytest.fixture(scope="module")
def padded_dir(tmp_path_factory, gpt2_ref) -> Path:
    """GPT-2's tokenizer over a matrix with 3 more rows than it has tokens; row 50258 is a
    copy of " Mike" (so it would rank first among " Mike"'s neighbours)."""
    import torch
    from transformers import GPT2Config, GPT2Model

    torch.manual_seed(3)
    folder = tmp_path_factory.mktemp("padded") / "ckpt"
    config = GPT2Config(
        vocab_size=GPT2_VOCAB + EXTRA_ROWS, n_embd=16, n_layer=1, n_head=2, n_positions=16
    )
    model = GPT2Model(config)
    mike = gpt2_ref.ids(" Mike")[0]
    with torch.no_grad():
        model.wte.weight[GPT2_VOCAB + 1] = model.wte.weight[mike] * 2.0
    model.save_pretrained(folder)
    gpt2_tokenizer().save_pretrained(folder)
    return folder


def neighbors_json(model, *args: str) -> list[dict]:
    result = cli("neighbors", *args, "--model", str(model), "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def check_rows(ours: list[dict], scores: np.ndarray, rows: list[tuple[int, list[int]]]) -> None:
    assert_same_ranking(ours, scores, [i for i, _ in rows])
    for got, (_, variants) in zip(ours, rows):
        if "variants" in got:
            assert sorted(v["id"] for v in got["variants"]) == sorted(variants)
            sims = [v["similarity"] for v in got["variants"]]
            np.testing.assert_allclose(sims, scores[[v["id"] for v in got["variants"]]], atol=1e-5)
            assert sims == sorted(sims, reverse=True)


# --- --words-only and --min-sim ---------------------------------------------------------------


@pytest.mark.parametrize("query", ["Mike", " the", "123"])
def test_words_only_still_returns_k(gpt2_dir, gpt2_ref, query):
    [data] = neighbors_json(gpt2_dir, query, "--words-only", "--top", "150")
    scores = gpt2_ref.scores(gpt2_ref.word(query))
    rows = filtered_ranking(gpt2_ref, scores, 150, words_only=True)
    assert len(data["neighbors"]) == 150
    check_rows(data["neighbors"], scores, rows)
    assert all(gpt2_ref.has_letter(n["id"]) for n in data["neighbors"])


def test_without_filters_tokens_without_letters_do_appear(gpt2_dir, gpt2_ref):
    [data] = neighbors_json(gpt2_dir, "Mike", "--top", "150")
    assert not all(gpt2_ref.has_letter(n["id"]) for n in data["neighbors"])
    scores = gpt2_ref.scores(gpt2_ref.word("Mike"))
    check_rows(data["neighbors"], scores, filtered_ranking(gpt2_ref, scores, 150))


def test_min_sim_cuts_the_list_and_says_so(gpt2_dir, gpt2_ref):
    scores = gpt2_ref.scores(gpt2_ref.word(" Mike"))
    cut = float(np.sort(scores)[-12])  # about a dozen tokens at or above it
    cut = round(cut, 4) - 1e-4  # a threshold not within rounding of any one score
    rows = filtered_ranking(gpt2_ref, scores, 50, min_sim=cut)
    assert 5 < len(rows) < 50
    result = cli("neighbors", " Mike", "--min-sim", str(cut), "-k", "50", "-f", "json",
                 "-m", str(gpt2_dir))
    assert result.exit_code == 0, result.stderr
    [data] = json.loads(result.stdout)
    check_rows(data["neighbors"], scores, rows)
    assert f"only {len(rows)} tokens pass --min-sim {cut} for ' Mike'" in result.stderr
    # A low threshold leaves more than k: exactly k come back.
    [data] = neighbors_json(gpt2_dir, " Mike", "--min-sim", "0.1", "--top", "30")
    check_rows(data["neighbors"], scores, filtered_ranking(gpt2_ref, scores, 30, min_sim=0.1))


# --- --dedupe ---------------------------------------------------------------------------------


@pytest.mark.parametrize("query", [" Mike", "the", " End"])
def test_dedupe_folds_leading_space_and_case(gpt2_dir, gpt2_ref, query):
    [data] = neighbors_json(gpt2_dir, query, "--dedupe", "--top", "40")
    scores = gpt2_ref.scores(gpt2_ref.word(query))
    rows = filtered_ranking(gpt2_ref, scores, 40, dedupe=True)
    assert len(data["neighbors"]) == 40
    check_rows(data["neighbors"], scores, rows)
    keys = [gpt2_ref.fold_key(n["id"]) for n in data["neighbors"]]
    assert len({k for k in keys if k is not None}) == len([k for k in keys if k is not None])
    for n, key in zip(data["neighbors"], keys):
        assert all(gpt2_ref.fold_key(v["id"]) == key for v in n["variants"])
        assert all(v["similarity"] <= n["similarity"] for v in n["variants"])


def test_dedupe_lists_the_other_spellings_of_the_query(gpt2_dir, gpt2_ref):
    [data] = neighbors_json(gpt2_dir, " End", "--dedupe", "--top", "3")
    first = data["neighbors"][0]
    assert first["token"] == " End"
    spellings = {v["token"] for v in first["variants"]}
    expected = {t for t in ("End", " end", "end", " END", "END") if len(gpt2_ref.ids(t)) == 1}
    assert expected <= spellings and len(expected) >= 4


def test_dedupe_with_min_sim_and_exclude_query(gpt2_dir, gpt2_ref):
    args = ["--dedupe", "--min-sim", "0.2", "--exclude-query", "--top", "25"]
    [data] = neighbors_json(gpt2_dir, " End", *args)
    scores = gpt2_ref.scores(gpt2_ref.word(" End"))
    exclude = set(gpt2_ref.ids(" End"))
    rows = filtered_ranking(gpt2_ref, scores, 25, exclude=exclude, min_sim=0.2, dedupe=True)
    check_rows(data["neighbors"], scores, rows)
    assert all(v["id"] not in exclude for n in data["neighbors"] for v in n["variants"])


def test_variants_key_only_with_dedupe_and_tsv_column(gpt2_dir):
    [plain] = neighbors_json(gpt2_dir, " End", "--top", "5")
    assert all(set(n) == {"rank", "id", "token", "similarity"} for n in plain["neighbors"])
    [folded] = neighbors_json(gpt2_dir, " End", "--top", "5", "--dedupe")
    assert all(set(n) == {"rank", "id", "token", "similarity", "variants"}
               for n in folded["neighbors"])
    assert all(set(v) == {"id", "token", "similarity"}
               for n in folded["neighbors"] for v in n["variants"])
    tsv = cli("neighbors", " End", "--top", "5", "--dedupe", "-f", "tsv", "-m", str(gpt2_dir))
    assert tsv.exit_code == 0, tsv.stderr
    header, first, *_ = tsv.stdout.splitlines()
    assert header.split("\t") == ["query", "query_id", "rank", "id", "token", "similarity",
                                  "variant_ids"]
    ids = first.split("\t")[6].split(",")
    assert ids == [str(v["id"]) for v in folded["neighbors"][0]["variants"]]
    table = cli("neighbors", " End", "--top", "5", "--dedupe", "-m", str(gpt2_dir))
    assert table.exit_code == 0 and "variants" in table.stdout and '" end"' in table.stdout


# --- special tokens ---------------------------------------------------------------------------


def test_reserved_slots_are_left_out_unless_included(minilm_dir, minilm_ref):
    # [unused0]'s nearest tokens are other never-trained [unusedN] slots.
    scores = minilm_ref.scores(minilm_ref.unit[1])
    [default] = neighbors_json(minilm_dir, "--id", "1", "--top", "20")
    rows = filtered_ranking(minilm_ref, scores, 20, spared={1})
    check_rows(default["neighbors"], scores, rows)
    assert default["neighbors"][0]["id"] == 1  # the query's own special token still answers
    assert not any(minilm_ref.is_special(n["id"]) for n in default["neighbors"][1:])
    [included] = neighbors_json(minilm_dir, "--id", "1", "--top", "20", "--include-special")
    check_rows(included["neighbors"], scores, filtered_ranking(minilm_ref, scores, 20,
                                                               skip_special=False))
    assert sum(minilm_ref.is_special(n["id"]) for n in included["neighbors"]) >= 5


def test_special_tokens_are_labelled_in_tables(gpt2_dir, minilm_dir):
    result = cli("neighbors", "--id", "50256", "--top", "3", "-m", str(gpt2_dir))
    assert result.exit_code == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "50256" in line and "│" in line)
    assert "<|endoftext|>" in row and "special" in row
    result = cli("neighbors", "--id", "1", "--top", "4", "--include-special",
                 "-m", str(minilm_dir))
    rows = [line for line in result.stdout.splitlines() if "│" in line and "[unused" in line]
    assert len(rows) >= 2 and all("special" in line for line in rows)
    plain = [line for line in result.stdout.splitlines() if "│" in line and "[unused" not in line]
    assert not any("special" in line for line in plain)


def test_rows_beyond_the_tokenizer_are_special(padded_dir):
    mike = str(GPT2_VOCAB + 1)
    [default] = neighbors_json(padded_dir, " Mike", "--top", "10")
    assert all(n["id"] < GPT2_VOCAB for n in default["neighbors"])
    assert len(default["neighbors"]) == 10
    [included] = neighbors_json(padded_dir, " Mike", "--top", "10", "--include-special")
    assert [n["id"] for n in included["neighbors"][:2]] == sorted([GPT2_VOCAB + 1, 4995])
    assert [n["id"] for n in included["neighbors"][2:]] == [
        n["id"] for n in default["neighbors"][1:9]
    ]
    table = cli("neighbors", " Mike", "-k", "3", "--include-special", "-m", str(padded_dir))
    row = next(line for line in table.stdout.splitlines() if mike in line)
    assert f"<padding #{mike}>" in row and "special" in row  # a row past the tokenizer
    # Queried by id, the unnamed row answers: itself and its twin " Mike" (a tie at 1.0,
    # lower id first), then the same neighbours as " Mike".
    [by_id] = neighbors_json(padded_dir, "--id", mike, "--top", "4")
    assert [n["id"] for n in by_id["neighbors"][:2]] == [4995, GPT2_VOCAB + 1]


def test_compare_ranks_b_as_the_neighbour_list_shows_it(minilm_dir, minilm_ref):
    """`compare A B` counts what `neighbors A` lists before B: special tokens left out by
    default, counted with --include-special. Checked where specials do rank ahead of B."""
    scores = minilm_ref.scores(minilm_ref.word("king"))
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    first_special = next(p for p, i in enumerate(order) if minilm_ref.is_special(i))
    b = next(  # the first token after it that a text names on its own
        i for i in order[first_special + 1 :]
        if not minilm_ref.is_special(i) and minilm_ref.ids(minilm_ref.token_text(i)[0]) == [i]
    )
    full_rank = order.index(b) + 1
    listed_rank = 1 + sum(not minilm_ref.is_special(i) for i in order[: order.index(b)])
    assert listed_rank < full_rank
    text = minilm_ref.token_text(b)[0]
    for extra, want in (((), listed_rank), (("--include-special",), full_rank)):
        result = cli("compare", "king", text, *extra, "-m", str(minilm_dir), "--format", "json")
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["rank_of_b"] == want
        [listed] = neighbors_json(minilm_dir, "king", "--top", str(want), *extra)
        assert listed["neighbors"][-1]["id"] == b


def test_the_rows_past_the_tokenizer_are_among_the_hidden_ids(padded_dir, module_cache):
    emb = tokneigh.load(str(padded_dir), cache_dir=module_cache)
    hidden = emb.codec.special_among(emb.vocab_size)
    assert hidden == [GPT2_VOCAB - 1, *range(GPT2_VOCAB, GPT2_VOCAB + EXTRA_ROWS)]


def test_api_ranks_every_row_unless_asked(padded_dir, module_cache):
    emb = tokneigh.load(str(padded_dir), cache_dir=module_cache)
    every = emb.neighbors(" Mike", k=3)
    assert GPT2_VOCAB + 1 in [n.id for n in every.neighbors]
    assert [n.special for n in every.neighbors if n.id == GPT2_VOCAB + 1] == [True]
    assert all(n.variants is None for n in every.neighbors)
    skipped = emb.neighbors(" Mike", k=3, filters=tokneigh.Filters(skip_special=True))
    assert GPT2_VOCAB + 1 not in [n.id for n in skipped.neighbors]
    assert [n.rank for n in skipped.neighbors] == [1, 2, 3]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["1.5", "-2", "nan", "high"])
def test_bad_min_sim_is_one_line_on_stderr(gpt2_dir, value):
    result = cli("neighbors", "Mike", "--min-sim", value, "-m", str(gpt2_dir))
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: ") and "min-sim" in lines[0]


def test_api_refuses_a_nan_threshold(gpt2_dir, module_cache):
    from tokneigh.errors import UsageError

    emb = tokneigh.load(str(gpt2_dir), cache_dir=module_cache)
    with pytest.raises(UsageError):
        emb.neighbors("Mike", filters=tokneigh.Filters(min_sim=float("nan")))


# --- the core: filter the full ranking, efficiently -------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    scores=st.lists(st.integers(-5, 5), min_size=1, max_size=300),  # many ties
    k=st.integers(1, 40),
    keep_every=st.integers(1, 7),
    exclude=st.lists(st.integers(0, 299), max_size=10),
    min_score=st.none() | st.integers(-5, 5),
)
def test_top_k_selected_equals_filtering_a_full_sort(scores, k, keep_every, exclude, min_score):
    values = np.asarray(scores, dtype=np.float32)
    exclude = [i for i in exclude if i < len(values)]

    def select(candidates: np.ndarray) -> np.ndarray:
        return candidates[candidates % keep_every == 0]

    got = core.top_k_selected(values, k, select, exclude, min_score)[0]
    order = sorted(range(len(values)), key=lambda i: (-values[i], i))
    passing = [i for i in order if min_score is None or values[i] >= min_score]
    want = [i for i in passing if i not in exclude and i % keep_every == 0][:k]
    assert got.tolist() == want


def test_top_k_selected_ranks_a_small_pool_and_widens_only_when_needed():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=50_000).astype(np.float32)
    pools: list[int] = []

    def everything(candidates: np.ndarray) -> np.ndarray:
        pools.append(candidates.size)
        return candidates

    got = core.top_k_selected(scores, 20, everything)[0]
    assert got.tolist() == core.top_k(scores, 20).tolist()
    assert pools == [84]  # max(4k, k + 64): never the whole vocabulary
    pools.clear()

    def rare(candidates: np.ndarray) -> np.ndarray:  # keeps 1 in 100
        pools.append(candidates.size)
        return candidates[candidates % 100 == 0]

    got = core.top_k_selected(scores, 20, rare)[0]
    assert len(got) == 20 and all(i % 100 == 0 for i in got.tolist())
    assert pools == sorted(pools) and pools[-1] < scores.size  # widened, not a full sort


def test_rank_many_with_selectors_equals_one_query_at_a_time():
    rng = np.random.default_rng(1)
    unit, _ = core.normalize_rows(rng.normal(size=(500, 8)))
    queries = unit[:5]

    def odd(candidates: np.ndarray) -> np.ndarray:
        return candidates[candidates % 2 == 1]

    selectors = [odd, None, odd, None, odd]
    many = core.rank_many(unit, queries, 7, None, selectors, 0.0)
    block = queries @ unit.T  # the same product rank_many makes
    for query, row, select, (ids, scores) in zip(queries, block, selectors, many):
        exact = functools.partial(core.exact_scores, unit, query)
        assert ids.tolist() == core.top_k_selected(row, 7, select, (), 0.0, exact)[0].tolist()
        assert (scores >= 0).all()
    assert all(i % 2 == 1 for i in many[0][0].tolist())
    assert not all(i % 2 == 1 for i in many[1][0].tolist())


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(st.integers(-5, 5), min_size=40, max_size=40), min_size=1, max_size=6),
    k=st.integers(1, 45),
    exclude=st.lists(st.lists(st.integers(0, 39), max_size=45), min_size=6, max_size=6),
    min_score=st.none() | st.sampled_from([-0.5, 0.0, 0.1, 0.3]),
)
def test_rank_many_masking_equals_filtering_a_full_sort(rows, k, exclude, min_score):
    """The unfiltered path masks excluded ids in its own score block instead of copying each
    row; with repeated ids, and k near or past what is left, it still equals a full sort."""
    raw = np.asarray(rows, dtype=np.float64)
    norms = np.linalg.norm(raw, axis=1, keepdims=True)
    cosines = np.divide(raw, norms, out=np.zeros_like(raw), where=norms > 0)
    scores = cosines.astype(np.float32)
    unit = np.eye(40, dtype=np.float32)  # unit @ query gives the query back: scores as given
    ranked = core.rank_many(unit, scores, k, exclude[: len(rows)], None, min_score)
    for query, skip, (ids, sims) in zip(scores, exclude, ranked):
        # The cosine of row i of the identity with the query (scores are rescored in float64).
        values = query.astype(np.float64) / (np.linalg.norm(query.astype(np.float64)) or 1.0)
        order = sorted(range(len(values)), key=lambda i: (-values[i], i))
        want = [i for i in order if i not in skip]
        want = [i for i in want if min_score is None or values[i] >= min_score][:k]
        assert ids.tolist() == want
        np.testing.assert_allclose(sims, [values[i] for i in want], atol=1e-12)
