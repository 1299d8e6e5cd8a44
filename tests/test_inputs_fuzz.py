"""Issue #5, inputs: any Unicode text given to `neighbors`, `tokenize` or `compare` yields a
result or a clear one-line usage error (exit 2), never a traceback; JSON output always parses
(strictly: no NaN) and round-trips the text; TSV escapes tab, newline, CR and backslash.

The GPT-2 cache is built once for the module, and the CLI's `api.load` hands every invocation
the same loaded model (loading is tested elsewhere; here only the text matters).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import cli_outcome as cli
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tokneigh.api import loading as api

# Text that has broken command lines and tokenizers before: emoji sequences, flags,
# combining marks, right-to-left text and overrides, zero-width and control characters, NUL,
# line and paragraph separators, escapes that look like TSV escapes, option look-alikes.
AWKWARD = [
    "🙂", "👩‍👩‍👧‍👦", "🇫🇷", "🏳️‍🌈", "e\u0301", "\u0301", "a\u0308\u0323", "ᄀ\u1161\u11a8",
    "שלום", "مرحبا", "\u202e", "\u202d", "\u200b", "\u200d", "\u2066", "\ufeff", "\ufffd",
    "\x00", "\x01", "\x1b[31m", "\x7f", "\x85", "\u2028", "\u2029", "\t", "\n", "\r", "\r\n",
    "\x0b", "\x0c", "\x1c", "\\", "\\t", "\\n", "\\\\", '"', "'", "<|endoftext|>", "Ġ", "ĊĠ",
    "-", "--", "--help", "-k", "--format", " ", "\u3000", "\U0010ffff", "\uffff", "\U0001d400",
    "İ", "ß", "ﬃ", "Ω", "٣", "日本語", "ไทย",
]

TEXT = st.one_of(
    st.text(),  # any Unicode scalar value (hypothesis leaves lone surrogates out)
    st.lists(st.one_of(st.sampled_from(AWKWARD), st.text(max_size=4)), max_size=10).map("".join),
)
FORMAT = st.sampled_from(["json", "tsv", "table"])
FUZZ = settings(
    max_examples=40,  # (150 cost the suite 30 s more and found nothing new)
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

BIG = 100_000


@pytest.fixture(scope="module")
def model(gpt2_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """CLI arguments naming the GPT-2 checkpoint, its cache built once for the module."""
    root = tmp_path_factory.mktemp("fuzz-cache")
    loaded = api.load(str(gpt2_dir), cache_dir=root, report=lambda _: None)
    loaded.built_seconds = None  # every later call stands for a load from the cache
    _LOADED.append(loaded)
    real = api.load

    def load_once(model=None, *, cache_dir=None, rebuild=False, report=None, **kwargs):
        if model == str(gpt2_dir) and not rebuild and kwargs.get("embeddings", "input") == "input":
            return loaded
        return real(model, cache_dir=cache_dir, rebuild=rebuild, report=report, **kwargs)

    vocabulary = api.load_vocabulary(str(gpt2_dir), cache_dir=root)
    real_vocabulary = api.load_vocabulary

    def vocabulary_once(model=None, **kwargs):
        return vocabulary if model == str(gpt2_dir) else real_vocabulary(model, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(api, "load", load_once)
        patch.setattr(api, "load_vocabulary", vocabulary_once)
        patch.chdir(root)  # whatever an argument makes of itself, it lands in a scratch folder
        yield ["--model", str(gpt2_dir), "--cache-dir", str(root)]


_LOADED: list = []  # the module's model, once the `model` fixture has loaded it


def answerable(*texts: str) -> bool:
    """Whether every text can be a query: not blank, and none of its tokens is one of the
    fixture's all-zero rows (7 "(" and 11 ","), which have no direction to rank against."""
    emb = _LOADED[0]
    unusable = set(emb.unusable.tolist())
    return all(t.strip() and not unusable.intersection(emb.tokenize(t).ids) for t in texts)


def check_outcome(code: int, out: str, err: str) -> None:
    """A result (exit 0), or one line on stderr starting 'tokneigh: error:' (exit 2)."""
    assert "Traceback" not in out + err
    if code == 0:
        return
    assert code == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("tokneigh: error: ")
    assert len(err.splitlines()) == 1  # no U+2028, U+0085 or other line breaks either


def strict_json(out: str):
    def reject(constant: str):
        raise AssertionError(f"{constant} is not JSON")

    return json.loads(out, parse_constant=reject)


_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPE = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}


def tsv_rows(out: str) -> list[list[str]]:
    """Rows of TSV output, cells unescaped; every row as wide as the header."""
    assert out.endswith("\n")
    lines = out[:-1].split("\n")  # not splitlines: U+2028 and friends are data
    rows = [[_ESCAPE.sub(lambda m: _UNESCAPE[m.group(1)], cell) for cell in line.split("\t")]
            for line in lines]
    assert all("\r" not in line for line in lines)
    assert len({len(row) for row in rows}) == 1, lines
    return rows


# --- properties -----------------------------------------------------------------------------


@FUZZ
@given(text=TEXT, fmt=FORMAT)
@example(text="", fmt="json")
@example(text=" \t\n\u3000", fmt="json")
@example(text="a\tb\nc\\d\re", fmt="tsv")
@example(text="--help", fmt="json")
@example(text="<|endoftext|>", fmt="tsv")
@example(text="\x00", fmt="table")
def test_neighbors_of_any_text(model, text, fmt):
    code, out, err = cli("neighbors", "--top", "3", "--format", fmt, *model, "--", text)
    check_outcome(code, out, err)
    # Byte-level BPE turns every non-blank text into at least one token: always a result,
    # unless one of them is a row with no direction.
    assert code == (0 if answerable(text) else 2), err
    if code == 0 and fmt == "json":
        (result,) = strict_json(out)
        assert result["query"] == text
        assert result["query_ids"] and result["neighbors"]
    elif code == 0 and fmt == "tsv":
        header, *rows = tsv_rows(out)
        assert header[0] == "query" and rows
        assert all(row[0] == text for row in rows)


@FUZZ
@given(text=TEXT, fmt=FORMAT)
@example(text="", fmt="tsv")
@example(text="tab\there\nnewline\\backslash\rcr", fmt="tsv")
@example(text="\u2028\x85", fmt="tsv")
@example(text=" ", fmt="json")
def test_tokenize_any_text(model, text, fmt):
    code, out, err = cli("tokenize", "--format", fmt, *model, "--", text)
    check_outcome(code, out, err)
    assert code == (0 if text else 2), err
    if code == 0 and fmt == "json":
        (result,) = strict_json(out)
        assert result["text"] == text
        assert len(result["ids"]) == len(result["tokens"]) >= 1
    elif code == 0 and fmt == "tsv":
        header, *rows = tsv_rows(out)
        assert header == ["text_index", "position", "id", "token"] and rows
        assert [row[:2] for row in rows] == [["1", str(i)] for i in range(len(rows))]


@settings(FUZZ, max_examples=40)
@given(a=TEXT, b=TEXT, fmt=FORMAT)
@example(a="ban", b="ana", fmt="json")
@example(a="(", b=",", fmt="json")  # two zero rows: a usage error, never a NaN
@example(a="x\ty", b="\n", fmt="tsv")
@example(a=" ", b="x", fmt="json")
def test_compare_any_two_texts(model, a, b, fmt):
    code, out, err = cli("compare", "--format", fmt, *model, "--", a, b)
    check_outcome(code, out, err)
    assert code == (0 if answerable(a, b) else 2), err
    if code == 0 and fmt == "json":
        result = strict_json(out)
        assert (result["a"]["text"], result["b"]["text"]) == (a, b)
        assert -1.0 - 1e-6 <= result["cosine"] <= 1.0 + 1e-6
    elif code == 0 and fmt == "tsv":
        header, row = tsv_rows(out)
        assert header[:2] == ["a", "b"] and row[:2] == [a, b]


@settings(FUZZ, max_examples=40)
@given(args=st.lists(TEXT, min_size=1, max_size=3), command=st.sampled_from(
    ["neighbors", "tokenize", "compare"]))
def test_arguments_without_a_separator(model, command, args):
    # No "--": text may look like an option ("-k", "--help", "--bogus"). Still a result, help,
    # or one clean usage error.
    code, out, err = cli(command, *model, "--format", "json", *args)
    check_outcome(code, out, err)


# --- huge inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, texts, fmt",
    [
        (["neighbors", "--top", "3"], ["🙂" * BIG], "json"),
        (["neighbors", "--top", "3"], ["שלום\t\n\\ ab" * (BIG // 10)], "tsv"),
        (["tokenize"], ["a\u0308\u0323 " * (BIG // 4)], "json"),
        (["compare"], ["e\u0301" * (BIG // 2), "\x00\x1b" * (BIG // 2)], "json"),
    ],
    ids=["neighbors-emoji", "neighbors-rtl-with-escapes", "tokenize-combining",
         "compare-combining-and-control"],
)
def test_hundred_thousand_character_texts(model, command, texts, fmt):
    assert all(len(text) == BIG for text in texts)
    code, out, err = cli(*command, "--format", fmt, *model, "--", *texts)
    check_outcome(code, out, err)
    assert code == 0
    if fmt == "json":
        data = strict_json(out)
        if command[0] == "compare":
            assert [data["a"]["text"], data["b"]["text"]] == texts
        else:
            key = "query" if command[0] == "neighbors" else "text"
            assert [item[key] for item in data] == texts
    else:
        header, *rows = tsv_rows(out)
        assert rows and all(row[0] == texts[0] for row in rows)


# --- lone surrogates ------------------------------------------------------------------------


SURROGATE_TEXT = st.lists(
    st.one_of(st.characters(categories=["Cs"]), st.text(max_size=3)), min_size=1, max_size=6
).map("".join).filter(lambda s: any("\ud800" <= ch <= "\udfff" for ch in s))


@settings(FUZZ, max_examples=30, report_multiple_bugs=False,
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(text=SURROGATE_TEXT, command=st.sampled_from(["neighbors", "tokenize", "compare"]),
       fmt=FORMAT)
def test_lone_surrogates_give_a_result_or_a_usage_error(model, text, command, fmt):
    extra = ["x"] if command == "compare" else []
    code, out, err = cli(command, "--format", fmt, *model, "--", text, *extra)
    check_outcome(code, out, err)
    if code == 0 and fmt == "json":
        data = strict_json(out)
        first = data["a"]["text"] if command == "compare" else data[0].get("query", data[0].get(
            "text"))
        assert first == text
