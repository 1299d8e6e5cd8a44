"""`tokneigh vocab` and ``emb.vocabulary_table()`` (issue 22, item 4): every row of the matrix
with its id, token, label, special, unusable, reachable, norm and padding.

Each row is checked against a reference written here: a per-row loop over the tokenizer
(``tokenizers`` on tokenizer.json, GPT-2's byte table from transformers' conventions, through
tests/explore_refs.py) and the raw matrix read from the safetensors file, not through tokneigh's
codec, cache or scan. The files are read back with pyarrow and DuckDB."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from explore_refs import Reference, _byte_decoder
from frames_helpers import (
    HOSTILE,
    INF_ROW,
    NAN_ROW,
    PADDING,
    ZERO_ROW,
    assert_frame,
    contract,
    make_hostile_checkpoint,
)
from helpers import assert_one_line_error, cli

import tokneigh
from tokneigh.analyses.filters import Filters

SHARED_CACHE = True
COLUMNS = ["id", "token", "label", "special", "unusable", "reachable", "norm", "padding"]
KINDS = {"id": "int", "token": "text", "label": "text", "special": "bool", "unusable": "bool",
         "reachable": "bool", "norm": "float", "padding": "bool"}  # fmt: skip


def _escaped(data: bytes) -> str:
    """A byte fragment as tokneigh documents it: printable ASCII as itself, other bytes \\xNN."""
    return "".join(chr(b) if 0x20 <= b < 0x7F and b != 0x5C else f"\\x{b:02x}" for b in data)


def reference_rows(folder: Path) -> list[dict]:
    """Every row of the matrix, one at a time, from the tokenizer and the raw weights."""
    ref = Reference(folder)
    decoder = _byte_decoder()
    rows = []
    for i, row in enumerate(ref.raw):
        padding = i >= ref.size
        token: str | None = None
        fragment = False
        if not padding:
            raw = ref.tokenizer.id_to_token(i)
            if i in ref.special_added or not ref.byte_level:
                token = raw
            else:
                data = bytes(decoder[ch] for ch in raw)
                try:
                    token = data.decode("utf-8")
                except UnicodeDecodeError:
                    token, fragment = _escaped(data), True
        finite = bool(np.isfinite(row).all())
        norm = math.sqrt(sum(float(v) * float(v) for v in row)) if finite else None
        reachable = (
            not padding
            and not fragment
            and bool(token)
            and i in ref.tokenizer.encode(token, add_special_tokens=False).ids
        )
        rows.append({
            "id": i, "token": token, "special": ref.is_special(i),
            "unusable": not finite or norm == 0, "reachable": reachable, "norm": norm,
            "padding": padding,
        })  # fmt: skip
    return rows


def assert_rows(got: list[dict], want: list[dict]) -> None:
    """Rows equal the reference's; norms to float32 precision (the cache keeps float32)."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert list(g) == COLUMNS, list(g)
        for key in ("id", "token", "special", "unusable", "reachable", "padding"):
            assert g[key] == w[key] and type(g[key]) is type(w[key]), (key, g, w)
        if w["norm"] is None:
            assert g["norm"] is None, (g, w)
        else:
            assert g["norm"] == pytest.approx(w["norm"], rel=1e-6, abs=1e-6), (g, w)


def labels_of_the_neighbor_lists(emb: tokneigh.Embeddings) -> dict[int, str]:
    """The label each ranked row has in a neighbour table (every usable row, specials too)."""
    listed = emb.neighbors(0 if 0 not in emb.unusable else 1, k=emb.vocab_size, filters=Filters())
    return {n.id: n.label for n in listed.neighbors}


@pytest.fixture(scope="module")
def hostile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_hostile_checkpoint(tmp_path_factory.mktemp("hostile") / "ckpt")


@pytest.fixture(scope="module")
def hostile(hostile_dir: Path) -> tokneigh.Embeddings:
    return tokneigh.load(str(hostile_dir))


# --- the table -----------------------------------------------------------------------------


def test_every_gpt2_row_equals_the_reference(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    table = emb.vocabulary_table()
    data = contract(table)
    assert_rows(data["tokens"], reference_rows(gpt2_dir))
    assert (data["vocab_size"], data["tokenizer_size"], data["dim"]) == (50257, 50257, 32)
    labels = labels_of_the_neighbor_lists(emb)
    assert len(labels) == 50257 - 2  # rows 7 and 11 are zero
    assert all(labels[r["id"]] == r["label"] for r in data["tokens"] if r["id"] in labels)
    tokens = {r["token"] for r in data["tokens"]}
    assert set(HOSTILE) <= tokens and any(t.startswith("\\x") for t in tokens)
    assert [r["id"] for r in data["tokens"] if r["unusable"]] == [7, 11]


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # the reference
def test_padding_nan_infinite_and_zero_rows(hostile, hostile_dir):
    table = hostile.vocabulary_table()
    data = contract(table)
    rows = data["tokens"]
    assert_rows(rows, reference_rows(hostile_dir))
    labels = labels_of_the_neighbor_lists(hostile)
    assert all(labels[r["id"]] == r["label"] for r in rows if not r["unusable"])
    size = data["tokenizer_size"]
    assert data["vocab_size"] == size + PADDING
    padding = rows[size:]
    assert all(r["padding"] and r["token"] is None and r["special"] for r in padding)
    assert [r["label"] for r in padding] == [f"<padding #{i}>" for i in range(size, size + 3)]
    assert rows[ZERO_ROW]["unusable"] and rows[ZERO_ROW]["norm"] == 0.0
    for i in (NAN_ROW, INF_ROW):
        assert rows[i]["unusable"] and rows[i]["norm"] is None  # never NaN, never 0
    assert "None" in {r["token"] for r in rows}  # the token "None", not a missing one


def test_to_pandas_equals_the_json_row_for_row(hostile):
    table = hostile.vocabulary_table()
    frame = table.to_pandas()
    assert_frame(frame, contract(table)["tokens"], KINDS)
    assert frame["token"].isna().sum() == PADDING
    assert frame["norm"].isna().sum() == 2


def test_repr_and_table_show_counts_and_the_first_rows(hostile):
    table = hostile.vocabulary_table()
    text = repr(table)
    assert len(text) < 300 and "rows=" in text and "padding=3" in text, text
    [shown] = table.human()
    assert len(shown.rows) == 20 and [r[0] for r in shown.rows] == [str(i) for i in range(20)]
    assert "the first 20 of" in shown.subtitle[1]
    table.shown = 3
    assert len(table.human()[0].rows) == 3
    assert "<table" in table._repr_html_()


# --- the command ---------------------------------------------------------------------------


def _stdout(*args: object) -> str:
    result = cli("vocab", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes.decode("utf-8")


def test_json_tsv_and_csv_hold_every_row(hostile, hostile_dir, tmp_path):
    want = contract(hostile.vocabulary_table())
    data = json.loads(_stdout("--format", "json", "--model", hostile_dir))
    assert data == want
    import pandas

    text = _stdout("--format", "csv", "--model", hostile_dir)
    read = {"keep_default_na": False, "na_values": [""], "dtype": {"token": str, "label": str}}
    frame = pandas.read_csv(io.StringIO(text, newline=""), **read)
    assert list(frame.columns) == COLUMNS and len(frame) == want["vocab_size"]
    for got, row in zip(frame.itertuples(index=False), want["tokens"]):
        token = None if isinstance(got.token, float) else got.token  # an empty cell: NaN
        assert (got.id, token, got.label) == (row["id"], row["token"], row["label"])
        assert bool(got.reachable) is row["reachable"] and bool(got.padding) is row["padding"]
        assert (math.isnan(got.norm) and row["norm"] is None) or got.norm == row["norm"]
    tsv = _stdout("--format", "tsv", "--model", hostile_dir)
    assert tsv.splitlines()[0].split("\t") == COLUMNS and "nan" not in tsv.split("\t")[6::7]
    # --output writes exactly what stdout shows, in the format the extension names
    for fmt, printed in (("json", None), ("csv", text), ("tsv", tsv)):
        path = tmp_path / f"vocab.{fmt}"
        result = cli("vocab", "--output", path, "--model", hostile_dir)
        assert result.exit_code == 0 and result.stdout == "", result.stderr
        written = path.read_bytes().decode("utf-8")
        if printed is None:
            assert json.loads(written) == want
        else:
            assert written == printed


def test_the_table_shows_the_first_top_rows(hostile_dir):
    out = " ".join(_stdout("--model", hostile_dir).split())  # the title wraps at 80 columns
    assert "the first 20 of 318 rows" in out and "3 padding rows past the tokenizer" in out
    out = _stdout("--top", "2", "--model", hostile_dir)
    assert "the first 2 of 318 rows" in out and '"!"' in out and '"\\""' not in out


def test_parquet_read_back_with_pyarrow_and_duckdb(hostile, hostile_dir, tmp_path):
    import duckdb
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "vocab.parquet"
    result = cli("vocab", "--format", "parquet", "--output", path, "--model", hostile_dir)
    assert result.exit_code == 0, result.stderr
    assert f"wrote 318 rows to {path}" in result.stderr
    want = contract(hostile.vocabulary_table())
    table = pq.read_table(path)
    types = [pa.int64(), pa.string(), pa.string(), pa.bool_(), pa.bool_(), pa.bool_(),
             pa.float64(), pa.bool_()]  # fmt: skip
    assert table.column_names == COLUMNS
    assert [f.type for f in table.schema] == types
    assert table.to_pylist() == want["tokens"]
    meta = {k.decode(): v.decode() for k, v in table.schema.metadata.items()}
    assert meta.pop("created")
    assert meta == {"model": hostile.model, "source": "local", "embeddings": "input",
                    "vocab_size": "318", "dim": "16",
                    "tokneigh_version": tokneigh.__version__}  # fmt: skip
    rows = duckdb.sql(f"SELECT * FROM read_parquet('{path}') ORDER BY id").fetchall()
    assert rows == [tuple(r.values()) for r in want["tokens"]]
    [(padding, nulls)] = duckdb.sql(
        f"SELECT count(*) FILTER (WHERE padding), count(*) FILTER (WHERE norm IS NULL) "
        f"FROM '{path}'"
    ).fetchall()
    assert (padding, nulls) == (PADDING, 2)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--format", "parquet"], "give --output FILE"),
        (["--format", "json", "--top", "3"], "--top limits the table"),
        (["--output", "{tmp}/v.csv", "--top", "3"], "--top limits the table"),
        (["--format", "table", "--output", "{tmp}/v.csv"], "not the table"),
        (["--output", "{tmp}/v.txt"], "must end in .json, .tsv, .csv, .parquet"),
        (["--output", "{tmp}/missing/v.parquet"], "does not exist"),
        (["--format", "csv", "--output", "{tmp}"], "is a folder"),
        (["--top", "0"], "--top"),
        (["--format", "xlsx"], "--format"),
    ],
)
def test_bad_requests_are_one_line_errors(args, fragment, hostile_dir, tmp_path):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = cli("vocab", *args, "--model", hostile_dir)
    assert_one_line_error(result, 2, fragment)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a scratch file
