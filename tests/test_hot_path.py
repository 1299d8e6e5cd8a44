"""The cached query path: what it imports, and that its shortcuts change no result.

No test here measures time (benchmarks/bench.py does); they check that the shortcuts taken for
speed (the tokenizer index, the top-k cut-off, Typer without pydantic) give exactly what the
slow, obvious way gives.
"""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from helpers import heavy_imports, run_cli

import tokneigh
from tokneigh.space import core
from tokneigh.store import layout
from tokneigh.tokens import index as tokindex
from tokneigh.tokens.codec import TokenCodec, write_index
from tokneigh.tokens.display import BYTE_LEVEL, token_bytes

# One cache for the module: the GPT-2 entry is built once. Tests that damage it (the index,
# tokenizer.json) leave it whole again or rebuilt by the next load.
SHARED_CACHE = True

# --- imports --------------------------------------------------------------------------------

HEAVY = ["torch", "transformers", "huggingface_hub", "pydantic", "rich", "starlette", "uvicorn"]


def _loaded(*args: str) -> list[str]:
    """The heavy modules a fresh process imported to run ``tokneigh ARGS``."""
    return heavy_imports(list(args), HEAVY)


@pytest.fixture
def warm(gpt2_dir):
    """The gpt2 checkpoint, cached (with its tokenizer index) before the probe runs."""
    result = run_cli("neighbors", "Mike", "--model", str(gpt2_dir))
    assert result.returncode == 0, result.stderr
    return str(gpt2_dir)


@pytest.mark.parametrize(
    "args",
    [
        ["neighbors", "Mike", "--top", "20"],
        ["neighbors", "Mike", " Mike", "--id", "447", "--top", "5"],
        ["tokenize", "banana", "cosmic"],
        ["compare", "ban", "ana"],
    ],
)
def test_a_cached_query_never_imports_torch_transformers_or_pydantic(warm, args):
    loaded = _loaded(*args, "--model", warm)
    # (safetensors is allowed: the tokenizer index is a safetensors file.)
    assert not {"torch", "transformers", "huggingface_hub"} & set(loaded)
    assert "pydantic" not in loaded  # Typer's value coercion stays on the plain path


@pytest.mark.parametrize(
    "args",
    [
        ["neighbors", "Mike", "--top", "20"],
        ["tokenize", "banana"],
        ["compare", "ban", "ana"],
    ],
)
@pytest.mark.parametrize("fmt", ["json", "tsv"])
def test_machine_formats_never_import_rich(warm, args, fmt):
    loaded = _loaded(*args, "--format", fmt, "--model", warm)
    assert loaded == []


def test_a_cached_query_never_imports_the_maps_libraries(warm):
    # umap-learn (with numba and pynndescent), igraph and leidenalg serve `layout` alone.
    maps = ["umap", "numba", "pynndescent", "igraph", "leidenalg", "scipy", "matplotlib"]
    for args in (["neighbors", "Mike", "--top", "20"], ["neighbors", "Mike", "--format", "json"]):
        assert heavy_imports([*args, "--model", warm], maps) == []


def test_the_table_output_still_uses_rich(warm):
    assert "rich" in _loaded("neighbors", "Mike", "--model", warm)


# --- the tokenizer index --------------------------------------------------------------------


def _real_tokenizer(path):
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer


def _printable_vocab(tokenizer) -> list[str]:
    out = []
    for i in range(tokenizer.get_vocab_size(with_added_tokens=True)):
        data = token_bytes(tokenizer.id_to_token(i), BYTE_LEVEL)
        if data.isascii() and data.decode("ascii").isprintable():
            out.append(data.decode("ascii"))
    return out


def _strings(vocab: list[str], count: int, seed: int) -> list[str]:
    """Printable-ASCII text of every kind the fast encoder accepts, and some it declines."""
    rng = random.Random(seed)
    alphabet = [chr(c) for c in range(0x20, 0x7F)]
    spaced = " " * 10 + "'" * 4 + "abcdeABCDE0123"
    out = [
        "", " ", "  ", "\t", "a\tb", "line\nbreak", "café", "naïve", "日本語", "🙂", "a\u00a0b",
        "<|endoftext|>", "a<|endoftext|>b", "don't", "DON'T", "it's", "I'll", "we've", "they'd",
        "'s'", "''", "'''", "x'", " 's", "  's", "hello  world", "hello   ", "   hello",
        "1234567890123", "3.14", "1,000,000", "a1b2c3", "$5", "C++", "__init__", "...", "!?!",
    ]  # fmt: skip
    out += vocab
    for _ in range(count):
        kind = rng.randrange(4)
        if kind == 0:
            out.append("".join(rng.choices(alphabet, k=rng.randint(1, 30))))
        elif kind == 1:
            out.append("".join(rng.choices(spaced, k=rng.randint(1, 30))))
        elif kind == 2:
            out.append(" ".join(rng.choices(vocab, k=rng.randint(2, 6))))
        else:
            out.append("".join(rng.choices(vocab, k=rng.randint(2, 5))))
    return out


def test_the_index_encodes_exactly_as_the_tokenizer_does(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    path = emb.path / layout.TOKENIZER
    index = tokindex.open_index(path)
    assert index is not None and index.can_encode  # GPT-2's byte-level BPE qualifies
    tokenizer = _real_tokenizer(path)
    vocab = _printable_vocab(tokenizer)
    assert len(vocab) > 40_000
    strings = _strings(vocab, 10_000, seed=3)
    expected = tokenizer.encode_batch(strings, add_special_tokens=False)
    answered = 0
    for text, encoding in zip(strings, expected):
        ids = index.encode(text)
        if ids is not None:
            answered += 1
            assert ids == encoding.ids, text
        # And through the codec, whichever way it goes:
    assert answered > 0.99 * len(vocab)
    codec = emb.codec
    for text, encoding in zip(strings[:3000], expected):
        assert codec.encode(text) == encoding.ids, text


def test_the_index_declines_what_it_cannot_prove(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    index = tokindex.open_index(emb.path / layout.TOKENIZER)
    for text in ["café", "tab\there", "new\nline", "a<|endoftext|>b", "\x7f", "\x1f"]:
        assert index.encode(text) is None, text


def test_the_index_names_every_token_as_the_tokenizer_does(gpt2_dir, bert_dir, llama_dir):
    for folder in (gpt2_dir, bert_dir, llama_dir):
        emb = tokneigh.load(str(folder))
        path = emb.path / layout.TOKENIZER
        index = tokindex.open_index(path)
        assert index is not None
        tokenizer = _real_tokenizer(path)
        size = tokenizer.get_vocab_size(with_added_tokens=True)
        assert index.size == size == emb.codec.size
        for i in [*range(size + 5), -1]:
            expected = tokenizer.id_to_token(i) if i >= 0 else None
            assert index.raw(i) == expected, i


@pytest.mark.parametrize("family", ["bert", "llama"])
def test_other_families_encode_through_tokenizers(family, bert_dir, llama_dir):
    folder = {"bert": bert_dir, "llama": llama_dir}[family]
    emb = tokneigh.load(str(folder))
    index = tokindex.open_index(emb.path / layout.TOKENIZER)
    assert index is not None and not index.can_encode
    tokenizer = _real_tokenizer(emb.path / layout.TOKENIZER)
    for text in ["banana", "Hello world", "don't", "cosmic ray", "12345"]:
        assert emb.tokenize(text).ids == tokenizer.encode(text, add_special_tokens=False).ids


def test_a_changed_or_damaged_index_is_ignored_and_rebuilt(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    path = emb.path / layout.TOKENIZER
    index_file = emb.path / tokindex.INDEX
    assert index_file.is_file()
    good = index_file.read_bytes()

    index_file.write_bytes(good[:1000])  # truncated
    assert tokindex.open_index(path) is None
    index_file.write_bytes(b"\xff" * 8 + good[8:])  # a mangled header length
    assert tokindex.open_index(path) is None
    index_file.write_bytes(good[:8] + good[8:200].replace(b'"', b"'") + good[200:])  # bad JSON
    assert tokindex.open_index(path) is None
    index_file.write_bytes(b"garbage")
    assert tokindex.open_index(path) is None

    codec = TokenCodec(path, BYTE_LEVEL, [50256])  # works without it, and writes nothing
    assert not codec.has_index and index_file.read_bytes() == b"garbage"
    assert codec.encode("Mike") == _real_tokenizer(path).encode("Mike").ids
    write_index(path, BYTE_LEVEL, [50256])  # rebuilt by whoever owns the entry (the cache)
    assert tokindex.open_index(path) is not None
    assert TokenCodec(path, BYTE_LEVEL, [50256]).has_index

    # The index belongs to the exact bytes of tokenizer.json: any change voids it.
    original = path.read_bytes()
    path.write_bytes(original.replace(b'"Mike"', b'"Mikf"', 1))
    assert tokindex.open_index(path) is None
    path.write_bytes(original)
    assert tokindex.open_index(path) is not None


def test_a_damaged_tokenizer_json_is_still_caught_at_load(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    (emb.path / layout.TOKENIZER).write_text("{ not json")
    messages: list[str] = []
    again = tokneigh.load(str(gpt2_dir), report=messages.append)
    assert any(m.startswith("warning:") and "tokenizer.json" in m for m in messages)
    assert again.tokenize("Mike").ids == emb.tokenize("Mike").ids


def test_a_read_only_entry_works_without_an_index(gpt2_dir, tmp_path):
    emb = tokneigh.load(str(gpt2_dir))
    (emb.path / tokindex.INDEX).unlink()
    codec = TokenCodec(emb.path / layout.TOKENIZER, BYTE_LEVEL, [50256])
    assert not codec.has_index and not (emb.path / tokindex.INDEX).exists()
    assert codec.encode("banana") == [3820, 2271] and codec.raw(3820) == "ban"
    # Without stored displays, tokens are shown and special ids found by the rules directly.
    assert codec.special_among(emb.vocab_size) == [50256]
    assert [codec.shown(i) for i in (3820, 447, 50256)] == [
        emb.codec.shown(i) for i in (3820, 447, 50256)
    ]


# --- the top-k cut-off ----------------------------------------------------------------------


def _full_sort(scores: np.ndarray, k: int, exclude=()) -> list[int]:
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [i for i in order if i not in set(exclude)][:k]


@pytest.mark.parametrize("seed", range(6))
def test_top_k_matches_a_full_sort(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1000, 60_000))
    scores = rng.standard_normal(n).astype(np.float32)
    if seed % 2:  # plenty of exact ties, including at the cut
        scores = np.round(scores, 1).astype(np.float32)
    if seed == 4:
        scores[: n // 2] = scores.max()  # a plateau wider than any k
    for k in (1, 5, 20, 84, 336, 1000):
        exclude = tuple(int(i) for i in rng.choice(n, 3, replace=False))
        order = np.argsort(-scores.astype(np.float64), kind="stable")
        expected = [int(i) for i in order if i not in exclude][:k]
        assert core.top_k(scores, k, exclude).tolist() == expected
        assert core.top_k(scores, k).tolist() == [int(i) for i in order[:k]]
        assert core.top_k(scores, k).tolist() == core._top_k_by_partition(scores, k).tolist()


def test_top_k_small_cases_and_nan():
    scores = np.array([0.5, 0.1, 0.5, 0.9, 0.1], dtype=np.float32)
    assert core.top_k(scores, 3).tolist() == _full_sort(scores, 3)
    assert core.top_k(scores, 10).tolist() == _full_sort(scores, 10)
    big = np.random.default_rng(0).random(5000).astype(np.float32)
    big[[3, 70, 900]] = np.nan
    result = core.top_k(big, 20).tolist()
    assert result == core._top_k_by_partition(big, 20).tolist()
    assert not {3, 70, 900} & set(result)


def test_neighbors_match_the_brute_force_loop_on_a_768_wide_matrix(tmp_path):
    """The seed's loop (dot / (norm x norm), row by row) against the whole fast path."""
    rng = np.random.default_rng(7)
    raw = rng.standard_normal((5000, 768)).astype(np.float32)
    raw[[10, 20]] = 0.0
    unit, _ = core.normalize_rows(raw)
    queries = raw[[1, 2, 3, 4999]]
    ranked = core.rank_many(unit, np.stack([core.unit_vector(q) for q in queries]), 20)
    for query, (ids, sims) in zip(queries, ranked):
        loop = np.array(
            [
                float(np.dot(row, query)) / (np.linalg.norm(row) * np.linalg.norm(query))
                if np.linalg.norm(row) > 0
                else 0.0
                for row in raw
            ]
        )
        assert ids.tolist() == _full_sort(loop, 20)
        np.testing.assert_allclose(sims, loop[ids], atol=1e-5)


# --- Typer without pydantic -----------------------------------------------------------------


def _commands():
    import typer.main

    from tokneigh.cli import app

    group = typer.main.get_command(app)
    ctx = group.make_context("tokneigh", ["--help"], resilient_parsing=True)
    for name in group.list_commands(ctx):  # click's lookup: the commands load on demand
        command = group.get_command(ctx, name)
        subs = command.commands.items() if hasattr(command, "commands") else [(name, command)]
        yield from subs


_VALUES = [
    None, "", "0", "1", "20", "+20", " 20", "20 ", "1_000", "20.0", "-3", "0.5", "-0.25", "1e3",
    "inf", "nan", "x", "٣", "json", "JSON", "Json ", "table", "tsv", "/tmp/x", "~/x", "a\udcff",
    "café", "true", "false", ("1", "2"), ("x",), (), ("Mike", "a\udcff"), 20, True,
    "+0", "2.5", "1.5", "-1", "-2", "1e-1", "-inf", "high", "0x10", ("1", "+2"), ("3", "1e3"),
    "\u2028", "1\n2",
]  # fmt: skip


def test_plain_coercion_agrees_with_typers_own_for_every_parameter():
    """Every parameter of every command, fed odd values: the same value as Typer's own
    coercion gives, or, where Typer rejects the value, a rejection too: a usage error (exit 2)
    whose message, as the CLI prints it, is one line naming the parameter, in plain words."""
    from typer import _coercion
    from typer._click import Context
    from typer._click.exceptions import BadParameter

    from tokneigh.cli.errors import describe

    checked = rejected = 0
    for _, command in _commands():
        ctx = Context(command, info_name=command.name)
        for param in command.params:
            fast = param.get_runtime_param()
            typer_own = _coercion.build_runtime_param(param.type_descriptor)
            longs = [opt for opt in param.opts if opt.startswith("--")]
            where = longs[0] if param.param_type_name == "option" else None
            for value in _VALUES:
                outcomes = []
                for runtime in (fast, typer_own):
                    try:
                        outcomes.append(("ok", runtime.coerce(value, param=param, ctx=ctx)))
                    except BadParameter as exc:
                        outcomes.append(("error", exc))
                case = (command.name, param.name, value)
                assert outcomes[0][0] == outcomes[1][0], (*case, outcomes)
                if outcomes[0][0] == "ok":
                    # (a float option given "nan": NaN is not equal to itself, but agrees)
                    same_nan = all(isinstance(o[1], float) and o[1] != o[1] for o in outcomes)
                    assert outcomes[0] == outcomes[1] or same_nan, case
                    assert type(outcomes[0][1]) is type(outcomes[1][1]), case
                else:
                    message, code = describe(outcomes[0][1])
                    assert code == 2, case
                    assert len(message.splitlines()) == 1, (*case, message)
                    assert where is None or message.startswith(f"{where}: "), (*case, message)
                    pydantic_words = ("Input ", "Value error", "valid integer", "<int", "<class")
                    for words in pydantic_words:
                        assert words not in message, (*case, message)
                    rejected += 1
                checked += 1
    assert checked > 200 and rejected > 50


# --- output ---------------------------------------------------------------------------------


def test_the_console_script_flushes_everything_before_it_exits(gpt2_dir):
    result = run_cli("neighbors", "Mike", "banana", "--top", "3000", "--format", "json",
                     "--model", str(gpt2_dir))  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert [len(d["neighbors"]) for d in data] == [3000, 3000]
    result = run_cli("neighbors", "   ", "--model", str(gpt2_dir))
    assert result.returncode == 2 and result.stderr.startswith("tokneigh: error:")


def test_one_query_ranks_on_the_same_numbers_as_compare(gpt2_dir):
    """`neighbors` and `compare` report one similarity for a pair, to the last bit."""
    emb = tokneigh.load(str(gpt2_dir))
    for word in ["Mike", "banana", " the"]:
        vector = emb.vector(word)
        (ids, sims), = core.rank_many(emb.unit, vector[None, :], 25)
        assert sims.tolist() == core.exact_scores(emb.unit, vector, ids).tolist()
        for i, sim in list(zip(ids.tolist(), sims.tolist()))[::5]:
            assert emb.compare(word, i).cosine == sim
        ids_ = emb.tokenize(word).ids
        assert np.array_equal(vector, core.unit_vector(emb.unit[ids_].mean(axis=0)))


def test_an_index_belongs_to_the_bytes_it_was_built_from(gpt2_dir):
    """Built from a tokenizer.json that has since been replaced, an index is never used."""
    emb = tokneigh.load(str(gpt2_dir))
    path = emb.path / layout.TOKENIZER
    tokenizer = _real_tokenizer(path)
    old_bytes = path.read_bytes() + b" "  # what the tokenizer was (say) parsed from
    _, data = tokindex.build_index(tokenizer, tokindex.source_print(old_bytes))
    tokindex.save_index(path, data)
    assert tokindex.open_index(path) is None
    codec = TokenCodec(path, BYTE_LEVEL, [50256])
    assert not codec.has_index and codec.encode("Mike") == [16073]
    write_index(path, BYTE_LEVEL, [50256])  # for the bytes now there
    assert tokindex.open_index(path) is not None


# --- stored token displays ------------------------------------------------------------------


def test_the_index_stores_each_tokens_display_as_the_rules_give_it(gpt2_dir, bert_dir, llama_dir):
    """A batch of queries reads each neighbour's text, label and special flag from the index:
    for every id, exactly what the display rules compute from the stored string."""
    for folder in (gpt2_dir, bert_dir, llama_dir):
        emb = tokneigh.load(str(folder))
        codec = emb.codec
        index = tokindex.open_index(emb.path / layout.TOKENIZER)
        assert index is not None and index.display_key == codec._display_key()
        rows = emb.vocab_size
        for i in range(rows + 3):
            want_text, want_label, want_special = codec._describe(i, codec.raw(i))
            assert codec.shown(i) == (want_text, want_label), i
            assert codec.is_special(i) == want_special, i
        assert codec.special_among(rows) == [
            i for i in range(rows) if codec._describe(i, codec.raw(i))[2]
        ]


def test_an_index_with_other_display_rules_is_rebuilt(gpt2_dir):
    emb = tokneigh.load(str(gpt2_dir))
    path = emb.path / layout.TOKENIZER
    tokenizer = _real_tokenizer(path)
    source = tokindex.source_print(path.read_bytes())
    _, data = tokindex.build_index(tokenizer, source)  # no displays at all
    tokindex.save_index(path, data)
    assert tokindex.open_index(path).display_key is None
    assert not TokenCodec(path, BYTE_LEVEL, [50256]).has_index  # not used...
    write_index(path, BYTE_LEVEL, [50256])  # ...until rebuilt
    codec = TokenCodec(path, BYTE_LEVEL, [50256])
    assert codec.has_index and tokindex.open_index(path).display_key == codec._display_key()
    # Other special ids (or rules) than the stored displays were made with: not used either.
    other = TokenCodec(path, BYTE_LEVEL, [50256, 220])
    assert not other.has_index
    write_index(path, BYTE_LEVEL, [50256, 220])
    other = TokenCodec(path, BYTE_LEVEL, [50256, 220])
    assert other.has_index and tokindex.open_index(path).display_key == other._display_key()
    assert other.is_special(220) and other.label(220) == "Ġ"  # shown as stored, as specials are
    assert not codec.is_special(220) and codec.label(220) == '" "'


def test_query_vectors_are_the_same_numbers_in_any_batch(gpt2_dir):
    """A query's vector does not depend on what else is in the batch, so `neighbors a b` and
    `neighbors a` agree to the last bit."""
    emb = tokneigh.load(str(gpt2_dir))
    id_lists = [emb.tokenize(w).ids for w in ["Mike", "banana", " the", "cosmic", "x"]]
    alone = [core.query_vector(emb.unit, ids) for ids in id_lists]
    for batch in (id_lists, id_lists[::2], [id_lists[0], id_lists[2]], [id_lists[1]]):
        together = core.query_vectors(emb.unit, batch)
        for ids, vector in zip(batch, together):
            assert np.array_equal(vector, alone[id_lists.index(ids)])
    assert not core.unit_vector(np.zeros(8)).any()  # the zero vector stays zero
