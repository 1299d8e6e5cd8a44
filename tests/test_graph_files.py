"""Self-describing graph files (issue 22, case 5): `tokneigh graph --output` writes the tokens
and the facts of the graph (model, source, embeddings, metric, k, include_special, vocab size,
dim, tokneigh version, creation time) into each format, read back here with pyarrow, DuckDB,
``np.load(allow_pickle=False)`` and ``json``."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from helpers import cli

import tokneigh

SHARED_CACHE = True
K = 3


@pytest.fixture(scope="module")
def padded_dir(tiny_dir, tmp_path_factory):
    """The tiny checkpoint with 4 padding rows past its tokenizer (as Qwen2 and Phi pad): with
    --include-special they are in the graph, rows with no token (null in the JSON contract)."""
    import shutil

    from safetensors.numpy import load_file, save_file

    folder = tmp_path_factory.mktemp("padded") / "ckpt"
    shutil.copytree(tiny_dir, folder)
    matrix = load_file(str(folder / "model.safetensors"))["wte.weight"]
    extra = np.random.default_rng(1).standard_normal((4, matrix.shape[1])).astype(np.float32)
    matrix = np.vstack([matrix, extra])
    save_file({"wte.weight": matrix}, str(folder / "model.safetensors"), metadata={"format": "pt"})
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = matrix.shape[0]
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture(scope="module")
def emb(padded_dir, module_cache):
    return tokneigh.load(str(padded_dir), cache_dir=module_cache)


@pytest.fixture(scope="module")
def graph(emb):
    return emb.graph(K, include_special=True)


@pytest.fixture(scope="module")
def written(padded_dir, emb, tmp_path_factory):
    """Each format written once by the CLI, with the time span the writes took."""
    folder = tmp_path_factory.mktemp("graphs")
    before = datetime.now(timezone.utc).replace(microsecond=0)
    for suffix in ("parquet", "npz", "jsonl"):
        result = cli(
            "graph", "--top", K, "--include-special", "--output", folder / f"knn.{suffix}",
            "--model", padded_dir,
        )
        assert result.exit_code == 0, result.stderr
    after = datetime.now(timezone.utc)
    return folder, before, after


def facts(emb) -> dict:
    return {
        "model": emb.model,
        "source": "local",
        "embeddings": "input",
        "metric": "cosine",
        "k": K,
        "include_special": True,
        "vocab_size": emb.vocab_size,
        "dim": emb.dim,
        "tokneigh_version": tokneigh.__version__,
    }


def check_created(text: str, written) -> None:
    _, before, after = written
    created = datetime.fromisoformat(text)
    assert created.utcoffset() == timedelta(0)
    assert before <= created <= after


def contract_tokens(padded_dir, token_id: int) -> tuple[str | None, list[str | None]]:
    """The `token` fields of `neighbors --id N --format json`: the query's own (rank 1) and
    its K nearest."""
    result = cli(
        "neighbors", "--id", token_id, "--top", K + 1, "--include-special", "--format", "json",
        "--model", padded_dir,
    )
    assert result.exit_code == 0, result.stderr
    [listed] = json.loads(result.stdout)
    own, *others = listed["neighbors"]
    assert own["id"] == token_id
    return own["token"], [n["token"] for n in others]


# A token with a leading space, a quote, a byte fragment, a padding row (no token).
def sample_ids(emb, graph) -> list[int]:
    ids = graph.ids.tolist()
    picks = [ids[1], next(i for i in ids if (emb.token_text(i) or "").startswith(" "))]
    picks.append(next(i for i in ids if (emb.token_text(i) or "").startswith("\\x")))
    picks.append(next(i for i in ids if emb.token_text(i) is None))
    return picks


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_has_dictionary_encoded_token_columns_equal_to_the_json_contract(
    written, emb, graph, padded_dir
):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = written[0] / "knn.parquet"
    table = pq.read_table(path)
    # the columns of before, unchanged and first; then the tokens
    assert table.column_names == ["id", "rank", "neighbor_id", "similarity", "token",
                                  "neighbor_token"]
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("neighbor_id").type == pa.int64()
    assert table.schema.field("similarity").type == pa.float64()
    for name in ("token", "neighbor_token"):
        kind = table.schema.field(name).type
        assert pa.types.is_dictionary(kind) and kind.value_type == pa.string(), kind
    data = table.to_pydict()
    assert data["id"] == np.repeat(graph.ids, K).tolist()
    assert data["neighbor_id"] == graph.neighbors.ravel().tolist()
    assert data["token"] == [emb.token_text(i) for i in data["id"]]
    assert data["neighbor_token"] == [emb.token_text(i) for i in data["neighbor_id"]]
    assert None in data["token"] and None in data["neighbor_token"]  # the padding rows
    for token_id in sample_ids(emb, graph):
        own, others = contract_tokens(padded_dir, token_id)
        rows = [r for r, i in enumerate(data["id"]) if i == token_id]
        assert [data["token"][r] for r in rows] == [own] * K
        assert [data["neighbor_token"][r] for r in rows] == others
    # dictionary-encoded in the file itself (what keeps it small), not only the Arrow type: a
    # writer that falls back to plain strings stores 4 bytes + the text of every value
    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 1
    for column, name in ((4, "token"), (5, "neighbor_token")):
        chunk = meta.row_group(0).column(column)
        plain = sum(4 + len(t.encode()) for t in data[name] if t is not None)
        assert chunk.has_dictionary_page and "RLE_DICTIONARY" in chunk.encodings
        assert chunk.total_uncompressed_size < plain, (chunk, plain)


def test_parquet_key_value_metadata_states_the_facts(written, emb):
    import pyarrow.parquet as pq

    stored = {
        k.decode(): v.decode()
        for k, v in pq.read_schema(written[0] / "knn.parquet").metadata.items()
        if not k.startswith(b"ARROW:")
    }
    check_created(stored.pop("created"), written)
    text = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in facts(emb).items()}
    assert stored == text  # k "3", include_special "true", vocab_size "324"


def test_duckdb_reads_the_tokens_and_the_metadata(written, emb, graph):
    import duckdb  # the test extra has it: a missing one fails, not skips

    path = written[0] / "knn.parquet"
    columns = duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
    assert [(c[0], c[1]) for c in columns] == [
        ("id", "BIGINT"), ("rank", "INTEGER"), ("neighbor_id", "BIGINT"),
        ("similarity", "DOUBLE"), ("token", "VARCHAR"), ("neighbor_token", "VARCHAR"),
    ]
    token_id = sample_ids(emb, graph)[1]  # a token with a leading space
    rows = duckdb.sql(
        f"SELECT token, rank, neighbor_token, neighbor_id, similarity FROM '{path}' "
        f"WHERE id = {token_id} ORDER BY rank"
    ).fetchall()
    listed = emb.neighbors(int(token_id), K + 1).neighbors[1:]
    assert rows == [
        (emb.token_text(token_id), n.rank - 1, n.token, n.id, n.similarity) for n in listed
    ]
    padding = int(np.count_nonzero([emb.token_text(i) is None for i in graph.ids]))
    [(nulls,)] = duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE token IS NULL").fetchall()
    assert padding == 4 and nulls == padding * K
    kv = dict(
        duckdb.sql(
            f"SELECT decode(key), decode(value) FROM parquet_kv_metadata('{path}') "
            "WHERE NOT starts_with(decode(key), 'ARROW:')"
        ).fetchall()
    )
    check_created(kv.pop("created"), written)
    assert kv == {k: v if isinstance(v, str) else json.dumps(v) for k, v in facts(emb).items()}


# --- npz and JSONL ----------------------------------------------------------------------------


def test_npz_carries_the_facts_and_the_tokens_without_pickle(written, emb, graph):
    with np.load(written[0] / "knn.npz", allow_pickle=False) as data:
        assert set(data.files) == {"ids", "neighbors", "similarities", "meta", "tokens"}
        assert np.array_equal(data["ids"], graph.ids)
        assert np.array_equal(data["neighbors"], graph.neighbors)
        assert np.array_equal(data["similarities"], graph.similarities)
        meta = json.loads(data["meta"].item())
        tokens = json.loads(data["tokens"].item())
    check_created(meta.pop("created"), written)
    assert meta == facts(emb)
    assert tokens == [emb.token_text(i) for i in graph.ids.tolist()]
    assert None in tokens


def test_jsonl_first_object_carries_the_facts_and_every_line_is_still_one_token(
    written, emb, graph
):
    text = (written[0] / "knn.jsonl").read_text("utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == graph.ids.size
    assert [line["id"] for line in lines] == graph.ids.tolist()
    assert all(set(line) == {"id", "token", "neighbors"} for line in lines[1:])
    assert set(lines[0]) == {"id", "token", "neighbors", "meta"}
    meta = lines[0]["meta"]
    check_created(meta.pop("created"), written)
    assert meta == facts(emb)
    assert [line["token"] for line in lines] == [emb.token_text(i) for i in graph.ids.tolist()]


def test_a_graph_without_special_tokens_says_so(tiny_dir, tmp_path):
    out = tmp_path / "knn.npz"
    result = cli("graph", "--top", 2, "--metric", "centered", "--output", out, "--model", tiny_dir)
    assert result.exit_code == 0, result.stderr
    with np.load(out, allow_pickle=False) as data:
        meta = json.loads(data["meta"].item())
        tokens = json.loads(data["tokens"].item())
    assert (meta["include_special"], meta["metric"], meta["k"]) == (False, "centered", 2)
    assert None not in tokens and len(tokens) == 317
