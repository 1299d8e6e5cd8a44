"""Vector queries: a direction read as tokens, by cosine or by the raw dot product, checked
against numpy written out here."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import cli

import tokneigh

SHARED_CACHE = True


@pytest.fixture(scope="module")
def emb(llama_dir, module_cache):
    return tokneigh.load(str(llama_dir), cache_dir=module_cache)  # the CLI tests' cache too


def raw_rows(emb) -> np.ndarray:
    return emb.unit.astype(np.float64) * emb.norms.astype(np.float64)[:, None]


def ranking(scores: np.ndarray, k: int, left_out=()) -> list[int]:
    s = np.array(scores, dtype=np.float64)
    s[list(left_out)] = -np.inf
    return np.lexsort((np.arange(s.size), -s))[:k].tolist()


def test_a_vector_that_is_row_n_answers_as_the_id_query(emb, llama_dir, tmp_path):
    path = tmp_path / "row.npy"
    np.save(path, np.asarray(emb.unit[372]))  # " king"'s unit row
    result = cli("neighbors", "--vector", str(path), "--id", "372", "--top", "6",
                    "--format", "json", "--model", str(llama_dir))
    assert result.exit_code == 0, result.stderr
    by_vector, by_id = json.loads(result.stdout)[::-1]
    assert by_vector["neighbors"] == by_id["neighbors"]  # the same ids and similarities
    assert by_vector["query"] is None and by_vector["query_id"] is None
    assert by_vector["vector"] == {"source": str(path), "row": None}
    # A row of a 2-D file, and any float width.
    matrix = raw_rows(emb)[[5, 372, 9]].astype(np.float16)
    np.save(tmp_path / "rows.npy", matrix)
    result = cli("neighbors", "--vector", f"{tmp_path / 'rows.npy'}:1", "--top", "6",
                    "--format", "json", "--model", str(llama_dir))
    [data] = json.loads(result.stdout)
    assert data["vector"] == {"source": str(tmp_path / "rows.npy"), "row": 1}
    x = emb.unit.astype(np.float64)
    q = matrix[1].astype(np.float64)
    cos = x @ (q / np.linalg.norm(q))
    left_out = emb._special_ids().tolist()  # the CLI hides special tokens
    assert [n["id"] for n in data["neighbors"]] == ranking(cos, 6, left_out)
    np.testing.assert_allclose([n["similarity"] for n in data["neighbors"]],
                               cos[ranking(cos, 6, left_out)], atol=1e-6)


def test_a_difference_of_two_token_vectors(emb):
    a, b = emb.raw_vector("king"), emb.raw_vector("queen")
    result = emb.neighbors(a - b, k=5)
    x = emb.unit.astype(np.float64)
    q = (a - b) / np.linalg.norm(a - b)
    assert [n.id for n in result.neighbors] == ranking(x @ q, 5, emb.unusable)
    assert result.to_json()["vector"] == {"source": None, "row": None}


def test_dot_scores_are_the_raw_products(emb, llama_dir, tmp_path):
    rng = np.random.default_rng(4)
    v = rng.standard_normal(emb.dim) * 40  # far from unit length: the scale must not matter
    np.save(tmp_path / "v.npy", v)
    result = cli("neighbors", "--vector", str(tmp_path / "v.npy"), "--score", "dot",
                    "--top", "7", "--include-special", "--format", "json",
                    "--model", str(llama_dir))
    assert result.exit_code == 0, result.stderr
    [data] = json.loads(result.stdout)
    assert data["score"] == "dot"
    dots = raw_rows(emb) @ v
    assert [n["id"] for n in data["neighbors"]] == ranking(dots, 7)
    np.testing.assert_allclose([n["similarity"] for n in data["neighbors"]],
                               dots[ranking(dots, 7)], rtol=1e-6)


def test_the_centroid_is_the_mean_row(emb, llama_dir):
    raw = raw_rows(emb)
    mean = raw.mean(axis=0)
    cos = (raw @ mean) / (np.linalg.norm(raw, axis=1) * np.linalg.norm(mean))
    result = cli("neighbors", "--centroid", "--top", "5", "--include-special",
                    "--format", "json", "--model", str(llama_dir))
    assert result.exit_code == 0, result.stderr
    [data] = json.loads(result.stdout)
    assert data["centroid"] is True and "vector" not in data
    assert [n["id"] for n in data["neighbors"]] == ranking(cos, 5)
    dot = cli("neighbors", "--centroid", "--score", "dot", "--top", "5", "--include-special",
                 "--format", "json", "--model", str(llama_dir))
    [data] = json.loads(dot.stdout)
    assert [n["id"] for n in data["neighbors"]] == ranking(raw @ mean, 5)


def test_the_shell_takes_vectors_and_the_centroid(emb, llama_dir, tmp_path):
    np.save(tmp_path / "v.npy", np.asarray(emb.unit[372]))
    script = f":vector {tmp_path / 'v.npy'}\n:centroid\n:vector {tmp_path / 'none.npy'}\n"
    done = subprocess.run(
        [sys.executable, "-m", "tokneigh", "shell", "-f", "json", "-k", "3", "-m", str(llama_dir)],
        input=script, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    first, second, third = (json.loads(line) for line in done.stdout.splitlines())
    filters = tokneigh.Filters(skip_special=True)
    want = emb.neighbors(372, k=3, filters=filters)
    assert [n["id"] for n in first["neighbors"]] == [n.id for n in want.neighbors]
    assert second["centroid"] is True
    assert "no such file" in third["error"]


@pytest.mark.parametrize(
    "make",
    [
        lambda d, p: np.save(p, np.ones(d + 1)),  # wrong length
        lambda d, p: np.save(p, np.full(d, np.nan)),  # not finite
        lambda d, p: np.save(p, np.zeros(d)),  # no direction
        lambda d, p: np.save(p, np.ones(d, dtype=np.int64)),  # not floats
        lambda d, p: np.save(p, np.array([{"a": 1}], dtype=object)),  # a pickle
        lambda d, p: np.save(p, np.ones((2, d))),  # rows, none named
        lambda d, p: np.save(p, np.ones((2, 2, d))),  # 3-D
        lambda d, p: p.write_bytes(b"not numpy"),
        lambda d, p: None,  # missing
    ],
)
def test_bad_vectors_are_one_line_and_exit_2(emb, llama_dir, tmp_path, make):
    path = tmp_path / "v.npy"
    make(emb.dim, path)
    result = cli("neighbors", "--vector", str(path), "--model", str(llama_dir))
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: "), result.stderr


def test_a_row_beyond_the_file_and_dot_on_text_are_usage_errors(emb, llama_dir, tmp_path):
    np.save(tmp_path / "m.npy", np.ones((2, emb.dim)))
    for args in (["--vector", f"{tmp_path / 'm.npy'}:2"], ["king", "--score", "dot"],
                 ["--centroid", "--metric", "centered"], ["--centroid", "--score", "cos"]):
        result = cli("neighbors", *args, "--model", str(llama_dir))
        assert result.exit_code == 2, (args, result.stdout)
        assert result.stderr.count("tokneigh: error: ") == 1
