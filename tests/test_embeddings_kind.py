"""--embeddings input|output: an untied LM head is its own matrix, cached apart; a tied model
(or one with no LM head) says so and serves its input matrix."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import cli, run_cli
from safetensors import safe_open
from safetensors.numpy import save_file

import tokneigh
from tokneigh.errors import UsageError
from tokneigh.formats.hf_checkpoint import pick_output_tensor


def tensors(folder: Path) -> dict[str, np.ndarray]:
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}


def raw(emb) -> np.ndarray:
    return np.asarray(emb.unit) * np.asarray(emb.norms)[:, None]


def copy_checkpoint(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_llama_output_is_its_lm_head_cached_apart(llama_dir: Path) -> None:
    notes: list[str] = []
    inp = tokneigh.load(str(llama_dir), report=notes.append)
    out = tokneigh.load(str(llama_dir), embeddings="output", report=notes.append)
    assert (inp.embeddings, out.embeddings) == ("input", "output")
    assert inp.meta["tensor"] == "model.embed_tokens.weight"
    assert out.meta["tensor"] == "lm_head.weight" and out.meta["embeddings"] == "output"
    assert out.path != inp.path and out.path.parent == inp.path.parent
    weights = tensors(llama_dir)
    np.testing.assert_allclose(raw(out), weights["lm_head.weight"], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(raw(inp), weights["model.embed_tokens.weight"], rtol=1e-5, atol=1e-7)
    assert not any("same matrix" in n for n in notes)
    # Different matrices, different neighbourhoods (random untied weights).
    a = [n.id for n in inp.neighbors("king", k=10).neighbors]
    b = [n.id for n in out.neighbors("king", k=10).neighbors]
    assert a[0] == b[0] and a != b
    # Served from the cache the second time: nothing rebuilt, nothing reported.
    notes.clear()
    again = tokneigh.load(str(llama_dir), embeddings="output", report=notes.append)
    assert again.path == out.path and again.meta["created"] == out.meta["created"] and not notes


def test_entry_names_input_unchanged_output_apart(llama_dir: Path) -> None:
    identity = f"local:{llama_dir.resolve()}"
    inp = tokneigh.load(str(llama_dir))
    out = tokneigh.load(str(llama_dir), embeddings="output")
    # The input entry's name is exactly what it was before --embeddings existed.
    assert inp.path.name == f"ckpt--{hashlib.sha256(identity.encode()).hexdigest()[:16]}"
    key = hashlib.sha256(f"{identity}#output".encode()).hexdigest()[:16]
    assert out.path.name == f"ckpt-output--{key}"


@pytest.mark.parametrize(
    ("fixture", "reason"),
    [
        ("gpt2_lm_dir", "tie_word_embeddings"),  # GPT2LMHeadModel: tied, no lm_head saved
        ("gpt2_dir", "tie_word_embeddings"),  # GPT2Model: no head at all
        ("minilm_dir", "no output matrix of its own"),  # BertModel, old config: no key at all
        ("bert_dir", "tie_word_embeddings"),
    ],
)
def test_tied_models_serve_the_input_matrix_and_say_so(
    fixture: str, reason: str, request: pytest.FixtureRequest, cache_dir: Path
) -> None:
    folder = request.getfixturevalue(fixture)
    notes: list[str] = []
    out = tokneigh.load(str(folder), embeddings="output", report=notes.append)
    assert out.embeddings == "input"
    [note] = [n for n in notes if "same matrix" in n]
    assert reason in note and "serving the input embeddings" in note
    inp = tokneigh.load(str(folder))
    assert out.path == inp.path
    assert not [p for p in cache_dir.iterdir() if "-output--" in p.name]  # nothing cached twice


def test_config_that_ties_wins_over_a_saved_lm_head(llama_dir: Path, tmp_path: Path) -> None:
    folder = copy_checkpoint(llama_dir, tmp_path / "tied-llama")
    config = json.loads((folder / "config.json").read_text())
    config["tie_word_embeddings"] = True  # transformers would then ignore lm_head.weight
    (folder / "config.json").write_text(json.dumps(config))
    notes: list[str] = []
    out = tokneigh.load(str(folder), embeddings="output", report=notes.append)
    assert out.embeddings == "input" and any("tie_word_embeddings" in n for n in notes)


def test_config_without_the_key_follows_the_config_class_default(
    llama_dir: Path, gpt2_lm_dir: Path, tmp_path: Path
) -> None:
    # LlamaConfig defaults to untied: a saved lm_head.weight is the output matrix.
    llama = copy_checkpoint(llama_dir, tmp_path / "llama-nokey")
    config = json.loads((llama / "config.json").read_text())
    del config["tie_word_embeddings"]
    (llama / "config.json").write_text(json.dumps(config))
    assert tokneigh.load(str(llama), embeddings="output").meta["tensor"] == "lm_head.weight"
    # GPT2Config defaults to tied: a saved lm_head.weight is ignored, as transformers does.
    gpt2 = copy_checkpoint(gpt2_lm_dir, tmp_path / "gpt2-nokey")
    config = json.loads((gpt2 / "config.json").read_text())
    del config["tie_word_embeddings"]
    (gpt2 / "config.json").write_text(json.dumps(config))
    weights = tensors(gpt2)
    weights["lm_head.weight"] = weights["transformer.wte.weight"] * 2
    save_file(weights, str(gpt2 / "model.safetensors"), metadata={"format": "pt"})
    notes: list[str] = []
    assert tokneigh.load(str(gpt2), embeddings="output", report=notes.append).embeddings == "input"
    assert any("ties the word embeddings by default" in n for n in notes)


def test_sharded_checkpoint_reads_only_the_lm_head_shard(llama_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "sharded"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(llama_dir / name, folder / name)
    weights = tensors(llama_dir)
    head = {"lm_head.weight": weights.pop("lm_head.weight")}
    save_file(weights, str(folder / "model-00001-of-00002.safetensors"))
    save_file(head, str(folder / "model-00002-of-00002.safetensors"))
    weight_map = {n: "model-00001-of-00002.safetensors" for n in weights}
    weight_map["lm_head.weight"] = "model-00002-of-00002.safetensors"
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    out = tokneigh.load(str(folder), embeddings="output")
    np.testing.assert_allclose(raw(out), head["lm_head.weight"], rtol=1e-5, atol=1e-7)
    # The shard of the LM head missing: one clear error, not a traceback.
    (folder / "model-00002-of-00002.safetensors").unlink()
    tokneigh.load(str(folder))  # the input matrix does not need it
    with pytest.raises(tokneigh.TokneighError, match="missing"):
        tokneigh.load(str(folder), embeddings="output", rebuild=True)


def test_pytorch_bin_checkpoint_goes_through_transformers(llama_dir: Path, tmp_path: Path) -> None:
    import torch
    from transformers import LlamaForCausalLM

    folder = tmp_path / "bin"
    folder.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(llama_dir / name, folder / name)
    model = LlamaForCausalLM.from_pretrained(str(llama_dir))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    out = tokneigh.load(str(folder), embeddings="output")
    assert out.meta["tensor"] == "lm_head.weight"
    np.testing.assert_allclose(raw(out), tensors(llama_dir)["lm_head.weight"], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("fixture", ["llama_dir", "gpt2_lm_dir"])
def test_output_tensor_is_what_transformers_calls_the_output_embeddings(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    import transformers

    folder = request.getfixturevalue(fixture)
    config = json.loads((folder / "config.json").read_text())
    model = getattr(transformers, config["architectures"][0]).from_pretrained(str(folder))
    head = model.get_output_embeddings().weight
    names = list(tensors(folder))
    if head is model.get_input_embeddings().weight:  # tied: the checkpoint saves no head
        assert pick_output_tensor(names) is None
    else:
        expected = next(n for n, p in model.named_parameters() if p is head)
        assert pick_output_tensor(names) == expected == "lm_head.weight"


def test_bad_kind_is_a_usage_error(llama_dir: Path) -> None:
    with pytest.raises(UsageError, match="input' or 'output"):
        tokneigh.load(str(llama_dir), embeddings="both")


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_commands_take_embeddings(llama_dir: Path) -> None:
    import tokneigh.cli  # noqa: F401

    model = ["--model", str(llama_dir)]
    out_api = tokneigh.load(str(llama_dir), embeddings="output")
    result = cli("neighbors", "king", "--top", "5", "--format", "json", "--embeddings", "output",
                 *model)
    assert result.exit_code == 0, result.output
    got = [n["id"] for n in json.loads(result.stdout)[0]["neighbors"]]
    assert got == [n.id for n in out_api.neighbors("king", k=5).neighbors]

    result = cli("compare", "king", "queen", "--format", "json", "--embeddings", "output", *model)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cosine"] == pytest.approx(out_api.similarity("king", "queen"))

    # tokenize reads only the tokenizer, which both matrices share: it takes no --embeddings.
    result = cli("tokenize", "king", "--format", "json", *model)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["tokens"] == [" king"]

    result = cli("cache", "build", "--embeddings", "output", "--force", *model)
    assert result.exit_code == 0, result.output
    assert "(output embeddings)" in result.stdout and "-output--" in result.stdout


def test_cli_cache_list_and_clear_cover_both_matrices(llama_dir: Path) -> None:
    import tokneigh.cli  # noqa: F401

    tokneigh.load(str(llama_dir))
    tokneigh.load(str(llama_dir), embeddings="output")
    listed = cli("cache", "list")
    assert listed.exit_code == 0, listed.output
    assert "(output)" in listed.stdout
    cleared = cli("cache", "clear", "--model", str(llama_dir))
    assert cleared.exit_code == 0, cleared.output
    assert "removed 2 cached entries" in cleared.stdout and "(output)" in cleared.stdout


def test_cli_tied_note_and_bad_value_through_a_real_process(gpt2_lm_dir: Path) -> None:
    done = run_cli("neighbors", "king", "--top", "2", "--embeddings", "output",
                   "--model", str(gpt2_lm_dir))
    assert done.returncode == 0, done.stderr
    assert "same matrix; serving the input embeddings" in done.stderr
    done = run_cli("neighbors", "king", "--embeddings", "both", "--model", str(gpt2_lm_dir))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tokneigh: error: ")
    assert "--embeddings" in lines[0]


def test_cached_output_needs_neither_torch_nor_transformers(llama_dir: Path) -> None:
    script = (
        "import sys, tokneigh\n"
        f"emb = tokneigh.load({str(llama_dir)!r}, embeddings='output')\n"
        "emb.neighbors('king', k=3)\n"
        "print(emb.embeddings, 'torch' in sys.modules, 'transformers' in sys.modules)\n"
    )
    # The first run builds from safetensors (no torch either); the second is served cached.
    for _ in range(2):
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["output", "False", "False"]
