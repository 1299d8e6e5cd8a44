"""GGUF files (llama.cpp, Ollama, LM Studio) as a --model: each checked against the checkpoint
it was written from (matrix, tokenization, display, special tokens), quantized ones against
the full-precision neighbours, and damaged ones for one clear line and no cache entry.

The files are written here with the ``gguf`` package's writer and quantizers, laid out as
llama.cpp's converter lays them out (``gguf_files.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from checkpoints import gpt2_tokenizer, llama_tokenizer, minilm_folder
from gguf_files import (
    bert_vocab,
    checkpoint_tensor,
    gpt2_vocab,
    llama_vocab,
    quantized_reference,
    write_gguf,
)
from helpers import heavy_imports, run_cli

from tokneigh.errors import ModelNotFoundError
from tokneigh.sources.models import resolve
from tokneigh.store import entries, layout
from tokneigh.store import listing as store_listing

# One cache for the module: every entry is built once (the damaged-file tests use their own).
SHARED_CACHE = True

MINILM_TYPES = ("F32", "F16", "Q8_0", "Q4_0")


def _checkpoint(folder: Path, config: dict, tokenizer, tensors: dict[str, np.ndarray]) -> Path:
    """A safetensors checkpoint written with numpy (no torch: this file runs in seconds)."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    save_file(tensors, str(folder / "model.safetensors"))
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """GPT-2-shaped (its real tokenizer, random 50,257 x 32), Llama-style (SentencePiece-style
    BPE with byte fallback, random 479 x 32 and an untied lm_head), MiniLM (real weights)."""
    folder = tmp_path_factory.mktemp("checkpoints")
    rng = np.random.default_rng(5)
    gpt2 = _checkpoint(
        folder / "gpt2",
        {"model_type": "gpt2", "architectures": ["GPT2Model"], "vocab_size": 50257},
        gpt2_tokenizer(),
        {"wte.weight": rng.standard_normal((50257, 32), dtype=np.float32)},
    )
    tokenizer = llama_tokenizer()
    rows = len(tokenizer)
    llama = _checkpoint(
        folder / "llama",
        {
            "model_type": "llama",
            "architectures": ["LlamaForCausalLM"],
            "vocab_size": rows,
            "tie_word_embeddings": False,
        },
        tokenizer,
        {
            "model.embed_tokens.weight": rng.standard_normal((rows, 32), dtype=np.float32),
            "lm_head.weight": rng.standard_normal((rows, 32), dtype=np.float32),
        },
    )
    return {"gpt2": gpt2, "llama": llama, "minilm": minilm_folder()}


@pytest.fixture(scope="module")
def files(tmp_path_factory, checkpoints) -> dict[str, Path]:
    """name -> GGUF file: gpt2-*, llama-* (with output.weight), minilm-* (real weights)."""
    gpt2_dir, llama_dir = checkpoints["gpt2"], checkpoints["llama"]
    folder = tmp_path_factory.mktemp("gguf")
    out = {}
    gpt2 = checkpoint_tensor(gpt2_dir, "wte.weight")
    out["gpt2-F32"] = write_gguf(folder / "gpt2-F32.gguf", gpt2_vocab(gpt2_dir), gpt2)
    llama = checkpoint_tensor(llama_dir, "embed_tokens.weight")
    head = checkpoint_tensor(llama_dir, "lm_head.weight")
    for q in ("F32", "Q8_0", "Q4_0"):
        out[f"llama-{q}"] = write_gguf(
            folder / f"llama-{q}.gguf", llama_vocab(llama_dir), llama, q, output=head
        )
    out["llama-tied"] = write_gguf(folder / "llama-tied.gguf", llama_vocab(llama_dir), llama)
    out["llama-merges"] = write_gguf(
        folder / "llama-merges.gguf", llama_vocab(llama_dir, with_merges=True), llama
    )
    minilm = checkpoint_tensor(minilm_folder(), "word_embeddings.weight")
    for q in MINILM_TYPES:
        out[f"minilm-{q}"] = write_gguf(
            folder / f"minilm-{q}.gguf", bert_vocab(minilm_folder()), minilm, q
        )
    return out


def _entry(model: str | Path, embeddings: str = "input", lines: list[str] | None = None):
    return entries.get(
        resolve(str(model)),
        layout.default_root(),
        embeddings,
        report=(lines.append if lines is not None else lambda _: None),
    )


class _Served:
    """What an entry would serve, without writing one (a 50,257-token entry's index takes
    seconds to build): the extracted matrix, its meta fields, a codec on its tokenizer."""

    def __init__(self, model: str | Path, folder: Path) -> None:
        from tokneigh.formats.extract import extract
        from tokneigh.tokens.codec import TokenCodec
        from tokneigh.tokens.display import detect_style

        found = extract(resolve(str(model)), lambda _: None)
        self.matrix = found.matrix
        self.tensor, self.quantization = found.tensor, found.quantization
        folder.mkdir(parents=True)
        (folder / "tokenizer.json").write_text(found.tokenizer_json, encoding="utf-8")
        self.meta = {
            "token_style": detect_style(json.loads(found.tokenizer_json)),
            "special_ids": found.special_ids,
            "vocab_size": found.matrix.shape[0],
        }
        self.tokenizer_path = folder / "tokenizer.json"
        self.codec = TokenCodec(self.tokenizer_path, **_codec_args(self.meta))
        self.meta["tokenizer_size"] = self.codec.size


def _codec_args(meta: dict) -> dict:
    return {"style": meta["token_style"], "special_ids": meta["special_ids"]}


_SERVED: dict[str, _Served] = {}
_EXTRACTED: dict[str, Any] = {}


def _extracted(model: Path):
    """What the build reads from a file (memoized: several tests look at the same one)."""
    from tokneigh.formats.extract import extract

    if str(model) not in _EXTRACTED:
        _EXTRACTED[str(model)] = extract(resolve(str(model)), lambda _: None)
    return _EXTRACTED[str(model)]


def _served(model: str | Path, tmp_path_factory) -> _Served:
    key = str(model)
    if key not in _SERVED:
        _SERVED[key] = _Served(model, tmp_path_factory.mktemp("served") / "t")
    return _SERVED[key]


def _pair(family: str, files, checkpoints, tmp_path_factory, variant: str = "F32"):
    """(GGUF, checkpoint) as served: cache entries for the small Llama-style vocabulary, and
    what entries would serve for the large ones (their builds cost seconds)."""
    if family != "llama":
        return (
            _served(files[f"{family}-{variant}"], tmp_path_factory),
            _served(checkpoints[family], tmp_path_factory),
        )
    return _entry(files[f"{family}-{variant}"]), _entry(checkpoints[family])


# --- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["gpt2", "llama", "minilm"])
def test_an_f32_file_gives_exactly_the_safetensors_entry(
    files, checkpoints, family, tmp_path_factory
):
    ggml, ref = _pair(family, files, checkpoints, tmp_path_factory)
    if isinstance(ggml, _Served):
        assert (ggml.tensor, ggml.quantization) == ("token_embd.weight", {ggml.tensor: "F32"})
        np.testing.assert_array_equal(ggml.matrix, ref.matrix)
    else:
        assert ggml.meta["tensor"] == "token_embd.weight"
        assert ggml.meta["quantization"] == {"token_embd.weight": "F32"}
        assert ggml.meta["source"] == "gguf"
        np.testing.assert_array_equal(np.asarray(ggml.unit), np.asarray(ref.unit))
        np.testing.assert_array_equal(ggml.norms, ref.norms)
    # The same display family and the same hidden (special) tokens as the checkpoint's.
    assert ggml.meta["token_style"] == ref.meta["token_style"]
    assert ggml.meta["special_ids"] == ref.meta["special_ids"]
    assert ggml.meta["tokenizer_size"] == ref.meta["tokenizer_size"]


@pytest.mark.parametrize("name", ["llama-Q8_0", "llama-Q4_0", "minilm-F16", "minilm-Q4_0"])
def test_a_quantized_file_is_dequantized_as_gguf_does_it_whole(files, checkpoints, name):
    """Block by block, the rows gguf's own reader and dequantizer make of the whole tensor."""
    import gguf

    family, qtype = name.split("-")
    extracted = _extracted(files[name])
    assert extracted.quantization == {"token_embd.weight": qtype}
    if family == "llama":  # (gguf's reader takes seconds on the larger token lists)
        # Independent of tokneigh's header parser: gguf's own, memory-mapped reader.
        reader = gguf.GGUFReader(files[name])
        (tensor,) = [t for t in reader.tensors if t.name == "token_embd.weight"]
        whole = gguf.quants.dequantize(np.asarray(tensor.data), tensor.tensor_type)
        np.testing.assert_array_equal(extracted.matrix, whole.astype(np.float32))
    suffix = {"gpt2": "wte.weight", "llama": "embed_tokens.weight"}.get(
        family, "word_embeddings.weight"
    )
    source = checkpoint_tensor(checkpoints[family], suffix)
    np.testing.assert_array_equal(extracted.matrix, quantized_reference(source, qtype))


def _top10(unit: np.ndarray, ids: np.ndarray, hidden: set[int]) -> list[set[int]]:
    scores = unit[ids] @ unit.T
    scores[np.arange(len(ids)), ids] = -np.inf  # the query itself
    scores[:, sorted(hidden)] = -np.inf
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    return [set(row.tolist()) for row in top]


def _unit(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_quantized_minilm_neighbours_agree_with_full_precision(
    files, checkpoints, tmp_path_factory
):
    """Overlap of the top 10 (the query and special tokens left out) on 400 sampled tokens of
    the real all-MiniLM-L6-v2 weights, against the safetensors matrix."""

    full = checkpoint_tensor(checkpoints["minilm"], "word_embeddings.weight")
    hidden = set(_served(checkpoints["minilm"], tmp_path_factory).meta["special_ids"])
    rng = np.random.default_rng(0)
    ids = rng.choice([i for i in range(len(full)) if i not in hidden], 400, False)
    reference = _top10(_unit(full), ids, hidden)
    overlap = {}
    for qtype in MINILM_TYPES[1:]:  # (F32 is the same matrix: tested above)
        matrix = _extracted(files[f"minilm-{qtype}"]).matrix
        tops = _top10(_unit(matrix), ids, hidden)
        overlap[qtype] = float(np.mean([len(a & b) / 10 for a, b in zip(reference, tops)]))
    print("top-10 overlap with full precision:", overlap)
    assert overlap["F16"] >= 0.9
    assert overlap["Q8_0"] >= 0.9
    assert 0.3 < overlap["Q4_0"] < 1.0  # reported, not a bound: 4 bits do move neighbours


def test_a_4_bit_file_notes_that_quantization_moves_neighbours(files, tmp_path):
    for name, noted in (("llama-Q4_0", True), ("llama-F32", False), ("llama-Q8_0", False)):
        lines: list[str] = []
        entries.get(resolve(str(files[name])), tmp_path / name, report=lines.append)
        notes = [line for line in lines if "quantization" in line]
        assert len(notes) == int(noted), lines
        if noted:
            assert notes[0].startswith("note: ") and "Q4_0" in notes[0]


def test_cache_list_shows_the_quantization(files, checkpoints):
    from tokneigh.cli.reports import CacheListing

    _entry(files["llama-Q8_0"])
    _entry(checkpoints["llama"])
    listing = run_cli("cache", "list", "--format", "json", env={})
    assert listing.returncode == 0, listing.stderr
    rows = {row["path"]: row for row in json.loads(listing.stdout)}
    assert rows[str(files["llama-Q8_0"].resolve())]["quantization"] == "Q8_0"
    assert rows[str(checkpoints["llama"].resolve())]["quantization"] is None
    root = layout.default_root()
    (table,) = CacheListing(str(root), store_listing.list_entries(root)).human()
    names = [row[0] for row in table.rows]
    assert "gguf0/llama-Q8_0.gguf (Q8_0)" in names, names


# --- the tokenizer ---------------------------------------------------------------------------

_WORDS = (
    "The king and the queen walked to the market with Mike and Anna . A banana , an apple "
    "and a cherry : Paris is the capital of France ; café crème brûlée naïve résumé "
    "Numbers 0 1 2 3 42 1000 2024 hello world tokenization unbelievable don't it's we'll "
    "NASA GPT-2 e-mail foo_bar x=y+1 (parens) [brackets] {braces} <tags> # @ $ % ^ & * "
    "日本語 中文 한국어 Ελληνικά русский עברית العربية 🙂 👍🏽 \u200b \u00a0"
).split(" ")


def _strings(specials: list[str], count: int = 300) -> list[str]:
    rng = random.Random(13)
    glue = [" ", "  ", "", "\n", "\t", " \n ", "-", "'"]
    out = ["", " ", "   ", "\n\n", "hello", " hello", "Hello world!"]
    while len(out) < count:
        words = rng.choices(_WORDS + specials, k=rng.randint(1, 8))
        text = "".join(w + rng.choice(glue) for w in words)
        if rng.random() < 0.3:
            text = text.upper() if rng.random() < 0.5 else text.title()
        out.append(text if rng.random() < 0.8 else " " + text)
    return out


@pytest.mark.parametrize("family", ["gpt2", "llama", "minilm"])
def test_tokenization_is_the_checkpoints_own(files, checkpoints, family, tmp_path_factory):
    from tokenizers import Tokenizer

    variants = ["F32", "merges"] if family == "llama" else ["F32"]
    reference = Tokenizer.from_file(str(checkpoints[family] / "tokenizer.json"))
    reference.no_padding()
    reference.no_truncation()
    specials = [t.content for t in reference.get_added_tokens_decoder().values()]
    texts = _strings(specials)
    expected = [reference.encode(t, add_special_tokens=False).ids for t in texts]
    for variant in variants:
        ggml, _ = _pair(family, files, checkpoints, tmp_path_factory, variant)
        got = [ggml.codec.encode(t) for t in texts]
        mismatches = [(t, e, g) for t, e, g in zip(texts, expected, got) if e != g]
        assert not mismatches, (variant, len(mismatches), mismatches[:3])


@pytest.mark.parametrize("family", ["gpt2", "llama", "minilm"])
def test_every_token_is_shown_as_the_checkpoint_shows_it(
    files, checkpoints, family, tmp_path_factory
):
    """Byte tokens (<0xNN>) as bytes, "▁" as a space, "##" continuations, specials hidden."""
    ggml, ref = _pair(family, files, checkpoints, tmp_path_factory)
    size = ref.meta["vocab_size"]
    ids = range(size) if size < 1000 else random.Random(1).sample(range(size), 3000)
    for i in [*ids, *ref.meta["special_ids"]]:
        assert ggml.codec.shown(i) == ref.codec.shown(i), i
        assert ggml.codec.is_special(i) == ref.codec.is_special(i), i


def test_wordpiece_vocabulary_is_back_in_wordpiece_form(files, tmp_path_factory):
    from tokenizers import Tokenizer

    ggml = _served(files["minilm-F32"], tmp_path_factory)
    vocab = Tokenizer.from_file(str(ggml.tokenizer_path)).get_vocab()
    lines = (minilm_folder() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab == {token: i for i, token in enumerate(lines)}


def test_tokenize_without_a_cache_entry(files, tmp_path):
    result = run_cli(
        "tokenize", "unbelievable kings", "--format", "json", "--model",
        str(files["minilm-Q8_0"]), env={"TOKNEIGH_CACHE_DIR": str(tmp_path / "c")},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    from tokenizers import Tokenizer

    reference = Tokenizer.from_file(str(minilm_folder() / "tokenizer.json"))
    reference.no_padding()
    expected = reference.encode("unbelievable kings", add_special_tokens=False)
    (got,) = json.loads(result.stdout)
    assert (got["ids"], got["tokens"]) == (expected.ids, expected.tokens)
    assert not _entries(tmp_path / "c")


# --- output embeddings -----------------------------------------------------------------------


def test_output_weight_is_the_output_matrix(files, checkpoints):
    ggml = _entry(files["llama-F32"], "output")
    ref = _entry(checkpoints["llama"], "output")
    assert ggml.meta["tensor"] == "output.weight"
    np.testing.assert_array_equal(np.asarray(ggml.unit), np.asarray(ref.unit))


def test_a_file_without_output_weight_is_tied_and_serves_the_input(files):
    from tokneigh.api import loading as api

    lines: list[str] = []
    emb = api.load(str(files["llama-tied"]), embeddings="output", report=lines.append)
    assert emb.embeddings == "input"
    assert any(line.startswith("note: ") and "output.weight" in line for line in lines), lines


# --- where files come from: paths, Ollama's store, freshness ----------------------------------


def test_resolve_kinds(files, tmp_path):
    source = resolve(str(files["minilm-F16"]))
    assert (source.kind, source.location) == ("gguf", str(files["minilm-F16"].resolve()))
    blob = tmp_path / "sha256-0123"  # an Ollama blob: no suffix, GGUF's magic
    blob.write_bytes(files["minilm-F16"].read_bytes()[:64])
    assert resolve(str(blob)).kind == "gguf"
    other = tmp_path / "weights.bin"
    other.write_bytes(b"not a model")
    with pytest.raises(ModelNotFoundError, match="is a file, not the folder"):
        resolve(str(other))
    with pytest.raises(ModelNotFoundError, match="no such file"):
        resolve("missing-model.gguf")


def _ollama_store(root: Path, files: dict[str, Path]) -> Path:
    def add(registry: str, owner: str, name: str, tag: str, file: Path) -> None:
        data = file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (root / "blobs").mkdir(parents=True, exist_ok=True)
        (root / "blobs" / f"sha256-{digest}").write_bytes(data)
        manifest = root / "manifests" / registry / owner / name / tag
        manifest.parent.mkdir(parents=True, exist_ok=True)
        layers = [
            {"mediaType": "application/vnd.ollama.image.license", "digest": "sha256:" + "0" * 64},
            {"mediaType": "application/vnd.ollama.image.model", "digest": f"sha256:{digest}"},
        ]
        manifest.write_text(json.dumps({"schemaVersion": 2, "layers": layers}))

    add("registry.ollama.ai", "library", "tinyllama", "latest", files["llama-Q4_0"])
    add("registry.ollama.ai", "someone", "all-minilm", "q8", files["minilm-Q8_0"])
    return root


def test_an_ollama_model_is_read_from_its_store(files, tmp_path, monkeypatch):
    store = _ollama_store(tmp_path / "ollama", files)
    monkeypatch.setenv("OLLAMA_MODELS", str(store))
    source = resolve("ollama:tinyllama")
    assert source.kind == "gguf" and source.name == "ollama:tinyllama:latest"
    assert Path(source.location).read_bytes() == files["llama-Q4_0"].read_bytes()
    owned = resolve("ollama:someone/all-minilm:q8")
    assert Path(owned.location).parent == (store / "blobs").resolve()
    assert Path(owned.location).read_bytes() == files["minilm-Q8_0"].read_bytes()
    args = ("neighbors", "king", "--top", "5", "--format", "json", "--model")
    pulled = run_cli(*args, "ollama:tinyllama")
    assert pulled.returncode == 0, pulled.stderr
    (found,) = json.loads(pulled.stdout)
    assert found["model"] == "ollama:tinyllama:latest"
    (direct,) = json.loads(run_cli(*args, str(files["llama-Q4_0"])).stdout)
    assert found["neighbors"] == direct["neighbors"]
    missing = run_cli("neighbors", "king", "--model", "ollama:nomic-embed-text")
    assert missing.returncode == 1
    line = _one_error_line(missing)
    assert "ollama:nomic-embed-text:latest" in line
    assert "tinyllama:latest" in line and "someone/all-minilm:q8" in line


def test_a_changed_file_is_rebuilt(files, tmp_path):
    path = tmp_path / "changing.gguf"
    path.write_bytes(files["llama-F32"].read_bytes())
    first = _entry(path)
    lines: list[str] = []
    assert _entry(path, lines=lines).meta["created"] == first.meta["created"]
    assert not lines  # fresh: no build
    path.write_bytes(files["llama-Q4_0"].read_bytes())
    os.utime(path, ns=(first.meta["fingerprint"]["files"]["changing.gguf"][1] + 10**9,) * 2)
    rebuilt = _entry(path, lines=lines)
    assert any("building" in line for line in lines), lines
    assert rebuilt.meta["quantization"] == {"token_embd.weight": "Q4_0"}


def test_a_warm_query_imports_neither_gguf_nor_transformers(files):
    model = str(files["llama-Q4_0"])
    _entry(model)
    heavy = ["gguf", "torch", "transformers", "huggingface_hub"]
    for args in (["neighbors", "king", "--top", "5"], ["tokenize", "kings"]):
        loaded = heavy_imports([*args, "--model", model, "--format", "json"], heavy)
        assert loaded == [], loaded


# --- damaged files: one line each, nothing cached --------------------------------------------


def _entries(root: Path) -> list[Path]:
    return [p for p in root.iterdir() if layout.is_entry_folder(p)] if root.exists() else []


def _one_error_line(result: subprocess.CompletedProcess) -> str:
    errors = [line for line in result.stderr.splitlines() if line.startswith("tokneigh: error: ")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def _patched(data: bytes, offset: int, value: int) -> bytes:
    return data[:offset] + value.to_bytes(8, "little") + data[offset + 8 :]


def _bad_files(files: dict[str, Path], folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, what its error line must say)."""
    good = files["minilm-Q8_0"].read_bytes()
    tokens_key = good.find(b"tokenizer.ggml.tokens")
    count_at = tokens_key + len(b"tokenizer.ggml.tokens") + 8  # after type and item type
    minilm = checkpoint_tensor(minilm_folder(), "word_embeddings.weight")[:2000]
    vocab = bert_vocab(minilm_folder())
    small = {**vocab, "tokens": vocab["tokens"][:2000], "types": vocab["types"][:2000]}
    cases: dict[str, tuple[bytes | None, str]] = {
        "magic.gguf": (b"GGML" + good[4:4096], "not the magic b'GGUF'"),
        "empty.gguf": (b"", "starts with nothing"),
        "header.gguf": (good[:300], "truncated"),
        "tensor.gguf": (good[: len(good) - 100_000], "truncated"),
        "tensors.gguf": (_patched(good, 8, 2**60), "1,152,921,504,606,846,976 tensors"),
        "kvs.gguf": (_patched(good, 16, 2**60), "1,152,921,504,606,846,976 metadata entries"),
        "array.gguf": (_patched(good, count_at, 2**60), "an array of 1,152,921,504,606,846,976"),
        "version.gguf": (good[:4] + (7).to_bytes(4, "little") + good[8:4096], "version 7"),
    }
    out = {}
    for name, (data, says) in cases.items():
        (folder / name).write_bytes(data or b"")
        out[name] = (folder / name, says)
    renamed = write_gguf(folder / "unnamed.gguf", small, minilm)
    raw = renamed.read_bytes().replace(b"token_embd.weight", b"token_embx.weight")
    renamed.write_bytes(raw)
    out["unnamed.gguf"] = (renamed, "holds no tensor token_embd.weight")
    out["unknown.gguf"] = (
        write_gguf(folder / "unknown.gguf", {**small, "model": "t5x"}, minilm),
        "tokenizer model 't5x' is not one tokneigh can build",
    )
    out["rows.gguf"] = (
        write_gguf(folder / "rows.gguf", small, minilm[:1999]),
        "has 1,999 rows, but the file's token list has 2,000 tokens",
    )
    return out


def test_damaged_files_fail_in_one_line_and_cache_nothing(files, tmp_path):
    from tokneigh.cli.errors import describe

    root = tmp_path / "cache"
    bad = _bad_files(files, tmp_path)
    for name, (path, says) in bad.items():
        with pytest.raises(ModelNotFoundError) as caught:
            entries.get(resolve(str(path)), root, report=lambda _: None)
        line, code = describe(caught.value)
        assert code == 1 and says in line and "\n" not in line, (name, line)
        assert len(line) < 300, (name, line)
    assert not _entries(root)
    # The command line: that one line on stderr, no traceback, nothing cached.
    for name in ("tensors.gguf", "unknown.gguf"):
        path, says = bad[name]
        result = run_cli(
            "neighbors", "king", "--model", str(path), env={"TOKNEIGH_CACHE_DIR": str(root)}
        )
        assert result.returncode == 1, (name, result.stderr)
        assert says in _one_error_line(result), name
    assert not _entries(root)
