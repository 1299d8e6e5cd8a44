"""The example models anyone can make (examples/*.py, issue 22 item 9): each script runs
offline into tmp_path, prints what it wrote, and tokneigh answers on what it wrote as an
independent computation (numpy over the written tensors) says it must.

The scripts build the same models as the README's examples: the tiny Llama's matrices equal
the test suite's own (tests/checkpoints.py), so the README's output is what a reader gets."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from checkpoints import minilm_folder
from helpers import cli

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
# The quick start's line that sets MINILM, read from the README (run from the clone, whose
# virtual environment is .venv): the line a reader copies is the line tested.
_README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
MINILM_LINE = re.search(r"export MINILM=\"\$\(.*?\)\"(?= &&)", _README).group(0)


def run_example(name: str, *args: object) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == "", proc.stderr  # no progress bars, no warnings
    return proc


def tensors(folder: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return {k: v.astype(np.float32) for k, v in load_file(folder / "model.safetensors").items()}


def top_by_loop(matrix: np.ndarray, query: int, k: int) -> list[tuple[int, float]]:
    """The k rows most cosine-similar to row ``query`` (itself included), one row at a time."""
    q = matrix[query].astype(np.float64)
    sims = []
    for i, row in enumerate(matrix.astype(np.float64)):
        sims.append((i, float(row @ q / (np.linalg.norm(row) * np.linalg.norm(q)))))
    return sorted(sims, key=lambda pair: (-pair[1], pair[0]))[:k]


def neighbors_json(*args: object) -> dict:
    result = cli("neighbors", *args, "--format", "json", "--include-special")
    assert result.exit_code == 0, result.stderr
    (answer,) = json.loads(result.stdout)  # one list per query
    return answer


def test_minilm_line_prints_the_wheel_folder(tmp_path: Path) -> None:
    # A clone whose .venv/bin/python is this test's interpreter.
    python = tmp_path / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    proc = subprocess.run(
        ["sh", "-c", f'{MINILM_LINE} && printf "%s" "$MINILM"'],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    assert Path(proc.stdout) == minilm_folder()
    assert (Path(proc.stdout) / "model.safetensors").is_file()


def test_tiny_llama(tmp_path: Path, llama_dir: Path) -> None:
    folder = tmp_path / "tiny-llama"
    proc = run_example("make_tiny_llama.py", folder)
    assert proc.stdout.startswith(f"wrote {folder}: ") and "model.safetensors" in proc.stdout
    written = tensors(folder)
    # The README's tiny Llama is the suite's: same tokenizer, same seeded weights.
    reference = tensors(llama_dir)
    for name in ("model.embed_tokens.weight", "lm_head.weight"):
        np.testing.assert_array_equal(written[name], reference[name])
    assert (folder / "tokenizer.json").read_bytes() == (llama_dir / "tokenizer.json").read_bytes()

    head = written["lm_head.weight"]
    assert head.shape == (479, 32)
    king = 372  # " king" in the trained vocabulary
    out = neighbors_json("--id", king, "--top", 4, "--model", folder, "--embeddings", "output")
    got = [(n["id"], n["similarity"]) for n in out["neighbors"]]
    expected = top_by_loop(head, king, 4)
    assert [i for i, _ in got] == [i for i, _ in expected]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in expected], atol=1e-6)


def test_gpt2_random_and_tied(tmp_path: Path) -> None:
    plain, tied = tmp_path / "gpt2-random", tmp_path / "tiny-gpt2-lm"
    run_example("make_gpt2_random.py", plain, "--dim", 8)
    proc = run_example("make_tied_model.py", tied, "--dim", 8)
    assert proc.stdout.startswith(f"wrote {tied}: ")
    wte = tensors(plain)["wte.weight"]
    assert wte.shape == (50257, 8)
    end = 5268  # " End" in GPT-2's real vocabulary
    out = neighbors_json(" End", "--top", 3, "--model", plain)
    assert out["query_ids"] == [end]
    expected = top_by_loop(wte, end, 3)
    assert [n["id"] for n in out["neighbors"]] == [i for i, _ in expected]

    # The tied model saves one matrix, and tokneigh says the output one is the same.
    names = set(tensors(tied))
    assert "transformer.wte.weight" in names and not any("lm_head" in n for n in names)
    assert json.loads((tied / "config.json").read_text())["tie_word_embeddings"] is True
    result = cli("neighbors", "king", "--top", 3, "--model", tied, "--embeddings", "output")
    assert result.exit_code == 0, result.stderr
    assert "no separate output embeddings" in result.stderr


def test_gguf_of_minilm_and_its_ollama_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gguf

    qtype = "Q8_0"
    path = tmp_path / f"all-minilm-{qtype}.gguf"
    proc = run_example("make_gguf.py", path, "--from", minilm_folder(), "--type", qtype)
    assert proc.stdout.strip() == f"wrote {path} ({path.stat().st_size:,} bytes)"

    # Independent reference: gguf's own reader and dequantizer, then a loop.
    reader = gguf.GGUFReader(str(path))
    (tensor,) = [t for t in reader.tensors if t.name == "token_embd.weight"]
    assert tensor.tensor_type.name == qtype
    matrix = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(30522, 384)
    king = 2332
    out = neighbors_json("king", "--top", 5, "--model", path)
    assert out["query_ids"] == [king] and out["quantization"] == qtype
    expected = top_by_loop(matrix, king, 5)
    assert [n["id"] for n in out["neighbors"]] == [i for i, _ in expected]
    np.testing.assert_allclose(
        [n["similarity"] for n in out["neighbors"]], [s for _, s in expected], atol=1e-5
    )
    # The GGUF's WordPiece tokenizer splits as the folder's does.
    for text in ("unaffable café", "king"):
        a = cli("tokenize", text, "--model", path, "--format", "json")
        b = cli("tokenize", text, "--model", minilm_folder(), "--format", "json")
        assert json.loads(a.stdout)[0]["ids"] == json.loads(b.stdout)[0]["ids"]

    store = tmp_path / "ollama-models"
    proc = run_example("make_ollama_store.py", store, path, "--name", "all-minilm")
    assert proc.stdout.count("wrote ") == 2
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    from_store = neighbors_json("king", "--top", 5, "--model", "ollama:all-minilm")
    assert from_store["model"] == "ollama:all-minilm:latest"
    assert from_store["neighbors"] == out["neighbors"]


def test_gguf_of_tiny_llama_keeps_its_tokenizer(tmp_path: Path, llama_dir: Path) -> None:
    path = tmp_path / "tiny-llama.gguf"
    run_example("make_gguf.py", path, "--from", llama_dir, "--type", "F16")
    for text in ("the king", "Hello €"):
        a = cli("tokenize", text, "--model", path, "--format", "json")
        b = cli("tokenize", text, "--model", llama_dir, "--format", "json")
        assert a.exit_code == 0, a.stderr
        assert json.loads(a.stdout)[0]["ids"] == json.loads(b.stdout)[0]["ids"]
    # The untied lm_head went in as output.weight.
    head = tensors(llama_dir)["lm_head.weight"]
    out = neighbors_json("--id", 372, "--top", 3, "--model", path, "--embeddings", "output")
    assert [n["id"] for n in out["neighbors"]] == [i for i, _ in top_by_loop(head, 372, 3)]


def test_scripts_refuse_to_write_over_files(tmp_path: Path) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep me")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / "make_tiny_llama.py"), str(folder)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert proc.stderr.strip().endswith(f"{folder} exists and is not an empty folder")
    assert (folder / "mine.txt").read_text() == "keep me"
