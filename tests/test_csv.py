"""``--format csv``: RFC 4180, read back exactly by Python's csv module and by pandas.

Every command that writes TSV writes CSV from the same header and rows. Each command's CSV is
read back three ways and compared: with ``csv.reader`` against the TSV unescaped (row for row),
against the JSON contract's values, and with the one documented ``pandas.read_csv`` call::

    pandas.read_csv(path, keep_default_na=False, na_values=[""], dtype=TEXT_COLUMNS)

which keeps every token a string (``nan``, ``null``, ``NA``, ``None``, ``007``) and reads an
empty cell (a missing value: JSON's null) as NaN.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import pytest
from helpers import cli, heavy_imports
from helpers_cache import make_tiny_checkpoint

# One cache for the module: each model is built once.
SHARED_CACHE = True

# The documented call (README, "Machine-readable output"): one argument set for every command.
# The columns that hold text (queries, tokens): without dtype, pandas reads a column whose
# every value looks like a number ("007", " 1999") as numbers. Absent columns are ignored.
TEXT_COLUMNS = {"query": str, "token": str, "a": str, "b": str, "variant_ids": str}
READ_CSV = {"keep_default_na": False, "na_values": [""], "dtype": TEXT_COLUMNS}

# Tokens that break a naive reader; every one is a GPT-2 token (checked below).
TRICKY = ['"', '",', "\t", "\n", "\r", " Mike", "nan", "null", "NA", "None", "NULL"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "ckpt"))


def _run(*args: object) -> str:
    result = cli(*args)
    assert result.exit_code == 0, result.stderr
    return result.stdout_bytes.decode("utf-8")  # .stdout would turn CRLF into LF


def _csv_rows(text: str) -> list[list[str]]:
    assert text.endswith("\r\n"), text[-20:]
    return list(csv.reader(io.StringIO(text, newline=""), strict=True))


_TSV_ESCAPE = re.compile(r"\\(.)")
_TSV_CHARS = {"\\": "\\", "t": "\t", "n": "\n", "r": "\r"}


def _tsv_rows(text: str) -> list[list[str]]:
    lines = text.split("\n")
    assert lines.pop() == ""
    return [
        [_TSV_ESCAPE.sub(lambda m: _TSV_CHARS[m.group(1)], cell) for cell in line.split("\t")]
        for line in lines
    ]


def _formats(*args: object) -> tuple[str, list[list[str]], object]:
    """(CSV text, its rows, the JSON) of one command, after checking CSV == TSV unescaped."""
    text = _run(*args, "--format", "csv")
    rows = _csv_rows(text)
    assert rows == _tsv_rows(_run(*args, "--format", "tsv"))
    return text, rows, json.loads(_run(*args, "--format", "json"))


def _same(cell: str, value: object) -> bool:
    """A CSV cell against a JSON value: null an empty cell, booleans true/false, numbers equal
    as numbers (orjson may spell a float differently), strings exactly."""
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == ("true" if value else "false")
    if isinstance(value, int):
        return int(cell) == value
    if isinstance(value, float):
        return float(cell) == value
    return cell == value


def _assert_rows(rows: list[list[str]], header: list[str], expected: list[list[object]]) -> None:
    assert rows[0] == header
    assert len(rows) - 1 == len(expected)
    for got, want in zip(rows[1:], expected):
        assert len(got) == len(want), (got, want)
        assert all(_same(c, v) for c, v in zip(got, want)), (got, want)


def _pandas(text: str, tmp_path: Path):
    import pandas  # the test extra has it: a missing pandas fails, never skips

    path = tmp_path / "out.csv"
    path.write_bytes(text.encode("utf-8"))
    return pandas.read_csv(path, **READ_CSV)


def _frame_equals(frame, header: list[str], expected: list[list[object]]) -> None:
    """The data frame read back holds the JSON values: null as NaN, the rest equal."""
    assert list(frame.columns) == header
    assert len(frame) == len(expected)
    for got, want in zip(frame.itertuples(index=False), expected):
        for g, w in zip(got, want):
            if w is None:
                assert isinstance(g, float) and math.isnan(g), (got, want)
            elif isinstance(w, bool):  # pandas reads true/false as booleans
                assert not isinstance(g, str) and bool(g) is w, (got, want)
            elif isinstance(w, int | float):
                assert not isinstance(g, str) and g == w, (got, want)
            else:
                assert isinstance(g, str) and g == w, (got, want)


# --- the writer -----------------------------------------------------------------------------


def test_write_csv_quotes_what_needs_quoting_and_nothing_else():
    from tokneigh.present.render import write_csv

    out = io.StringIO(newline="")
    cells = ['"', "a,b", "a\tb", "x\ny", "x\ry", " lead", "trail ", "nan", "", None, True, 0.5, 7]
    write_csv(["c"] * len(cells), [cells], out)
    assert out.getvalue() == (
        ",".join(["c"] * len(cells)) + "\r\n"
        + '"""","a,b",a\tb,"x\ny","x\ry", lead,trail ,nan,,,true,0.5,7\r\n'
    )  # fmt: skip
    [back] = _csv_rows(out.getvalue())[1:]
    assert back == ['"', "a,b", "a\tb", "x\ny", "x\ry", " lead", "trail ", "nan", "", "", "true",
                    "0.5", "7"]  # fmt: skip


# --- every command that writes TSV writes CSV -------------------------------------------------


def test_every_command_with_tsv_offers_csv():
    import typer.main

    from tokneigh.cli import app
    from tokneigh.cli.common import OutputFormat

    group = typer.main.get_command(app)
    ctx = group.make_context("tokneigh", ["--help"], resilient_parsing=True)
    commands = []
    for name in group.list_commands(ctx):  # click's lookup: the commands load on demand
        command = group.get_command(ctx, name)
        commands.append((name, command))
        commands += [(f"{name} {sub}", c) for sub, c in getattr(command, "commands", {}).items()]
    with_tsv = []
    for name, command in commands:
        for param in command.params:
            if "tsv" in (param.metavar or ""):  # the shared FormatOption (OutputFormat)
                with_tsv.append(name)
                # vocab adds a file format after them (table|json|tsv|csv|parquet)
                assert param.metavar.startswith("table|json|tsv|csv"), name
    assert [f.value for f in OutputFormat] == ["table", "json", "tsv", "csv"]
    assert {"neighbors", "tokenize", "compare", "analogy", "map", "graph", "hubness", "stats",
            "diff", "scan", "verify", "vocab", "cache list"} <= set(with_tsv), with_tsv  # fmt: skip


def test_the_csv_module_is_imported_only_for_csv(gpt2_dir):
    model = ["--model", str(gpt2_dir)]
    assert cli("neighbors", "Mike", *model).exit_code == 0  # cached before the probes
    assert heavy_imports(["neighbors", "Mike", "-f", "tsv", *model], ["csv", "rich"]) == []
    assert heavy_imports(["neighbors", "Mike", "-f", "csv", *model], ["csv", "rich"]) == ["csv"]


# --- neighbors, on every token of GPT-2's vocabulary --------------------------------------------


def test_neighbors_csv_reads_back_every_gpt2_token(gpt2_dir, tmp_path):
    args = ["neighbors", "Mike", "--top", "60000", "--include-special", "-m", gpt2_dir]
    text, rows, data = _formats(*args)
    [item] = data
    tokens = [n["token"] for n in item["neighbors"]]
    assert set(TRICKY) <= set(tokens)
    assert any("\\x" in t for t in tokens)  # byte fragments, such as id 447's "\xe2\x80"
    header = ["query", "query_id", "rank", "id", "token", "similarity"]
    expected = [
        [item["query"], item["query_id"], n["rank"], n["id"], n["token"], n["similarity"]]
        for n in item["neighbors"]
    ]
    _assert_rows(rows, header, expected)
    frame = _pandas(text, tmp_path)
    assert frame["token"].tolist() == tokens  # "nan", "null", "NA" stay strings
    assert frame["id"].dtype == "int64" and frame["similarity"].dtype == "float64"
    assert frame["similarity"].tolist() == [n["similarity"] for n in item["neighbors"]]
    assert frame["query_id"].isna().all() and (frame["query"] == "Mike").all()


def test_neighbors_csv_of_text_and_id_queries(gpt2_dir, tmp_path):
    # The queries themselves are tricky texts, and --id queries (tab, newline, a fragment)
    # leave the query column empty: the missing value.
    queries = ['"', '",', "nan", "null", "NA", " Mike", 'say "hi",\tyou']
    args = ["neighbors", *queries, "--id", "197", "--id", "198", "--id", "447", "-k", "4"]
    text, rows, data = _formats(*args, "-m", gpt2_dir)
    header = ["query", "query_id", "rank", "id", "token", "similarity"]
    expected = [
        [q["query"], q["query_id"], n["rank"], n["id"], n["token"], n["similarity"]]
        for q in data
        for n in q["neighbors"]
    ]
    _assert_rows(rows, header, expected)
    assert [q["query"] for q in data] == [*queries, None, None, None]
    frame = _pandas(text, tmp_path)
    _frame_equals(frame, header, expected)
    assert frame["query"].isna().sum() == 12 and frame["query_id"].notna().sum() == 12


def test_neighbors_dedupe_variant_ids_are_one_quoted_cell(gpt2_dir):
    args = ["neighbors", " Mike", "--dedupe", "-k", "5", "-m", gpt2_dir]
    _, rows, data = _formats(*args)
    assert rows[0][-1] == "variant_ids"
    expected = [",".join(str(v["id"]) for v in n["variants"]) for n in data[0]["neighbors"]]
    assert [r[-1] for r in rows[1:]] == expected
    assert any("," in ids for ids in expected)


# --- the other commands ---------------------------------------------------------------------


def test_tokenize_csv(gpt2_dir, tmp_path):
    texts = ['He said "a,b"\tc\r\nd', " nan null NA None", "caf\u00e9 \u2019", "x"]
    text, rows, data = _formats("tokenize", *texts, "-m", gpt2_dir)
    expected = [
        [number, pos, i, tok]
        for number, item in enumerate(data, start=1)
        for pos, (i, tok) in enumerate(zip(item["ids"], item["tokens"]))
    ]
    _assert_rows(rows, ["text_index", "position", "id", "token"], expected)
    tokens = {r[3] for r in rows[1:]}
    assert {'"', ",", "\t", "\r", "\n", " nan", " null", " NA", " None"} <= tokens
    assert any("\\x" in t for t in tokens)  # the curly quote's byte fragments
    _frame_equals(_pandas(text, tmp_path), ["text_index", "position", "id", "token"], expected)


def test_compare_csv(gpt2_dir, tmp_path):
    text, rows, data = _formats("compare", '",', "null", "-m", gpt2_dir)
    header = ["a", "b", "cosine", "angle_degrees", "pearson", "norm_a", "norm_b", "rank_of_b"]
    expected = [[data["a"]["text"], data["b"]["text"], *[data[k] for k in header[2:]]]]
    _assert_rows(rows, header, expected)
    _frame_equals(_pandas(text, tmp_path), header, expected)


def test_analogy_csv(gpt2_dir, tmp_path):
    text, rows, data = _formats("analogy", "man", "king", "nan", "-k", "6", "-m", gpt2_dir)
    expected = [[n["rank"], n["id"], n["token"], n["similarity"]] for n in data["neighbors"]]
    _assert_rows(rows, ["rank", "id", "token", "similarity"], expected)
    _frame_equals(_pandas(text, tmp_path), ["rank", "id", "token", "similarity"], expected)


def test_map_csv(gpt2_dir, tmp_path):
    plot = tmp_path / "m.svg"
    text, rows, data = _formats("map", '"', "--top", "6", "--plot", plot, "-m", gpt2_dir)
    header = ["rank", "id", "token", "similarity", "x", "y"]
    expected = [[0, None, '"', 1.0, *data["query_xy"]]]
    expected += [[n["rank"], n["id"], n["token"], n["similarity"], n["x"], n["y"]]
                 for n in data["neighbors"]]  # fmt: skip
    _assert_rows(rows, header, expected)
    _frame_equals(_pandas(text, tmp_path), header, expected)


def test_hubness_csv(tiny, tmp_path):
    text, rows, data = _formats("hubness", "--top", "3", "--hubs", "8", "-m", tiny)
    expected = [[r, h["id"], h["token"], h["occurrences"]] for r, h in
                enumerate(data["hubs"], start=1)]  # fmt: skip
    _assert_rows(rows, ["rank", "id", "token", "occurrences"], expected)
    _frame_equals(_pandas(text, tmp_path), ["rank", "id", "token", "occurrences"], expected)


def test_stats_csv(tiny, tmp_path):
    text, rows, data = _formats("stats", "--pairs", "500", "-m", tiny)
    expected = [["anisotropy", data["anisotropy"]], ["sample_pairs", data["sample_pairs"]]]
    expected += [[f"norm_{k}", v] for k, v in data["norms"].items()]
    expected += [[f"pc{i}_variance", v] for i, v in enumerate(data["top_pc_variance"], start=1)]
    expected += [["hidden_rows", data["hidden_rows"]], ["special_rows", data["special_rows"]]]
    _assert_rows(rows, ["measure", "value"], expected)
    frame = _pandas(text, tmp_path)
    assert frame["measure"].tolist() == [e[0] for e in expected]
    assert frame["value"].tolist() == [float(e[1]) for e in expected]


def test_scan_csv(tiny, tmp_path):
    text, rows, data = _formats("scan", "--top", "8", "-m", tiny)
    header = ["rank", "id", "token", "score", "reachable", "special"]
    expected = [[t[k] for k in header] for t in data["tokens"]]
    _assert_rows(rows, header, expected)
    frame = _pandas(text, tmp_path)
    _frame_equals(frame, header, expected)
    assert frame["reachable"].dtype == bool and frame["special"].dtype == bool


def test_diff_csv_writes_an_undefined_spearman_as_an_empty_cell(tiny, tmp_path):
    args = ["diff", "Mike", "banana", "--against-metric", "centered", "--sample", "20"]
    text, rows, data = _formats(*args, "--top", "2", "-m", tiny)
    header = ["source", "query", "id", "overlap", "jaccard", "spearman"]
    expected = [[i[k] for k in header] for i in data["items"]]
    _assert_rows(rows, header, expected)
    _frame_equals(_pandas(text, tmp_path), header, expected)


def test_graph_csv_describes_the_file_it_wrote(tiny, tmp_path):
    out = tmp_path / 'g "1",2.jsonl'
    args = ["graph", "--output", out, "--top", "2", "-m", tiny]
    data = json.loads(_run(*args, "--format", "json"))
    rows = _csv_rows(_run(*args, "--format", "csv"))
    assert _tsv_rows(_run(*args, "--format", "tsv"))[0] == rows[0] == list(data)
    # (seconds and cached differ from run to run: the first run built the graph)
    assert rows[1][0] == str(out)  # the quote and comma in the path read back
    got = dict(zip(rows[0], rows[1]))
    assert all(_same(got[k], v) for k, v in data.items() if k not in ("seconds", "cached"))
    assert got["cached"] == "true" and got["include_special"] == "false"
    assert float(got["seconds"]) >= 0


def test_cache_list_csv_leaves_missing_values_empty(tiny, tmp_path):
    assert cli("tokenize", "x", "-m", tiny).exit_code == 0  # at least one entry
    text, rows, data = _formats("cache", "list")
    header = ["model", "path", "source", "embeddings", "vocab_size", "dim", "size_bytes",
              "entry", "quantization"]  # fmt: skip
    expected = [[e[k] for k in header] for e in data]
    _assert_rows(rows, header, expected)
    frame = _pandas(text, tmp_path)
    _frame_equals(frame, header, expected)
    assert frame["quantization"].isna().all()  # null but for a GGUF entry


def test_text_that_looks_like_numbers_stays_text(gpt2_dir, tmp_path):
    text, rows, data = _formats("tokenize", "007", "1999", "-m", gpt2_dir)
    frame = _pandas(text, tmp_path)
    tokens = [t for item in data for t in item["tokens"]]
    assert all(t.strip().isdigit() for t in tokens) and "007" in "".join(tokens)
    assert frame["token"].tolist() == tokens
    text, rows, data = _formats("compare", "2023", "1999", "-m", gpt2_dir)
    frame = _pandas(text, tmp_path)
    assert frame[["a", "b"]].values.tolist() == [["2023", "1999"]]


# --- the missing value and the empty string -----------------------------------------------------


def test_a_row_with_no_token_is_an_empty_cell_and_nan_in_pandas(tmp_path):
    from tokneigh.present.render import emit
    from tokneigh.results.neighbors import Neighbor, NeighborList

    rows = [Neighbor(1, 50260, None, 0.5, "<padding #50260>"), Neighbor(2, 3, "nan", 0.25, "")]
    result = NeighborList(None, 9, [9], ["x"], ['"x"'], "m", 50300, 4, rows)
    out = io.StringIO(newline="")
    emit(result, "csv", stream=out)
    assert out.getvalue().split("\r\n")[1:3] == [",9,1,50260,,0.5", ",9,2,3,nan,0.25"]
    frame = _pandas(out.getvalue(), tmp_path)
    assert frame["token"].isna().tolist() == [True, False] and frame["token"][1] == "nan"
    assert frame["query"].isna().all() and frame["query_id"].tolist() == [9, 9]
