"""One renderer for every result: titles fit the terminal, cells are never cut, TSV booleans."""

from __future__ import annotations

import io
import json

import pytest

import tokneigh
from tokneigh.present import render
from tokneigh.results import model_label

SHARED_CACHE = True


@pytest.fixture(scope="module")
def emb(gpt2_dir):
    return tokneigh.load(str(gpt2_dir))


def drawn(result, width: int) -> str:
    out = io.StringIO()
    console = render.make_console(out, color=False)
    console.width = width
    render.emit(result, "table", console=console, stream=out)
    return out.getvalue()


def results(emb):
    dedupe = tokneigh.Filters(dedupe=True)
    return [
        emb.neighbors(" Mike", k=8, filters=dedupe),
        emb.neighbors("banana", k=8),
        emb.neighbors(447, k=8),  # a byte fragment, b"\xe2\x80"
        emb.compare("ban", "ana"),
        emb.analogy("man", "king", "woman", k=5),
        emb.verify("Mike", k=5, repeats=1),
    ]


@pytest.mark.parametrize("width", [30, 40, 55, 80, 120])
def test_no_line_is_wider_than_the_terminal_and_no_cell_is_cut(emb, width):
    for result in results(emb):
        text = drawn(result, width)
        assert max(len(line) for line in text.splitlines()) <= width, (width, text)
        assert "…" not in text, text  # Rich's mark for a cut cell
        table = result.human()[0]
        for row in table.rows:  # numbers are never wrapped: each stands whole on its line
            for cell, column in zip(row, table.columns):
                if column.numeric and cell:
                    assert any(cell in line for line in text.splitlines()), (width, cell)
        # Text cells may fold onto more lines but lose no character.
        needed = sum(len("".join(cell.split())) for row in table.rows for cell in row)
        needed += len("".join(table.title.split()))
        assert len("".join(text.split())) >= needed, (width, text)


def test_a_huge_query_keeps_a_short_title(emb):
    text = " ".join(["banana"] * 3000)  # 6,000 tokens
    title = emb.neighbors(text, k=3).title()
    assert len(title) < 400 and "more)" in title
    lines = drawn(emb.neighbors(text, k=3), 80).splitlines()
    assert len(lines) < 20


def test_an_id_query_is_titled_by_its_id_and_token(emb):
    result = emb.neighbors(5, k=3)
    label = result.query_labels[0]
    assert result.title().startswith(f"Neighbours of token #5 ({label}) · ")
    text = drawn(emb.neighbors(5, k=3), 100)
    assert f"token #5 ({label})" in text


def test_model_labels_are_short():
    assert model_label("gpt2") == "gpt2"
    assert model_label("openai-community/gpt2") == "openai-community/gpt2"
    assert model_label("/home/me/models/llama-tiny") == "models/llama-tiny"
    assert model_label("/x") == "x"


def test_titles_show_the_short_label_and_json_the_full_name(emb, gpt2_dir):
    result = emb.neighbors("Mike", k=2)
    assert f"· {gpt2_dir.parent.name}/{gpt2_dir.name} ·" in result.title()
    assert str(gpt2_dir) not in result.title()
    assert result.to_json()["model"] == str(gpt2_dir)


def test_tsv_writes_booleans_as_true_false(emb):
    out = io.StringIO()
    render.emit(emb.verify("Mike", k=3, repeats=1), "tsv", stream=out)
    header, row = out.getvalue().splitlines()
    cells = dict(zip(header.split("\t"), row.split("\t")))
    assert cells["top_k_identical"] in ("true", "false")
    assert cells["top_k_agree"] == "true"
    assert "True" not in row and "False" not in row


def test_the_shell_object_is_the_cli_object_plus_its_command(emb):
    result = emb.analogy("man", "king", "woman", k=3)
    plain, shell = io.StringIO(), io.StringIO()
    render.emit(result, "json", stream=plain)
    render.emit(result, "json", command="analogy", stream=shell)
    assert json.loads(shell.getvalue()) == {"command": "analogy", **json.loads(plain.getvalue())}


def test_json_is_strict_even_through_the_fallback():
    text = render.json_text({"a": "\ud800", "b": [1.5]})  # a lone surrogate: orjson refuses
    assert " " not in text and json.loads(text)["b"] == [1.5]
    strict = render.json_text({"x": float("nan"), "y": "\ud800"})  # as orjson: NaN is null
    assert json.loads(strict, parse_constant=lambda c: pytest.fail(c))["x"] is None
