"""A query the model cannot see (issue 20, case 13): text that the tokenizer maps to its unknown
token ([UNK]) is named in every surface: a note on stderr, an ``unknown`` field in the JSON (only
when present), and the page (tests/test_serve_unknown_browser.py). All-MiniLM-L6-v2's real
WordPiece tokenizer: emoji are not in its vocabulary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import cli

import tokneigh

SHARED_CACHE = True


@pytest.fixture(scope="module")
def unk(minilm_dir: Path) -> tuple[int, str]:
    """The unknown token, read independently: the tokenizers library's own answer."""
    from tokenizers import Tokenizer

    spec = json.loads((minilm_dir / "tokenizer.json").read_text(encoding="utf-8"))
    token = spec["model"]["unk_token"]
    tokenizer = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    return tokenizer.token_to_id(token), token


@pytest.fixture(scope="module")
def emb(minilm_dir, module_cache):
    return tokneigh.load(str(minilm_dir), cache_dir=module_cache)


def notes(stderr: str) -> list[str]:
    """The notes about unknown text (a model may have others: rows with no direction)."""
    return [line for line in stderr.splitlines()
            if line.startswith("tokneigh: note:") and "vocabulary has no token" in line]


def run(*args, model):
    result = cli(*args, "-f", "json", "-m", str(model))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout), notes(result.stderr)


def test_neighbors_of_an_emoji_says_it_is_unknown(emb, minilm_dir, unk):
    unk_id, unk_token = unk
    [data], said = run("neighbors", "😀", "--top", "3", model=minilm_dir)
    assert data["query_ids"] == [unk_id]
    assert data["query_unknown"] == [0]
    assert len(said) == 1 and "'😀'" in said[0] and unk_token in said[0], said
    # Part of a text: the position of the unknown piece, one note.
    [data], said = run("neighbors", "king 😀 queen", "--top", "3", model=minilm_dir)
    assert data["query_ids"][data["query_unknown"][0]] == unk_id
    assert data["query_unknown"] == [1] and len(said) == 1


def test_a_query_the_model_sees_has_no_field_and_no_note(emb, minilm_dir):
    [data], said = run("neighbors", "king", "--top", "3", model=minilm_dir)
    assert "query_unknown" not in data and said == []
    # the same JSON as before the field existed: the API's own lists, key for key
    assert list(data) == list(emb.neighbors("king", k=3).to_json())
    compared, said = run("compare", "king", "queen", model=minilm_dir)
    assert "unknown" not in compared["a"] and "unknown" not in compared["b"] and said == []


def test_the_unknown_token_typed_as_such_is_no_surprise(minilm_dir, unk):
    """`[UNK]` typed literally asks for that token: no note."""
    [data], said = run("neighbors", unk[1], "--top", "3", model=minilm_dir)
    assert data["query_ids"] == [unk[0]] and "query_unknown" not in data and said == []
    [data], said = run("neighbors", unk[1] + " 😀", "--top", "3", model=minilm_dir)
    assert data["query_unknown"] and len(said) == 1


def test_compare_of_two_unknown_texts_answers_and_says_why(minilm_dir, unk):
    """Both are the one [UNK] row, so cosine 1 is the model's true answer: it is given, with
    a note for each that says the model cannot tell them apart."""
    data, said = run("compare", "😀", "🎉", model=minilm_dir)
    assert data["a"]["unknown"] == [0] and data["b"]["unknown"] == [0]
    assert data["a"]["ids"] == data["b"]["ids"] == [unk[0]]
    assert data["cosine"] == pytest.approx(1.0)
    assert len(said) == 2 and "'😀'" in said[0] and "'🎉'" in said[1], said
    assert "cannot tell" in said[1]
    # the table says it too (stderr), and the table itself is unchanged
    table = cli("compare", "😀", "🎉", "-m", str(minilm_dir))
    assert table.exit_code == 0 and len(notes(table.stderr)) == 2


def test_tokenize_and_analogy_say_it_too(minilm_dir, unk):
    data, said = run("tokenize", "king 😀", model=minilm_dir)
    [item] = data
    assert item["unknown"] == [1] and item["ids"][1] == unk[0] and len(said) == 1
    data, said = run("analogy", "😀", "king", "woman", "--top", "3", model=minilm_dir)
    assert data["unknown_terms"] == ["😀"] and len(said) == 1
    data, said = run("analogy", "man", "king", "woman", "--top", "3", model=minilm_dir)
    assert "unknown_terms" not in data and said == []


def test_a_byte_level_model_never_notes(gpt2_dir):
    [data], said = run("neighbors", "😀", "--top", "3", model=gpt2_dir)
    assert "query_unknown" not in data and said == []


def test_the_shell_notes_in_table_mode_and_carries_the_field_in_json(minilm_dir, module_cache):
    import os
    import subprocess
    import sys

    def shell(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tokneigh", "shell", "-m", str(minilm_dir), *args],
            input="😀\n:compare 😀 🎉\nking\n".encode(), capture_output=True, timeout=300,
            env={**os.environ, "TOKNEIGH_CACHE_DIR": str(module_cache)},
        )

    table = shell()
    assert table.returncode == 0, table.stderr
    said = notes(table.stderr.decode())
    assert len(said) == 3 and "cannot tell them apart" in said[2], said
    lines = shell("--format", "json")
    assert lines.returncode == 0 and notes(lines.stderr.decode()) == []
    first, compared, king = (json.loads(line) for line in lines.stdout.decode().splitlines())
    assert first["query_unknown"] == [0] and compared["b"]["unknown"] == [0]
    assert "query_unknown" not in king


def test_the_api_passes_the_fields_through(emb):
    """The server's answers are the results' JSON: the same fields (the page's test drives a
    real server; this one needs no browser)."""
    from starlette.testclient import TestClient

    from tokneigh.web.app import Served, create_app
    from tokneigh.web.worker import Worker

    served = Served({"cosine": emb.resident()})
    worker = Worker(served.spaces)
    try:
        with TestClient(create_app(served, worker), base_url="http://127.0.0.1") as client:
            def get(path: str, **params: str) -> dict:
                response = client.get(f"/api/{path}", params=params)
                assert response.status_code == 200, response.text
                return response.json()

            assert get("neighbors", q="😀")["query_unknown"] == [0]
            assert "query_unknown" not in get("neighbors", q="king")
            assert get("tokenize", q="king 😀")["unknown"] == [1]
            assert get("compare", a="😀", b="king")["a"]["unknown"] == [0]
            assert get("vector", q="😀")["query"]["unknown"] == [0]
            assert get("analogy", a="😀", b="king", c="woman")["unknown_terms"] == ["😀"]
            assert get("map", q="😀", k="5")["query_unknown"] == [0]
    finally:
        worker.close()


def test_the_unknown_token_is_found_in_every_model_kind(tmp_path):
    """Unigram gives an id, WordPiece/WordLevel/BPE a text, byte-level BPE none; each checked
    against what the tokenizers library itself produces for text it has no token for."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from tokneigh.tokens.codec import _unknown_token

    kinds = {
        "unigram": models.Unigram([("<unk>", 0.0), ("a", -1.0), ("b", -1.5)], unk_id=0),
        "wordlevel": models.WordLevel({"a": 0, "b": 1, "<unk>": 2, "unk_id": 3}, unk_token="<unk>"),
        "wordpiece": models.WordPiece({"a": 0, "[UNK]": 1, "b": 2}, unk_token="[UNK]"),
        "bpe": models.BPE({"a": 0, "b": 1, "unk_id": 2}, [], unk_token=None),
    }
    for name, model in kinds.items():
        tokenizer = Tokenizer(model)
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        path = tmp_path / f"{name}.json"
        tokenizer.save(str(path))
        text, token_id = _unknown_token(path.read_bytes())
        unseen = tokenizer.encode("a zzz b").ids
        if name == "bpe":
            assert (text, token_id) == (None, None) and 2 not in unseen
            continue
        expected = token_id if token_id is not None else tokenizer.token_to_id(text)
        assert expected in unseen, (name, text, token_id, unseen)
