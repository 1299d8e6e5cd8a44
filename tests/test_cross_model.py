"""Cross-model neighbours (`neighbors QUERY --in B`, ``Embeddings.neighbors_in``) and composed
tokens (`align --composed`), against numpy written out: MiniLM (A) and a copy of its first
SUBSET tokens (B) under MiniLM's own WordPiece rules, rows permuted and turned by a rotation
(exact) or also noised (a map that is not exact); A's other 22,522 tokens are ones B lacks."""

from __future__ import annotations

import json

import align_refs as ref
import numpy as np
import pytest
from helpers import assert_one_line_error, cli, heavy_imports

import tokneigh
from tokneigh.analyses import composed as composition

SHARED_CACHE = True  # the copies are built once per module
pytest_plugins = ("align_fixtures",)  # weights, vocab, compared, pairs, permutation, minilm
SUBSET = ref.SUBSET
SHARE = 0.1  # the map's defaults: what `neighbors --in` asks for
QUERIES = ["king", "#2000", "tokenization", "#12000", " walking", "#20000"]


@pytest.fixture(scope="module")
def copies(tmp_path_factory, weights, permutation, module_cache):
    """name -> (B's Embeddings, B's rows in MiniLM's id order, B's folder)."""
    rotation = ref.rotation(weights.shape[1], 5)
    scale = float(np.linalg.norm(weights, axis=1).mean() / np.sqrt(weights.shape[1]))
    noise = np.random.default_rng(7).standard_normal(weights.shape).astype(np.float32)
    made = {}
    for name, rows in {
        "rotated": weights @ rotation,
        "noisy": weights @ rotation + 0.6 * scale * noise,
    }.items():
        rows = rows[:SUBSET].astype(np.float32)
        folder = tmp_path_factory.mktemp(name) / "ckpt"
        ref.write_wordpiece_copy(folder, rows, permutation)
        made[name] = (tokneigh.load(str(folder), cache_dir=module_cache), rows, folder)
    return made


def by_hand_map(weights, rows_b, pairs):
    """(mean A, mean B, W) of the default split with refine 0, in numpy."""
    fit_at, _ = ref.split(pairs.size, SHARE, 0)
    x = ref.prepared(weights, pairs, pairs)
    y = ref.prepared(rows_b, pairs, pairs)
    return (
        ref.unit(weights[pairs]).mean(axis=0),
        ref.unit(rows_b[pairs]).mean(axis=0),
        ref.procrustes(x[fit_at], y[fit_at]),
    )


def b_by_id(rows_b, permutation):
    """B's rows in B's own id order."""
    out = np.empty_like(rows_b)
    out[permutation] = rows_b
    return out


def test_a_rotated_copy_gives_b_its_own_neighbours_of_the_counterpart(minilm, copies,
                                                                       permutation):
    b, _, _ = copies["rotated"]
    for query in ("king", "#2000", " walking", "#5000"):
        [cross] = minilm.neighbors_in(b, [query], k=10, refine=0)
        a_id = minilm.query_tokens(query).ids[0]
        own = b.neighbors(int(permutation[a_id]), k=10)
        assert [n.id for n in cross.listed.neighbors] == [n.id for n in own.neighbors]
        np.testing.assert_allclose([n.similarity for n in cross.listed.neighbors],
                                   [n.similarity for n in own.neighbors], atol=2e-5)
        assert cross.counterpart is not None
        assert cross.counterpart["id"] == permutation[a_id] and cross.counterpart["rank"] == 1
        assert cross.counterpart["similarity"] == pytest.approx(1.0, abs=2e-5)
    # A vector of A's space is mapped as a token is: A's own row of "king" reads as "king".
    [by_vector] = minilm.neighbors_in(b, [minilm.vector("king") * 3.0], k=10, refine=0)
    [by_text] = minilm.neighbors_in(b, ["king"], k=10, refine=0)
    assert [n.id for n in by_vector.listed.neighbors] == [n.id for n in by_text.listed.neighbors]
    assert by_vector.counterpart is None  # a vector has no text to look up in B


def test_the_mapped_query_is_ranked_among_b_rows_as_numpy_ranks_it(minilm, copies, weights,
                                                                   pairs, permutation, vocab):
    b, rows_b, _ = copies["noisy"]
    mean_a, mean_b, w = by_hand_map(weights, rows_b, pairs)
    units_b = ref.unit(b_by_id(rows_b, permutation).astype(np.float64))
    hidden_b = permutation[ref.hidden(vocab[:SUBSET])]
    k = 8
    skip = tokneigh.Filters(skip_special=True)  # as the command's default
    answers = minilm.neighbors_in(b, QUERIES, k=k, refine=0, filters=skip)
    for query, cross in zip(QUERIES, answers):
        ids = minilm.query_tokens(query).ids
        q = ref.unit(ref.unit(weights[ids].astype(np.float64)).mean(axis=0)[None])[0]
        centred = q - mean_a
        direction = ref.unit(((centred / np.linalg.norm(centred)) @ w)[None])[0]
        vector = direction * np.linalg.norm(centred) + mean_b
        scores = units_b @ (vector / np.linalg.norm(vector))
        scores[hidden_b] = -np.inf  # B's special tokens are left out, as in every list
        expected = np.argsort(-scores, kind="stable")[:k]
        got = [n.id for n in cross.listed.neighbors]
        np.testing.assert_allclose([n.similarity for n in cross.listed.neighbors],
                                   scores[expected], atol=5e-5)
        assert got == expected.tolist() or np.allclose(scores[got], scores[expected], atol=5e-5)
        lacks = ids[0] >= SUBSET or len(ids) > 1
        assert (cross.counterpart is None) == lacks  # tokens B lacks still get a list
        assert len(got) == k
        if not lacks:
            own = int(permutation[ids[0]])
            assert cross.counterpart["similarity"] == pytest.approx(scores[own], abs=5e-5)
            rank = got.index(own) + 1 if own in got else None
            assert cross.counterpart["rank"] == rank


def test_the_composed_estimate_is_the_mean_of_b_rows_of_b_tokenizer_ids(minilm, copies,
                                                                       permutation, vocab):
    from tokenizers import Tokenizer

    b, rows_b, folder = copies["noisy"]
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    units_b = ref.unit(b_by_id(rows_b, permutation).astype(np.float64))
    mean_b = units_b.mean(axis=0)  # any centre: the estimate is checked against the formula
    seen = 0
    for token_id in (12000, 15517, 20000, 25080, 29000):
        word = vocab[token_id]
        text = word[2:] if word.startswith("##") else " " + word  # the matching rule's text
        found = composition.pieces(minilm.view, b.view, token_id)
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if tokenizer.token_to_id("[UNK]") in ids:
            assert found is None
            continue
        assert found == (text, ids)
        by_hand = units_b[ids].mean(axis=0) - mean_b
        np.testing.assert_allclose(composition.estimate(b.view, ids, mean_b),
                                   by_hand / np.linalg.norm(by_hand), atol=1e-6)
        seen += 1
    assert seen >= 3


def test_composed_cosines_are_a_per_token_loop(minilm, copies, weights, pairs, permutation,
                                               compared):
    from tokenizers import Tokenizer

    b, rows_b, folder = copies["noisy"]
    result = minilm.align(b, refine=0, top=0, composed=5)
    mean_a, mean_b, w = by_hand_map(weights, rows_b, pairs)
    units_b = ref.unit(b_by_id(rows_b, permutation).astype(np.float64))
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    unknown = tokenizer.token_to_id("[UNK]")
    vocab = ref.minilm_vocab()

    def cosine(token_id):
        word = vocab[token_id]
        text = word[2:] if word.startswith("##") else " " + word
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        if not ids or unknown in ids:
            return None
        x = ref.unit(ref.unit(weights[token_id][None]) - mean_a)[0]
        mapped = ref.unit((x @ w)[None])[0]
        estimate = units_b[ids].mean(axis=0) - mean_b
        return float(mapped @ estimate / np.linalg.norm(estimate)), len(ids)

    lacking = compared[compared >= SUBSET]
    loop = {t: cosine(t) for t in lacking.tolist()}
    cosines = np.asarray([c for c, _ in filter(None, loop.values())])
    summary = result.composed
    assert summary.unmatched == lacking.size
    assert summary.skipped == sum(v is None for v in loop.values())
    assert summary.composed.count == cosines.size
    assert summary.composed.mean == pytest.approx(cosines.mean(), abs=1e-5)
    q = np.quantile(cosines, [0.25, 0.5, 0.75])
    assert [summary.composed.q1, summary.composed.median, summary.composed.q3] == pytest.approx(
        q.tolist(), abs=1e-4)
    worst = sorted((c for c, _ in filter(None, loop.values())))[:5]
    np.testing.assert_allclose([t.cosine for t in summary.tokens], worst, atol=1e-5)
    for t in summary.tokens:
        assert t.cosine == pytest.approx(loop[t.id_a][0], abs=1e-5)
    # The baseline: the same measure on the held-out matched tokens.
    _, test_at = ref.split(pairs.size, SHARE, 0)
    held = [cosine(t) for t in pairs[test_at].tolist()]
    base = np.asarray([c for c, _ in filter(None, held)])
    assert summary.baseline.count == base.size
    assert summary.baseline.mean == pytest.approx(base.mean(), abs=1e-5)
    assert summary.baseline_single == sum(1 for h in held if h is not None and h[1] == 1)
    assert summary.baseline.mean > summary.composed.mean  # for this pair: far apart


# --- the command --------------------------------------------------------------------------------


def base_args(minilm_dir, copies, module_cache, name="noisy"):
    return ["--model", minilm_dir, "--in", copies[name][2], "--cache-dir", module_cache]


def test_cli_json_tsv_and_table(minilm, minilm_dir, copies, module_cache):
    b = copies["noisy"][0]
    args = ["neighbors", "king", "tokenization", *base_args(minilm_dir, copies, module_cache)]
    first = cli(*args, "--top", "5", "--format", "json")
    assert first.exit_code == 0, first.stderr
    data = json.loads(first.stdout)
    api = minilm.neighbors_in(b, ["king", "tokenization"], k=5)
    assert [[n["id"] for n in d["neighbors"]] for d in data] == [
        [n.id for n in c.listed.neighbors] for c in api
    ]
    king, tok = data
    assert king["counterpart"]["rank"] == api[0].counterpart["rank"]
    assert tok["counterpart"] is None and tok["tokens"] == ["token", "##ization"]
    assert king["alignment"]["cached"] is False and king["alignment"]["refine"] == 1
    again = json.loads(cli(*args, "--top", "5", "--format", "json").stdout)
    assert again[0]["alignment"]["cached"] is True  # the map fitted once, then read
    assert [d["neighbors"] for d in again] == [d["neighbors"] for d in data]
    assert king["a"]["model"] == minilm.model and king["b"]["vocab_size"] == b.vocab_size
    tsv = cli(*args, "--top", "3", "--format", "tsv").stdout.splitlines()
    assert tsv[0].split("\t") == ["query", "query_id", "rank", "id", "token", "similarity"]
    assert len(tsv) == 7 and tsv[1].split("\t")[0] == "king"
    table = cli(*args, "--top", "3")
    assert table.exit_code == 0, table.stderr
    assert "Neighbours in B of A's" in table.stdout and "B's own token" in table.stdout
    assert "B has no single token" in table.stdout


def test_cli_queries_file_reports_a_bad_line_and_answers_the_rest(minilm_dir, copies,
                                                                  module_cache, tmp_path):
    lines = tmp_path / "q.txt"
    lines.write_text("king\n\n#999999\n walking\n", encoding="utf-8")
    result = cli("neighbors", "--queries", lines, *base_args(minilm_dir, copies, module_cache),
                 "--top", "2", "--format", "json")
    assert result.exit_code != 0
    assert "line 2" in result.stderr and "line 3" in result.stderr
    assert [d["text"] for d in json.loads(result.stdout)] == ["king", " walking"]


def test_bad_input_is_one_line(minilm_dir, copies, module_cache, tmp_path):
    args = base_args(minilm_dir, copies, module_cache)
    for extra, fragment in (
        (["king", "--score", "dot"], "cosine"),
        (["king", "--metric", "csls"], "cosine"),
        (["king", "--plot", str(tmp_path / "p.png")], "--plot"),
        (["king", "--exclude-query"], "--exclude-query"),
        (["#999999"], "999999"),
    ):
        assert_one_line_error(cli("neighbors", *extra, *args), 2, fragment)
    missing = cli("neighbors", "king", "--model", minilm_dir, "--in", tmp_path / "nowhere",
                  "--cache-dir", module_cache)
    assert missing.exit_code != 0
    assert_one_line_error(missing, missing.exit_code, "nowhere")


def test_align_reports_composed_tokens(minilm_dir, copies, module_cache):
    args = ["align", "--model", minilm_dir, "--against", copies["rotated"][2], "--refine", "0",
            "--cache-dir", module_cache, "--top", "0"]
    data = json.loads(cli(*args, "--composed", "3", "--format", "json").stdout)
    assert len(data["composed"]["tokens"]) == 3
    assert data["composed"]["unmatched"] == data["matching"]["unmatched_a"]
    table = cli(*args, "--composed", "2").stdout
    assert "Composed tokens" in table and "Least agreeing composed tokens" in table


def test_a_cached_in_query_imports_no_heavy_library(minilm_dir, copies, module_cache):
    args = ["neighbors", "king", *[str(a) for a in base_args(minilm_dir, copies, module_cache)]]
    assert cli(*args).exit_code == 0  # the map fitted and kept
    heavy = ["torch", "transformers", "pandas", "pyarrow", "umap", "numba"]
    assert heavy_imports(args, heavy) == []


def test_the_shell_reads_a_line_in_another_model(minilm, copies, module_cache, capsys):
    from tokneigh.cli.shell_output import ShellFormat
    from tokneigh.cli.shell_session import Shell

    b, _, folder = copies["rotated"]

    def loader(name, kind, metric="cosine"):
        return tokneigh.load(name, embeddings=kind, metric=metric, cache_dir=module_cache)

    sh = Shell(minilm, top=4, output=ShellFormat.json, interactive=False, loader=loader)
    for line in (f":in {folder}  walking", f":in {folder} tokenization", ":in", f":in {folder}"):
        assert sh.run_line(line)
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    api = minilm.neighbors_in(b, [" walking", "tokenization"], k=4,
                              filters=tokneigh.Filters(skip_special=True))
    assert out[0]["command"] == "in" and out[0]["text"] == " walking"  # the space kept
    assert [[n["id"] for n in o["neighbors"]] for o in out[:2]] == [
        [n.id for n in c.listed.neighbors] for c in api
    ]
    assert out[2]["error"].startswith("expected :in NAME TEXT") and "error" in out[3]


def test_the_lists_as_a_data_frame_and_their_reprs(minilm, copies):
    b = copies["noisy"][0]
    lists = tokneigh.results.CrossNeighborLists(minilm.neighbors_in(b, ["king", "#12000"], k=3))
    frame = lists.to_pandas()
    assert frame["id"].tolist() == [n.id for c in lists.lists for n in c.listed.neighbors]
    assert frame["query_id"].tolist()[3:] == [12000] * 3
    assert "CrossNeighborList" in repr(lists.lists[0]) and "<table" in lists._repr_html_()
