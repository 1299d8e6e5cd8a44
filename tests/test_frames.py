"""Data frames (issue 22, item 1): ``to_pandas()`` of every table result equals its JSON
contract row for row, with typed columns.

The reference is the JSON text itself (``json_text(result.to_json())`` parsed back), flattened
here into the rows each frame documents; every cell is compared with its type: ids int64
(Int64 where the JSON may hold null), scores float64 (NaN for null), tokens object holding
the very strings (``"nan"``, ``"None"`` and ``"007"`` stay strings, a missing token is None),
flags bool. The tokens come from GPT-2's real tokenizer and from a small model whose
vocabulary is made of such tokens (tests/frames_model.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from frames_helpers import HOSTILE, assert_frame, contract, make_hostile_checkpoint
from helpers import cli, heavy_imports

import tokneigh
from tokneigh import results
from tokneigh.analyses.filters import Filters
from tokneigh.errors import MissingDependencyError

SHARED_CACHE = True

NEIGHBOR = {"rank": "int", "id": "int", "token": "text", "similarity": "float"}
QUERY = {"query": "text", "query_id": "maybe_int"}


# --- the models ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2(gpt2_dir: Path) -> tokneigh.Embeddings:
    return tokneigh.load(str(gpt2_dir))


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hostile_checkpoint(tmp_path_factory.mktemp("hostile") / "ckpt")


@pytest.fixture(scope="module")
def hostile(hostile_dir: Path) -> tokneigh.Embeddings:
    return tokneigh.load(str(hostile_dir))


def _fragment(tokens: list) -> bool:
    return any(isinstance(t, str) and t.startswith("\\x") for t in tokens)


# --- neighbour lists ----------------------------------------------------------------------------


def test_a_neighbor_list_of_every_gpt2_token(gpt2):
    result = gpt2.neighbors("Mike", k=gpt2.vocab_size, filters=Filters())
    data = contract(result)
    records = [{"query": data["query"], "query_id": data["query_id"], **n}
               for n in data["neighbors"]]  # fmt: skip
    frame = result.to_pandas()
    assert_frame(frame, records, {**QUERY, **NEIGHBOR})
    tokens = frame["token"].tolist()
    assert set(HOSTILE) <= set(tokens) and _fragment(tokens)
    assert len(frame) == gpt2.vocab_size - 2  # the two zero rows never rank


def test_a_batch_repeats_each_query_on_its_rows(gpt2):
    queries = ['"', "nan", "null", 447, " Mike", "007", 'say "hi",\tyou']
    lists = gpt2.neighbors_many(queries, k=4)
    batch = results.NeighborLists(lists)
    records = [
        {"query": q["query"], "query_id": q["query_id"], **n}
        for q in contract(batch)
        for n in q["neighbors"]
    ]
    frame = batch.to_pandas()
    assert_frame(frame, records, {**QUERY, **NEIGHBOR})
    # Each query's rows carry its own text, or its id (and a null text) for an id query.
    for position, asked in enumerate(queries):
        rows = frame.iloc[4 * position : 4 * position + 4]
        if isinstance(asked, int):
            assert rows["query"].isna().all() and (rows["query_id"] == asked).all()
        else:
            assert (rows["query"] == asked).all() and rows["query_id"].isna().all()
    assert frame["query"].map(type).isin([str, type(None)]).all()


def test_dedupe_keeps_the_variants_of_the_json(gpt2):
    result = gpt2.neighbors(" Mike", k=5, filters=Filters(dedupe=True))
    data = contract(result)
    records = [{"query": data["query"], "query_id": data["query_id"], **n}
               for n in data["neighbors"]]  # fmt: skip
    assert_frame(result.to_pandas(), records, {**QUERY, **NEIGHBOR, "variants": "object"})
    assert any(n["variants"] for n in data["neighbors"])


def test_an_analogy_and_an_expression(gpt2):
    for result in (
        gpt2.analogy("man", "king", "nan", k=6),
        gpt2.most_similar(positive=['"', "null"], negative=["007"], k=6),
    ):
        assert_frame(result.to_pandas(), contract(result)["neighbors"], NEIGHBOR)


def test_a_map_repeats_the_query_and_its_point(gpt2):
    result = gpt2.map('"', k=6)
    data = contract(result)
    qx, qy = data["query_xy"]
    records = [
        {"query": data["query"], "query_id": data["query_id"], "query_x": qx, "query_y": qy, **n}
        for n in data["neighbors"]
    ]
    kinds = {**QUERY, "query_x": "float", "query_y": "float", **NEIGHBOR, "x": "float",
             "y": "float"}  # fmt: skip
    assert_frame(result.to_pandas(), records, kinds)


# --- tokens and comparisons ---------------------------------------------------------------------

TOKEN = {"position": "int", "id": "int", "token": "text", "label": "text", "unknown": "bool"}


def _token_records(item: dict) -> list[dict]:
    unknown = set(item.get("unknown", []))
    return [
        {"position": p, "id": i, "token": t, "label": label, "unknown": p in unknown}
        for p, (i, t, label) in enumerate(zip(item["ids"], item["tokens"], item["labels"]))
    ]


def test_tokenizations(gpt2):
    texts = ['He said "a,b"\tc', " nan null NA None", "caf\u00e9 \u2019", "007"]
    items = [gpt2.tokenize(t) for t in texts]
    one = items[2]
    assert_frame(one.to_pandas(), _token_records(contract(one)), TOKEN)
    batch = results.Tokenizations(items, [None] * len(items))
    records = [
        {"text_index": number, "text": item["text"], **row}
        for number, item in enumerate(contract(batch), start=1)
        for row in _token_records(item)
    ]
    frame = batch.to_pandas()
    assert_frame(frame, records, {"text_index": "int", "text": "text", **TOKEN})
    tokens = frame["token"].tolist()
    assert {'"', "\t", " nan", " null", " None", "007"} <= set(tokens) and _fragment(tokens)


def test_tokens_the_vocabulary_lacks_are_flagged():
    # BERT's WordPiece turns an emoji into [UNK]: the JSON lists its position as unknown.
    from checkpoints import minilm_folder

    emb = tokneigh.load(str(minilm_folder()))
    result = emb.tokenize("king \U0001f600 queen")
    data = contract(result)
    assert data["unknown"]
    frame = result.to_pandas()
    assert_frame(frame, _token_records(data), TOKEN)
    assert frame["unknown"].sum() == len(data["unknown"])


COMPARISON = {"a": "text", "a_id": "maybe_int", "b": "text", "b_id": "maybe_int",
              "metric": "text", "similarity": "float", "cosine": "float",
              "angle_degrees": "float", "pearson": "float", "norm_a": "float",
              "norm_b": "float", "rank_of_b": "int"}  # fmt: skip


@pytest.mark.parametrize("a, b", [('"', "null"), (447, "nan"), ("None", 198)])
def test_a_comparison_is_one_row(gpt2, a, b):
    result = gpt2.compare(a, b)
    data = contract(result)
    record = {"a": data["a"]["text"], "a_id": data["a"]["query_id"], "b": data["b"]["text"],
              "b_id": data["b"]["query_id"]}  # fmt: skip
    record |= {k: v for k, v in data.items() if k not in ("a", "b")}
    assert_frame(result.to_pandas(), [record], COMPARISON)


# --- the whole vocabulary -----------------------------------------------------------------------


def test_a_graph_is_one_row_per_token_and_rank_as_its_jsonl_file(hostile, hostile_dir, tmp_path):
    graph = hostile.graph(3, include_special=True)
    path = tmp_path / "knn.jsonl"
    done = cli("graph", "--k", 3, "--include-special", "--output", path, "--model", hostile_dir)
    assert done.exit_code == 0, done.stderr
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    records = [
        {"id": line["id"], "rank": n["rank"], "neighbor_id": n["id"],
         "similarity": n["similarity"], "token": line["token"], "neighbor_token": n["token"]}
        for line in lines
        for n in line["neighbors"]
    ]  # fmt: skip
    kinds = {"id": "int", "rank": "int", "neighbor_id": "int", "similarity": "float",
             "token": "text", "neighbor_token": "text"}  # fmt: skip
    frame = graph.to_pandas()
    assert_frame(frame, records, kinds)
    tokens = frame["token"].tolist()
    assert set(HOSTILE) <= set(tokens) and _fragment(tokens)
    assert None in tokens and "None" in tokens  # a padding row, and the token "None"


def test_hubness_scan_stats_and_diff(hostile):
    graph = hostile.graph(3)
    hubs = hostile.hubness(3, graph=graph, hubs=40)
    records = [{"rank": r, **h} for r, h in enumerate(contract(hubs)["hubs"], start=1)]
    kinds = {"rank": "int", "id": "int", "token": "text", "occurrences": "int"}
    assert_frame(hubs.to_pandas(), records, kinds)

    scan = hostile.scan("norm", top=hostile.vocab_size)
    kinds = {"rank": "int", "id": "int", "token": "text", "score": "float", "reachable": "bool",
             "special": "bool"}  # fmt: skip
    frame = scan.to_pandas()
    assert_frame(frame, contract(scan)["tokens"], kinds)
    assert set(HOSTILE) <= set(frame["token"]) and None in frame["token"].tolist()

    stats = hostile.stats(pairs=500)
    data = contract(stats)
    facts = [("tokens", data["tokens"]), ("anisotropy", data["anisotropy"]),
             ("sample_pairs", data["sample_pairs"]), ("seed", data["seed"])]  # fmt: skip
    facts += [(f"norm_{key}", value) for key, value in data["norms"].items()]
    facts += [(f"pc{i + 1}_variance", v) for i, v in enumerate(data["top_pc_variance"])]
    facts += [("hidden_rows", data["hidden_rows"]), ("special_rows", data["special_rows"])]
    frame = stats.to_pandas()
    records = [{"measure": m, "value": float(v)} for m, v in facts]
    assert_frame(frame, records, {"measure": "text", "value": "float"})
    assert frame.attrs == {"model": data["model"], "metric": data["metric"]}

    diff = hostile.diff(hostile.under("centered"), ["nan", "null", "Mike\u2019s"], sample=5, k=3)
    kinds = {"source": "text", "query": "text", "id": "maybe_int", "overlap": "float",
             "jaccard": "float", "spearman": "float"}  # fmt: skip
    frame = diff.to_pandas()
    assert_frame(frame, contract(diff)["items"], kinds)
    assert frame["id"].isna().any()  # "Mike’s" is several tokens: no id


def test_verify_is_one_row(gpt2):
    result = gpt2.verify("nan", k=5, repeats=1)
    frame = result.to_pandas()
    data = contract(result)
    assert list(frame.columns) == list(data)
    assert frame.loc[0, "top_k_loop"] == data["top_k_loop"]
    assert frame["query"].tolist() == ["nan"] and frame["query_id"].isna().all()


def test_every_result_with_rows_has_a_frame():
    for name in results.__all__:
        cls = getattr(results, name)
        if isinstance(cls, type) and hasattr(cls, "tsv"):
            assert callable(getattr(cls, "to_pandas", None)), name
            doc = cls.to_pandas.__doc__ or ""
            assert "row" in doc, (name, "to_pandas must say what a row is")


# --- pandas itself -----------------------------------------------------------------------------


def test_without_pandas_one_line_names_the_install(gpt2, monkeypatch):
    result = gpt2.neighbors("Mike", k=3)
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` raises ImportError
    with pytest.raises(MissingDependencyError) as caught:
        result.to_pandas()
    message = str(caught.value)
    assert "\n" not in message and "pip install pandas" in message, message


def test_a_cached_query_imports_neither_pandas_nor_pyarrow(gpt2_dir):
    model = ["--model", str(gpt2_dir)]
    heavy = ["pandas", "pyarrow", "torch", "transformers"]
    assert heavy_imports(["neighbors", "Mike", *model], heavy) == []
    assert heavy_imports(["neighbors", "Mike", "--format", "csv", *model], heavy) == []
    assert heavy_imports(["vocab", "--format", "json", *model], heavy) == []
