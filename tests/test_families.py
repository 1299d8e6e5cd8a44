"""Model families: GPT-2 (byte-level BPE), BERT (WordPiece) and Llama (SentencePiece BPE with
byte fallback) through the API and the CLI, on offline checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from checkpoints import LLAMA_BYTE_TOKENS


def test_llama_fixture_is_laid_out_like_llama(llama_dir: Path) -> None:
    data = json.loads((llama_dir / "tokenizer.json").read_text(encoding="utf-8"))
    vocab = data["model"]["vocab"]
    assert [vocab["<unk>"], vocab["<s>"], vocab["</s>"]] == [0, 1, 2]
    assert [vocab[t] for t in LLAMA_BYTE_TOKENS] == list(range(3, 259))
    assert data["model"]["byte_fallback"] is True
    assert data["pre_tokenizer"]["type"] == "Metaspace"
    # Only <unk> <s> </s> are added (special) tokens; byte tokens are plain vocabulary.
    assert sorted(t["content"] for t in data["added_tokens"]) == ["</s>", "<s>", "<unk>"]
    config = json.loads((llama_dir / "config.json").read_text())
    assert config["tie_word_embeddings"] is False
    assert config["vocab_size"] == len(vocab)


@pytest.mark.parametrize("fixture", ["gpt2_dir", "minilm_dir", "bert_dir", "llama_dir"])
def test_families_load(fixture: str, request: pytest.FixtureRequest) -> None:
    import tokneigh

    emb = tokneigh.load(str(request.getfixturevalue(fixture)))
    assert emb.neighbors("king", k=3).neighbors


# --- the CLI on each family ------------------------------------------------------------------

FAMILIES = ["gpt2_dir", "minilm_dir", "bert_dir", "llama_dir"]


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("families-cache")


@pytest.fixture
def cli(shared_cache: Path):
    import helpers

    def invoke(model: Path, *args: str):
        return helpers.cli(*args, "--model", str(model), "--cache-dir", str(shared_cache))

    return invoke


@pytest.mark.parametrize("fixture", FAMILIES)
def test_neighbors_tokenize_compare_on_every_family(
    fixture: str, request: pytest.FixtureRequest, cli
) -> None:
    model = request.getfixturevalue(fixture)
    result = cli(model, "neighbors", "king", "queen", "--top", "4", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [len(d["neighbors"]) for d in data] == [4, 4]
    # A one-token query is its own nearest neighbour (cosine 1 with itself).
    for item in data:
        if len(item["query_ids"]) == 1:
            assert item["neighbors"][0]["id"] == item["query_ids"][0]

    result = cli(model, "tokenize", "king", "banana", "--format", "json")
    assert result.exit_code == 0, result.output
    assert [d["text"] for d in json.loads(result.stdout)] == ["king", "banana"]

    result = cli(model, "compare", "king", "queen", "--format", "json")
    assert result.exit_code == 0, result.output
    assert -1.0 <= json.loads(result.stdout)["cosine"] <= 1.0

    result = cli(model, "neighbors", "king", "--top", "3")  # the Rich table renders too
    assert result.exit_code == 0, result.output
    assert "rank" in result.stdout and "\ufffd" not in result.stdout


def test_bert_style_shows_wordpiece_continuations(bert_dir: Path, cli) -> None:
    result = cli(bert_dir, "tokenize", "unaffable", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["tokens"] == ["una", "##ffa", "##ble"]
    result = cli(bert_dir, "tokenize", "unaffable")
    assert '["una", "##ffa", "##ble"]' in result.stdout


# --- Llama display: "▁word" as " word", <0xNN> as bytes, never U+FFFD --------------------------


@pytest.fixture(scope="module")
def llama(llama_dir: Path, shared_cache: Path):
    import tokneigh

    return tokneigh.load(str(llama_dir), cache_dir=shared_cache)


def test_llama_metaspace_pieces_show_their_leading_space(llama) -> None:
    assert llama.codec.style == "metaspace"
    t = llama.tokenize("the king")
    assert t.tokens == [" the", " king"]
    assert t.labels == ['" the"', '" king"']
    assert llama.neighbors("king", k=1).neighbors[0].label == '" king"'


def test_llama_byte_fallback_tokens_show_as_bytes(llama) -> None:
    # "€" is not in the training text: it falls back to its three UTF-8 bytes.
    t = llama.tokenize("€")
    assert t.ids[-3:] == [3 + 0xE2, 3 + 0x82, 3 + 0xAC]
    assert t.labels[-3:] == ['b"\\xe2"', 'b"\\x82"', 'b"\\xac"']
    assert t.tokens[-3:] == ["\\xe2", "\\x82", "\\xac"]
    # An ASCII byte token is still a byte (b"H"), distinct from a learned piece "H".
    assert llama.codec.label(3 + ord("H")) == 'b"H"'
    assert llama.codec.label(3 + ord("\n")) == 'b"\\x0a"'


def test_llama_special_tokens_show_verbatim(llama) -> None:
    assert [llama.codec.label(i) for i in (0, 1, 2)] == ["<unk>", "<s>", "</s>"]


def test_no_llama_token_displays_as_replacement_character(llama) -> None:
    for token_id in range(llama.vocab_size):
        assert "\ufffd" not in llama.codec.label(token_id)
        assert "\ufffd" not in llama.codec.text(token_id)


def test_llama_table_output_through_a_real_process(llama_dir: Path, shared_cache: Path) -> None:
    from helpers import run_cli

    done = run_cli(
        "tokenize", "king €", "--model", str(llama_dir), "--cache-dir", str(shared_cache)
    )
    assert done.returncode == 0, done.stderr
    assert '" king"' in done.stdout and 'b"\\xe2"' in done.stdout
    assert "\ufffd" not in done.stdout


# --- the tensor extract.py picks is the one transformers calls the input embeddings ------------


@pytest.mark.parametrize("fixture", FAMILIES)
def test_picked_tensor_is_transformers_input_embeddings(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    import transformers
    from safetensors import safe_open

    from tokneigh.formats.hf_checkpoint import pick_embedding_tensor

    folder = request.getfixturevalue(fixture)
    config = json.loads((folder / "config.json").read_text())
    model_class = getattr(transformers, config["architectures"][0])
    model = model_class.from_pretrained(str(folder))
    weight = model.get_input_embeddings().weight
    expected = next(n for n, p in model.named_parameters() if p is weight)
    with safe_open(str(folder / "model.safetensors"), framework="numpy") as handle:
        names = list(handle.keys())
    assert pick_embedding_tensor(names) == expected


@pytest.mark.parametrize("fixture", FAMILIES)
def test_exploring_commands_on_every_family(
    fixture: str, request: pytest.FixtureRequest, cli, tmp_path: Path
) -> None:
    """analogy, filters, verify, map and the shell: each works on each family, against numpy."""
    import numpy as np

    import tokneigh

    model = request.getfixturevalue(fixture)
    emb = tokneigh.load(str(model), cache_dir=None)

    result = cli(model, "analogy", "man", "king", "woman", "--top", "5", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["positive"] == ["king", "woman"] and data["negative"] == ["man"]
    unit = lambda w: emb.vector(w).astype(np.float64)  # noqa: E731
    target = unit("king") - unit("man") + unit("woman")
    target /= np.linalg.norm(target)
    inputs = {i for w in ("man", "king", "woman") for i in emb.tokenize(w).ids}
    for n in data["neighbors"]:
        assert n["id"] not in inputs
        assert n["similarity"] == pytest.approx(float(emb.unit[n["id"]] @ target), abs=1e-5)

    result = cli(model, "neighbors", "king", "--top", "5", "--words-only", "--dedupe",
                 "--format", "json")
    assert result.exit_code == 0, result.output
    shown = [n["token"] for n in json.loads(result.stdout)[0]["neighbors"]]
    assert len(shown) == 5 and all(any(ch.isalpha() for ch in t) for t in shown)
    folded = {t.strip().lower() for t in shown}
    assert len(folded) == len(shown)  # no two rows are case/space variants of one another

    result = cli(model, "verify", "king", "--top", "5", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["pearson"] > 0.99999 and report["top_k_agree"]

    png = tmp_path / "map.png"
    result = cli(model, "map", "king", "--top", "8", "--plot", str(png), "--format", "json")
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
