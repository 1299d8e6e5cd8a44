"""Vector files a user (or an attacker) might hand to ``neighbors --vector``: finite vectors of
any scale are one direction (issue 20, case 7), and a .npy header that lies about its size is
refused before anything is read (case 8)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_one_line_error, cli, run_cli

import tokneigh

SHARED_CACHE = True


@pytest.fixture(scope="module")
def emb(llama_dir, module_cache):
    return tokneigh.load(str(llama_dir), cache_dir=module_cache)


def neighbours(path, llama_dir, *extra):
    result = cli("neighbors", "--vector", str(path), "--top", "8", "--format", "json",
                 "--model", str(llama_dir), *extra)
    return result


# --- case 7: cosine does not depend on scale ---------------------------------------------------


def peak_one(v: np.ndarray) -> np.ndarray:
    """``v`` scaled so its largest value is 1: times ``scale`` its largest value is ``scale``."""
    return v / np.abs(v).max()


@pytest.mark.filterwarnings("error")  # numpy's overflow warnings were part of the failure
@pytest.mark.parametrize("scale", [1e38, 3e38, 1e39, 1e300, 1e-300, 1e-40])
def test_a_scaled_row_has_the_neighbours_of_the_row(emb, llama_dir, tmp_path, scale):
    raw = peak_one(emb.raw_vector("king"))  # float64, a normal row
    np.save(tmp_path / "v.npy", raw)
    np.save(tmp_path / "scaled.npy", raw * scale)
    plain = neighbours(tmp_path / "v.npy", llama_dir)
    scaled = neighbours(tmp_path / "scaled.npy", llama_dir)
    assert plain.exit_code == 0, plain.stderr
    assert scaled.exit_code == 0, scaled.stderr
    [a], [b] = json.loads(plain.stdout), json.loads(scaled.stdout)
    assert [n["id"] for n in b["neighbors"]] == [n["id"] for n in a["neighbors"]]
    np.testing.assert_allclose([n["similarity"] for n in b["neighbors"]],
                               [n["similarity"] for n in a["neighbors"]], rtol=0, atol=1e-6)
    # and against numpy: cosine of the unscaled float64 row
    x = emb.unit.astype(np.float64)
    cos = x @ (raw / np.linalg.norm(raw))
    np.testing.assert_allclose([n["similarity"] for n in b["neighbors"]],
                               cos[[n["id"] for n in b["neighbors"]]], atol=1e-6)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("scale", [3e38, 1e300, 1e-300])
def test_a_scaled_row_keeps_its_dot_ranking(emb, llama_dir, tmp_path, scale):
    """--score dot: the raw products scale, the order does not."""
    raw = peak_one(emb.raw_vector("king"))
    np.save(tmp_path / "v.npy", raw)
    np.save(tmp_path / "scaled.npy", raw * scale)
    plain = neighbours(tmp_path / "v.npy", llama_dir, "--score", "dot")
    scaled = neighbours(tmp_path / "scaled.npy", llama_dir, "--score", "dot")
    assert scaled.exit_code == 0, scaled.stderr
    [a], [b] = json.loads(plain.stdout), json.loads(scaled.stdout)
    assert [n["id"] for n in b["neighbors"]] == [n["id"] for n in a["neighbors"]]
    np.testing.assert_allclose([n["similarity"] for n in b["neighbors"]],
                               [n["similarity"] * scale for n in a["neighbors"]], rtol=1e-6)


def test_a_normal_vector_gives_the_same_bits_as_before(emb):
    """The unit vector of an ordinary vector is the float32 cast normalized in float64, as it
    always was (no rescaling on the usual path)."""
    from tokneigh.space import core

    rng = np.random.default_rng(7)
    for v in (emb.raw_vector("king"), rng.standard_normal(32) * 40, rng.standard_normal(32)):
        f = np.asarray(v, dtype=np.float32).astype(np.float64)
        expected = (f / np.sqrt(np.einsum("i,i->", f, f))).astype(np.float32)
        assert core.unit_vector(v).tobytes() == expected.tobytes()


@pytest.mark.parametrize("values, fragment", [
    (np.zeros(32), "zero vector"),
    (np.full(32, np.inf), "NaN or infinite"),
    (np.r_[np.full(31, 1.0), np.nan], "NaN or infinite"),
])
def test_a_vector_with_no_direction_is_one_line(llama_dir, tmp_path, values, fragment):
    np.save(tmp_path / "bad.npy", values)
    assert_one_line_error(neighbours(tmp_path / "bad.npy", llama_dir), 2, fragment)


@pytest.mark.filterwarnings("error")
def test_dot_products_beyond_float64_are_one_line(tiny_dir, module_cache, tmp_path):
    """A vector near float64's largest value: its products with the longest row cannot be
    held, and no ``inf`` (invalid JSON) is printed; by cosine it is just a direction."""
    tiny = tokneigh.load(str(tiny_dir), cache_dir=module_cache)
    longest = int(np.argmax(tiny.norms))
    assert tiny.norms[longest] > 1  # so the products exceed the vector's own largest value
    direction = np.sign(tiny.unit[longest]).astype(np.float64)
    np.save(tmp_path / "huge.npy", direction * np.finfo(np.float64).max)
    result = neighbours(tmp_path / "huge.npy", tiny_dir, "--score", "dot", "--include-special")
    assert_one_line_error(result, 2, "beyond float64's range")
    result = neighbours(tmp_path / "huge.npy", tiny_dir, "--include-special")
    assert result.exit_code == 0, result.stderr
    [data] = json.loads(result.stdout)
    cos = tiny.unit.astype(np.float64) @ (direction / np.linalg.norm(direction))
    assert [n["id"] for n in data["neighbors"]] == ranking(cos, 8)


def ranking(scores: np.ndarray, k: int) -> list[int]:
    return np.lexsort((np.arange(scores.size), -scores))[:k].tolist()


# --- case 8: a .npy file is checked against its own size before it is read ---------------------


def npy_with_header(path, header: str, data: bytes = b"", version: int = 1) -> None:
    """A .npy file with any header text (padded as numpy pads it) and any data bytes."""
    text = header.encode("latin1")
    prefix = 10 if version == 1 else 12
    text += b" " * ((-(prefix + len(text) + 1)) % 16) + b"\n"
    length = len(text).to_bytes(2 if version == 1 else 4, "little")
    path.write_bytes(b"\x93NUMPY" + bytes([version, 0]) + length + text + data)


@pytest.mark.parametrize("version", [1, 2])
def test_a_header_that_claims_more_than_the_file_holds(llama_dir, tmp_path, version):
    path = tmp_path / "liar.npy"
    header = "{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }"
    npy_with_header(path, header, b"\0" * 24, version)
    assert path.stat().st_size <= 120
    result = neighbours(path, llama_dir)
    assert_one_line_error(result, 2, str(path), "1,099,511,627,776", "24 bytes")


@pytest.mark.parametrize("header, fragment", [
    # a 2-D header whose product overflows int64
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", "values"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "shape (-1,)"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, -1), }", "shape (-1, -1)"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': (32,), }", "values"),  # no data at all
    ("{'descr': '|O', 'fortran_order': False, 'shape': (32,), }", "holds object"),
    ("{'descr': '<f4', 'fortran_order': False, 'shape': ", "not a numpy .npy array"),
    ("[" * 5000, "not a numpy .npy array"),
])
def test_hostile_npy_headers_are_one_line(llama_dir, tmp_path, header, fragment):
    path = tmp_path / "hostile.npy"
    npy_with_header(path, header)
    assert_one_line_error(neighbours(path, llama_dir), 2, fragment)


def test_an_object_array_is_refused_unread(llama_dir, tmp_path):
    """A pickled object array is never unpickled (allow_pickle stays False)."""
    path = tmp_path / "objects.npy"
    np.save(path, np.array([1.0, "x", None] + [0.0] * 29, dtype=object), allow_pickle=True)
    assert_one_line_error(neighbours(path, llama_dir), 2, "holds object")


def test_a_vector_file_that_is_not_a_regular_file(llama_dir, tmp_path):
    """A FIFO would block the read forever: refused without opening it."""
    import os

    fifo = tmp_path / "v.npy"
    os.mkfifo(fifo)
    # A fresh process with a timeout: a hang is a failure, not a stuck suite.
    result = run_cli("neighbors", "--vector", str(fifo), "--model", str(llama_dir), timeout=120)
    assert_one_line_error(result, 2, "not a regular file")


def test_a_truncated_file_and_a_longer_one(emb, llama_dir, tmp_path):
    """Short data is refused; trailing bytes after the array are ignored as numpy does."""
    row = emb.raw_vector("king")
    np.save(tmp_path / "v.npy", row)
    whole = (tmp_path / "v.npy").read_bytes()
    (tmp_path / "short.npy").write_bytes(whole[:-8])
    assert_one_line_error(neighbours(tmp_path / "short.npy", llama_dir), 2, "248 bytes")
    (tmp_path / "long.npy").write_bytes(whole + b"trailing")
    a, b = neighbours(tmp_path / "v.npy", llama_dir), neighbours(tmp_path / "long.npy", llama_dir)
    assert b.exit_code == 0, b.stderr
    assert json.loads(a.stdout)[0]["neighbors"] == json.loads(b.stdout)[0]["neighbors"]
