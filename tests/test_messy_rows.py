"""Messy matrices: NaN, infinite, huge and zero rows; matrices larger or smaller than the
tokenizer; a cleared entry under a loaded model; oversized text."""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys

import numpy as np
import pytest
from helpers import cli
from safetensors.numpy import load_file, save_file

import tokneigh

BAD = {3: np.nan, 5: np.inf, 9: -np.inf}  # one component each
HUGE = 13  # a row of 1e30: its float32 norm would overflow to inf
ZERO = 17
PAD = 70  # rows past GPT-2's 50,257: as Qwen2 and Phi pad to a multiple of 64 or 128


def _rewrite(folder, change) -> None:
    weights = load_file(str(folder / "model.safetensors"))
    weights["wte.weight"] = change(weights["wte.weight"].copy())
    save_file(weights, str(folder / "model.safetensors"))


@pytest.fixture(scope="module")
def hostile_dir(gpt2_dir, tmp_path_factory):
    """GPT-2's tokenizer on a matrix with NaN, +-Inf, 1e30 and zero rows."""
    folder = tmp_path_factory.mktemp("hostile") / "ckpt"
    shutil.copytree(gpt2_dir, folder)

    def spoil(m):
        for row, value in BAD.items():
            m[row, 0] = value
        m[HUGE] = 1e30
        m[ZERO] = 0.0
        return m

    _rewrite(folder, spoil)
    return folder


@pytest.fixture(scope="module")
def padded_dir(gpt2_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("padded") / "ckpt"
    shutil.copytree(gpt2_dir, folder)
    rng = np.random.default_rng(0)
    _rewrite(folder, lambda m: np.vstack([m, rng.normal(size=(PAD, m.shape[1])).astype(m.dtype)]))
    return folder


@pytest.fixture(scope="module")
def short_dir(gpt2_dir, tmp_path_factory):
    """A matrix 1,000 rows shorter than its tokenizer."""
    folder = tmp_path_factory.mktemp("short") / "ckpt"
    shutil.copytree(gpt2_dir, folder)
    _rewrite(folder, lambda m: m[:-1000])
    return folder


def test_unusable_rows_are_found_at_build_and_listed_in_meta(hostile_dir, tmp_path):
    messages: list[str] = []
    emb = tokneigh.load(str(hostile_dir), cache_dir=tmp_path, report=messages.append)
    warnings = [m for m in messages if m.startswith("warning:")]
    assert len(warnings) == 1, messages  # once, with counts
    assert "6 rows of the embedding matrix have no direction" in warnings[0]
    assert "3 hold NaN or infinite values (3, 5, 9)" in warnings[0]
    rows = emb.meta["unusable_rows"]
    assert rows["non_finite"] == sorted(BAD) and set(rows["zero"]) == {ZERO, 7, 11}
    assert np.isfinite(np.asarray(emb.unit)).all() and np.isfinite(emb.norms).all()
    # The 1e30 row normalizes in float64: a unit row, not a zero one.
    raw = load_file(str(hostile_dir / "model.safetensors"))["wte.weight"].astype(np.float64)
    np.testing.assert_allclose(emb.unit[HUGE], raw[HUGE] / np.linalg.norm(raw[HUGE]), atol=1e-6)
    assert emb.norms[HUGE] == pytest.approx(np.linalg.norm(raw[HUGE]), rel=1e-6)


def test_unusable_rows_never_rank_and_nothing_non_finite_reaches_output(hostile_dir, tmp_path):
    args = ["--model", str(hostile_dir), "--cache-dir", str(tmp_path)]
    unusable = set(BAD) | {ZERO, 7, 11}
    for top in ("3", "4", "50257"):
        result = cli("neighbors", "Mike", "--top", top, "-f", "json", "--include-special", *args)
        assert result.exit_code == 0, result.stderr
        [data] = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(c))
        ids = [n["id"] for n in data["neighbors"]]
        assert not unusable & set(ids)
        assert all(math.isfinite(n["similarity"]) for n in data["neighbors"])
    assert len(ids) == 50257 - len(unusable)
    assert "have no direction" in result.stderr
    short = json.loads(cli("neighbors", "Mike", "--top", "3", "-f", "json", *args).stdout)
    longer = json.loads(cli("neighbors", "Mike", "--top", "4", "-f", "json", *args).stdout)
    assert short[0]["neighbors"] == longer[0]["neighbors"][:3]  # the same ranking at any k


@pytest.mark.parametrize("row", [3, 5, ZERO])
def test_a_query_on_an_unusable_row_is_a_usage_error(hostile_dir, tmp_path, row):
    args = ["--model", str(hostile_dir), "--cache-dir", str(tmp_path)]
    for command in (["neighbors", "--id", str(row)], ["verify", "--id", str(row)],
                    ["map", "--id", str(row), "--plot", str(tmp_path / "x.png")]):  # fmt: skip
        result = cli(*command, *args)
        assert result.exit_code == 2, (command, result.stdout)
        lines = [line for line in result.stderr.splitlines() if "error" in line]
        assert len(lines) == 1 and "has no direction" in lines[0]
    emb = tokneigh.load(str(hostile_dir), cache_dir=tmp_path)
    with pytest.raises(tokneigh.UsageError, match="no direction"):
        emb.compare("Mike", row)


def test_map_and_verify_work_on_what_remains(hostile_dir, tmp_path):
    args = ["--model", str(hostile_dir), "--cache-dir", str(tmp_path)]
    verified = cli("verify", "Mike", "--top", "10", "-f", "json", *args)
    assert verified.exit_code == 0, verified.stderr
    data = json.loads(verified.stdout)
    assert data["top_k_agree"] and data["pearson"] > 0.99999 and data["max_abs_diff"] < 1e-5
    mapped = cli("map", "Mike", "--top", "12", "--plot", str(tmp_path / "m.png"), "-f", "json",
                 *args)  # fmt: skip
    assert mapped.exit_code == 0, mapped.stderr
    points = json.loads(mapped.stdout)["neighbors"]
    assert len(points) == 12 and all(math.isfinite(p["x"]) for p in points)


def test_rows_beyond_the_tokenizer_are_hidden_and_labelled_padding(padded_dir, tmp_path):
    emb = tokneigh.load(str(padded_dir), cache_dir=tmp_path)
    assert emb.vocab_size == 50257 + PAD
    pad = 50257 + 5
    listed = emb.neighbors(pad, k=3)  # the API ranks every row; the query is its own first
    first = listed.neighbors[0]
    assert first.id == pad and first.token is None and first.label == f"<padding #{pad}>"
    assert first.special
    assert listed.to_json()["neighbors"][0]["token"] is None
    hidden = emb.neighbors("Mike", k=50257 + PAD, filters=tokneigh.Filters(skip_special=True))
    assert not any(n.id >= 50257 for n in hidden.neighbors)
    table = cli("neighbors", "--id", str(pad), "-k", "2", "-m", str(padded_dir),
                "--cache-dir", str(tmp_path))  # fmt: skip
    assert f"<padding #{pad}>" in table.stdout


def test_a_matrix_shorter_than_its_tokenizer(short_dir, tmp_path):
    args = ["--model", str(short_dir), "--cache-dir", str(tmp_path)]
    rows = 50257 - 1000
    for extra in (["--dedupe"], ["--words-only"], []):
        result = cli("neighbors", " the", "--top", "40", "-f", "json", *extra, *args)
        assert result.exit_code == 0, (extra, result.stderr)
        [data] = json.loads(result.stdout)
        ids = [n["id"] for n in data["neighbors"]]
        ids += [v["id"] for n in data["neighbors"] for v in n.get("variants", [])]
        assert all(i < rows for i in ids)
    beyond = cli("neighbors", "--id", str(rows), *args)
    assert beyond.exit_code == 2 and "outside" in beyond.stderr
    emb = tokneigh.load(str(short_dir), cache_dir=tmp_path)
    token = emb.codec.text(rows + 10)  # a token the matrix has no row for
    with pytest.raises(tokneigh.UsageError, match="beyond the embedding matrix"):
        emb.analogy("man", "king", token)


def test_a_loaded_model_keeps_answering_after_its_entry_is_cleared(gpt2_dir, tmp_path):
    emb = tokneigh.load(str(gpt2_dir), cache_dir=tmp_path)
    before = [emb.neighbors(q, k=5).to_json() for q in ("Mike", "café", "日本")]
    assert cli("cache", "clear", "--all", "--cache-dir", str(tmp_path)).exit_code == 0
    assert not emb.path.exists()
    after = [emb.neighbors(q, k=5).to_json() for q in ("Mike", "café", "日本")]
    assert after == before  # tokenizer bytes and the mapped matrix were read at load


def test_text_over_a_megabyte_is_one_usage_error(gpt2_dir, tmp_path):
    args = ["--model", str(gpt2_dir), "--cache-dir", str(tmp_path)]
    big = "a" * 1_000_001
    for command in (["neighbors", big], ["tokenize", big], ["compare", big, "b"]):
        result = cli(*command, *args)
        assert result.exit_code == 2, command[0]
        errors = [line for line in result.stderr.splitlines() if line.startswith("tokneigh: error")]
        assert len(errors) == 1 and "at most 1,000,000" in errors[0]
    # Under the cap: answered (words, not one 999,999-letter word, whose BPE merges alone
    # would take half a minute; through the API, not a table of 166,667 tokens).
    under = ("hello " * 166_667)[:999_999]
    assert len(tokneigh.load_vocabulary(str(gpt2_dir)).tokenize(under).ids) == 166_667


def test_the_shell_drops_an_overlong_line_with_bounded_memory(gpt2_dir, tmp_path):
    cli("cache", "build", "--model", str(gpt2_dir), "--cache-dir", str(tmp_path))
    script = b"Mike\n" + b"x" * 10_000_000 + b"\nbanana\n"

    def limit_memory() -> None:  # the old shell took 2 GB for this line
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1_500_000_000, 1_500_000_000))

    done = subprocess.run(
        [sys.executable, "-m", "tokneigh", "shell", "-f", "json", "-m", str(gpt2_dir),
         "--cache-dir", str(tmp_path)],  # fmt: skip
        input=script, capture_output=True, timeout=300, preexec_fn=limit_memory,
    )
    assert done.returncode == 0, done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o.get("query") for o in out] == ["Mike", None, "banana"]
    assert "at most 1,000,000" in out[1]["error"]
    errors = [line for line in done.stderr.decode().splitlines() if "error" in line]
    assert len(errors) == 1
