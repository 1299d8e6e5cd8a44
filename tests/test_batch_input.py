"""Batch input (issue 22, item 6): ``--queries FILE`` on neighbors (one query a line),
compare (A<TAB>B) and analogy (A<TAB>B<TAB>C), ``-`` for stdin.

Each batch is checked against the same queries asked one at a time (and those against numpy
references), in every output format; a bad line is reported with its number while the others
are answered, and the command exits non-zero; a hostile file is one line.
"""

from __future__ import annotations

import csv
import io
import json
import os

import helpers
import numpy as np
import pytest
from explore_refs import assert_same_ranking, filtered_ranking
from typer.testing import CliRunner

SHARED_CACHE = True

KING, QUEEN, MAN, WOMAN = 2332, 3035, 2158, 2450  # all-MiniLM-L6-v2's ids


def batch(model, *args: object, stdin: str | bytes | None = None):
    """``tokneigh ARGS -m MODEL`` in this process, stdin given."""
    from tokneigh.cli import app

    argv = [str(a) for a in (*args, "-m", model)]
    return CliRunner().invoke(app, argv, input=stdin)


def write(tmp_path, text: str | bytes, name: str = "queries.txt"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return path


def one_at_a_time(model, command: str, rows: list[list[str]], *options: str) -> list:
    """Each row asked alone, as a separate command, its JSON."""
    out = []
    for row in rows:
        result = helpers.cli(command, *row, *options, "-f", "json", "-m", model)
        assert result.exit_code == 0, result.stderr
        data = json.loads(result.stdout)
        out.append(data[0] if command == "neighbors" else data)
    return out


def error_lines(stderr: str) -> list[str]:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert all(line.startswith("tokneigh: ") for line in lines), stderr
    return [line for line in lines if line.startswith("tokneigh: error: ")]


# --- neighbors ------------------------------------------------------------------------------

NEIGHBOR_LINES = ["king", "", f"#{KING}", "\\#5", "#30522", " banana", "\t", "queen"]
GOOD = [0, 2, 3, 5, 7]  # the lines that hold a query the model accepts


def test_neighbors_batch_is_each_query_alone_and_bad_lines_by_number(minilm_dir, tmp_path):
    path = write(tmp_path, "\n".join(NEIGHBOR_LINES) + "\n")
    result = batch(minilm_dir, "neighbors", "--queries", path, "-k", "7", "-f", "json")
    assert result.exit_code == 2, result.stderr
    got = json.loads(result.stdout)
    alone = one_at_a_time(minilm_dir, "neighbors", [[NEIGHBOR_LINES[i]] for i in GOOD], "-k", "7")
    assert got == alone
    assert [g["query"] for g in got] == ["king", None, "#5", " banana", "queen"]
    errors = error_lines(result.stderr)
    assert [e.split(":")[2].strip() for e in errors] == ["line 2", "line 5", "line 7"]
    assert "line 2: the line is empty" in errors[0]
    assert "line 5: token id 30522 is outside 0..30521" in errors[1]
    assert "line 7: the line is empty" in errors[2]


def test_neighbors_batch_against_numpy(minilm_dir, minilm_ref, tmp_path):
    path = write(tmp_path, f"river\n#{KING}\n")
    result = batch(minilm_dir, "neighbors", "--queries", path, "-k", "10", "-f", "json")
    assert result.exit_code == 0, result.stderr
    river, king = json.loads(result.stdout)
    scores = minilm_ref.scores(minilm_ref.word("river"))
    expected = [i for i, _ in filtered_ranking(minilm_ref, scores, 10)]
    assert_same_ranking(river["neighbors"], scores, expected)
    scores = minilm_ref.unit @ minilm_ref.unit[KING]
    expected = [i for i, _ in filtered_ranking(minilm_ref, scores, 10, spared={KING})]
    assert king["query_id"] == KING
    assert_same_ranking(king["neighbors"], scores, expected)


@pytest.mark.parametrize("fmt", ["tsv", "csv", "table"])
def test_neighbors_batch_in_each_format(minilm_dir, tmp_path, fmt):
    queries = ["king", f"#{QUEEN}", "\\#5"]
    path = write(tmp_path, "\r\n".join(queries) + "\r\n")  # CRLF lines: the CR is not text
    result = batch(minilm_dir, "neighbors", "--queries", path, "-k", "4", "-f", fmt)
    assert result.exit_code == 0, result.stderr
    args = ["king", f"#{QUEEN}", "\\#5"]  # the same queries, as arguments
    together = helpers.cli("neighbors", *args, "-k", "4", "-f", fmt, "-m", minilm_dir)
    assert result.stdout == together.stdout
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(result.stdout)))
        assert rows[0][:2] == ["query", "query_id"] and len(rows) == 1 + 3 * 4
        assert [r[0] for r in rows[1::4]] == ["king", "", "#5"]
        assert [r[1] for r in rows[1::4]] == ["", str(QUEEN), ""]


def test_neighbors_batch_from_stdin(minilm_dir):
    result = batch(
        minilm_dir, "neighbors", "--queries", "-", "-k", "3", "-f", "json", stdin="king\n\nqueen"
    )  # (no final newline: the last line is still a line)
    assert result.exit_code == 2
    assert [g["query"] for g in json.loads(result.stdout)] == ["king", "queen"]
    [error] = error_lines(result.stderr)
    assert "line 2: the line is empty" in error


def test_neighbors_batch_as_a_process_exits_non_zero_after_its_output(minilm_dir, tmp_path):
    path = write(tmp_path, "king\n\n")
    done = helpers.run_cli("neighbors", "--queries", str(path), "-k", "2", "-f", "tsv",
                           "-m", str(minilm_dir))  # fmt: skip
    assert done.returncode == 2
    assert done.stdout.splitlines()[1].startswith("king\t\t1\t2332\t")
    [error] = error_lines(done.stderr)
    assert error == "tokneigh: error: line 2: the line is empty: nothing to look up"


def test_a_batch_with_no_good_line_writes_an_empty_answer_and_no_plot(minilm_dir, tmp_path):
    path = write(tmp_path, "\n#30522\n")
    plot = tmp_path / "bars.png"
    result = batch(minilm_dir, "neighbors", "--queries", path, "-f", "json", "--plot", plot)
    assert result.exit_code == 2 and json.loads(result.stdout) == []
    assert len(error_lines(result.stderr)) == 2 and "internal error" not in result.stderr
    assert "no plot written" in result.stderr and not plot.exists()


# --- compare and analogy --------------------------------------------------------------------


def test_compare_batch_is_each_pair_alone(minilm_dir, minilm_ref, tmp_path):
    lines = ["king\tqueen", f"#{KING}\t#{QUEEN}", "king", "a\tb\tc", "", "\\#5\t#5", "king\t"]
    path = write(tmp_path, "\n".join(lines))
    result = batch(minilm_dir, "compare", "--queries", path, "-f", "json")
    assert result.exit_code == 2
    got = json.loads(result.stdout)
    pairs = [lines[i].split("\t") for i in (0, 1, 5)]
    assert got == one_at_a_time(minilm_dir, "compare", pairs)
    cosine = float(minilm_ref.unit[KING] @ minilm_ref.unit[QUEEN])
    assert got[1]["cosine"] == pytest.approx(cosine, abs=1e-6)
    errors = error_lines(result.stderr)
    assert [e.split(":")[2].strip() for e in errors] == ["line 3", "line 4", "line 5", "line 7"]
    assert "has 1 TAB-separated column; expected 2" in errors[0]
    assert "has 3 TAB-separated columns; expected 2" in errors[1]
    assert "the line is empty" in errors[2]
    assert "the query is empty" in errors[3] and "#N" in errors[3]  # the library's, with the hint


def test_compare_batch_tsv_is_the_single_rows(minilm_dir, tmp_path):
    path = write(tmp_path, "king\tqueen\nman\twoman\n")
    result = batch(minilm_dir, "compare", "--queries", path, "-f", "tsv")
    assert result.exit_code == 0, result.stderr
    single = [helpers.cli("compare", a, b, "-f", "tsv", "-m", minilm_dir).stdout.splitlines()
              for a, b in (("king", "queen"), ("man", "woman"))]  # fmt: skip
    assert result.stdout.splitlines() == [single[0][0], single[0][1], single[1][1]]


def test_analogy_batch_is_each_analogy_alone(minilm_dir, minilm_ref, tmp_path):
    lines = [
        "man\tking\twoman",
        f"#{MAN}\t#{KING}\t#{WOMAN}",
        "paris\tfrance",
        "france\tparis\tgermany",
    ]
    path = write(tmp_path, "\n".join(lines) + "\n")
    result = batch(minilm_dir, "analogy", "--queries", path, "-k", "6", "-f", "json")
    assert result.exit_code == 2
    got = json.loads(result.stdout)
    rows = [line.split("\t") for line in (lines[0], lines[1], lines[3])]
    assert got == one_at_a_time(minilm_dir, "analogy", rows, "-k", "6")
    unit = minilm_ref.unit
    total = unit[KING] - unit[MAN] + unit[WOMAN]
    scores = unit @ (total / np.linalg.norm(total))
    expected = [i for i, _ in filtered_ranking(minilm_ref, scores, 6, exclude={MAN, KING, WOMAN})]
    assert_same_ranking(got[1]["neighbors"], scores, expected)
    [error] = error_lines(result.stderr)
    assert "line 3: the line has 2 TAB-separated columns; expected 3" in error
    tsv = batch(
        minilm_dir, "analogy", "--queries", path, "-k", "6", "-f", "tsv"
    ).stdout.splitlines()
    assert tsv[0] == "a\tb\tc\trank\tid\ttoken\tsimilarity" and len(tsv) == 1 + 3 * 6
    assert tsv[1].split("\t")[:5] == [
        "man",
        "king",
        "woman",
        "1",
        str(got[0]["neighbors"][0]["id"]),
    ]
    table = batch(minilm_dir, "analogy", "--queries", path, "-k", "6").stdout
    assert table.count("is to ?") == 3


# --- refusals -------------------------------------------------------------------------------


def test_queries_and_arguments_together_are_refused(minilm_dir, tmp_path):
    path = write(tmp_path, "king\n")
    for args in (["neighbors", "queen", "--queries", path],
                 ["neighbors", "--id", "5", "--queries", path],
                 ["compare", "a", "b", "--queries", path],
                 ["analogy", "a", "b", "c", "--queries", path],
                 ["analogy", "-p", "a", "--queries", path]):  # fmt: skip
        helpers.assert_one_line_error(batch(minilm_dir, *args), 2, "--queries")


def test_hostile_files_are_one_line(minilm_dir, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = [
        (fifo, "is a FIFO (named pipe), not a file"),
        (tmp_path, "is a folder, not a file"),
        (tmp_path / "missing.txt", "no such file"),
        (write(tmp_path, b"", "empty.txt"), "holds no lines"),
    ]
    for path, fragment in cases:
        result = batch(minilm_dir, "neighbors", "--queries", path)
        helpers.assert_one_line_error(result, 2, "--queries", fragment)


def test_limits_refuse_the_file_whole(minilm_dir, tmp_path, monkeypatch):
    from tokneigh.cli import batch as batch_module

    monkeypatch.setattr(batch_module, "MAX_QUERY_LINES", 3)
    result = batch(minilm_dir, "neighbors", "--queries", write(tmp_path, "a\nb\nc\nd\n"))
    helpers.assert_one_line_error(result, 2, "4 lines; a batch holds at most 3")
    monkeypatch.setattr(batch_module, "MAX_QUERY_FILE_BYTES", 10)
    result = batch(minilm_dir, "neighbors", "--queries", write(tmp_path, "king\n" * 3, "big.txt"))
    helpers.assert_one_line_error(result, 2, "more than 10 bytes")


def test_junk_lines_are_reported_and_the_rest_answered(minilm_dir, tmp_path):
    from tokneigh.api.vocabulary import MAX_TEXT_BYTES

    data = b"king\n\xff\xfe junk\n" + b"x" * (MAX_TEXT_BYTES + 1) + b"\n\x00\nqueen\n"
    result = batch(minilm_dir, "neighbors", "--queries", write(tmp_path, data), "-k", "2",
                   "-f", "json")  # fmt: skip
    assert result.exit_code == 2
    assert [g["query"] for g in json.loads(result.stdout)] == ["king", "queen"]
    errors = error_lines(result.stderr)
    assert len(errors) == 3
    assert "line 2: the line is not valid UTF-8 text" in errors[0]
    assert f"line 3: the line has {MAX_TEXT_BYTES + 1:,} bytes" in errors[1]
    assert "line 4: '\\x00' tokenizes to no tokens" in errors[2]  # BERT drops control chars
    assert not any("nan" in line.lower() for line in result.stdout.splitlines())


def test_a_cached_batch_imports_nothing_heavy(minilm_dir, tmp_path):
    path = write(tmp_path, "king\n#2332\n")
    assert helpers.run_cli("neighbors", "king", "-m", str(minilm_dir)).returncode == 0  # cached
    heavy = ["torch", "transformers", "pandas", "pyarrow", "umap", "numba"]
    args = ["neighbors", "--queries", str(path), "-m", str(minilm_dir), "-f", "json"]
    assert helpers.heavy_imports(args, heavy) == []


# --- the batch results in Python --------------------------------------------------------------


def test_batch_results_frames_are_their_json_rows(minilm_dir, module_cache):
    pytest.importorskip("pandas")
    import tokneigh
    from tokneigh.results import Analogies, Comparisons

    emb = tokneigh.load(str(minilm_dir), cache_dir=module_cache)
    pairs = Comparisons([emb.compare("king", f"#{QUEEN}"), emb.compare(f"#{MAN}", "woman")])
    frame = pairs.to_pandas()
    assert frame["a"].tolist() == ["king", None] and frame["b"].tolist() == [None, "woman"]
    assert frame["a_id"].isna().tolist() == [True, False] and frame["a_id"][1] == MAN
    assert frame["cosine"].tolist() == [c["cosine"] for c in pairs.to_json()]
    assert frame["rank_of_b"].dtype == "int64"
    analogies = Analogies([emb.analogy("man", "king", f"#{WOMAN}", k=3),
                           emb.analogy("france", "paris", "germany", k=3)])  # fmt: skip
    frame = analogies.to_pandas()
    assert len(frame) == 6
    assert frame["a"].tolist() == ["man"] * 3 + ["france"] * 3
    assert frame["c_id"].isna().tolist() == [False] * 3 + [True] * 3
    assert frame["c_id"][0] == WOMAN and frame["c"][0] is None
    assert frame["id"].tolist() == [n["id"] for m in analogies.to_json() for n in m["neighbors"]]
    assert frame["similarity"].tolist() == [
        n["similarity"] for m in analogies.to_json() for n in m["neighbors"]
    ]
