"""One id syntax everywhere (issue 22, item 7): ``#N`` is token id N in every command's
arguments, the shell, the page's API and the Python API; ``\\#...`` is the literal text.

Each surface's ``#N`` answer is checked against a numpy ranking of row N of the normalized
matrix read straight from the checkpoint (explore_refs.Reference), and each literal escape
against the tokenizer's own split of the text.
"""

from __future__ import annotations

import json

import helpers
import numpy as np
import pytest
from explore_refs import assert_same_ranking, filtered_ranking

import tokneigh
from tokneigh.analyses.queries import parse_query_text
from tokneigh.errors import TokenIdError, UsageError

SHARED_CACHE = True

KING, QUEEN, MAN, WOMAN = 2332, 3035, 2158, 2450  # all-MiniLM-L6-v2's ids


def cli_json(model, *args: str):
    result = helpers.cli(*args, "--format", "json", "-m", str(model))
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def row_ranking(ref, token_id: int, k: int) -> tuple[np.ndarray, list[int]]:
    """Row ``token_id`` of the unit matrix against every row, and the CLI's default list
    (special tokens left out, the query's own spared)."""
    scores = ref.unit @ ref.unit[token_id]
    return scores, [i for i, _ in filtered_ranking(ref, scores, k, spared={token_id})]


def cosine(ref, i: int, j: int) -> float:
    return float(ref.unit[i] @ ref.unit[j])


# --- the one parser -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "meant"),
    [
        ("#5", 5),
        ("#0", 0),
        ("#007", 7),
        ("\\#5", "#5"),  # the literal text
        ("\\\\#5", "\\#5"),  # one backslash removed, whatever follows
        ("#", "#"),  # GPT-2's "#" token, as text
        ("##", "##"),
        ("##ing", "##ing"),
        ("#5a", "#5a"),
        (" #5", " #5"),  # spaces are text in this tool (" Mike" is not "Mike")
        ("#5 ", "#5 "),
        ("#-1", "#-1"),
        ("#\u0663", "#\u0663"),  # an Arabic-Indic digit: ids are ASCII digits
        ("\\n", "\\n"),  # a backslash before anything but '#' is text
        ("king", "king"),
    ],
)
def test_parse_query_text(text, meant):
    assert parse_query_text(text) == meant
    assert type(parse_query_text(text)) is type(meant)


def test_parse_query_text_checks_the_range():
    assert parse_query_text("#30521", 30522) == 30521
    with pytest.raises(TokenIdError, match=r"token id 30522 is outside 0\.\.30521"):
        parse_query_text("#30522", 30522)
    with pytest.raises(UsageError, match=r"outside 0\.\.30521"):
        parse_query_text("#" + "9" * 5000, 30522)  # past int()'s digit limit: no ValueError
    with pytest.raises(UsageError, match="outside any vocabulary"):
        parse_query_text("#" + "9" * 40)


# --- the command line -----------------------------------------------------------------------


def test_neighbors_hash_id_is_row_n(minilm_dir, minilm_ref):
    [got] = cli_json(minilm_dir, "neighbors", f"#{KING}", "-k", "12")
    assert got["query"] is None and got["query_id"] == KING and got["query_ids"] == [KING]
    scores, expected = row_ranking(minilm_ref, KING, 12)
    assert_same_ranking(got["neighbors"], scores, expected)
    assert cli_json(minilm_dir, "neighbors", "--id", str(KING), "-k", "12") == [got]  # compat


def test_neighbors_literal_escape_is_the_text(minilm_dir, minilm_ref):
    [got] = cli_json(minilm_dir, "neighbors", "\\#5", "-k", "5")
    assert got["query"] == "#5" and got["query_id"] is None
    assert got["query_ids"] == minilm_ref.ids("#5") == [1001, 1019]
    [row5] = cli_json(minilm_dir, "neighbors", "#5", "-k", "5")
    assert row5["query_ids"] == [5] and row5["neighbors"] != got["neighbors"]


def test_tokens_that_start_with_a_hash_can_still_be_asked(gpt2_dir, gpt2_ref, minilm_dir,
                                                          minilm_ref):  # fmt: skip
    for text in ("#", "##", "###"):  # GPT-2's "#", "##" and "###" are tokens: text reaches them
        [got] = cli_json(gpt2_dir, "neighbors", text, "-k", "3")
        assert got["query"] == text and got["query_ids"] == gpt2_ref.ids(text)
        assert len(got["query_ids"]) == 1
    # MiniLM's "##ing" is a word piece no text tokenizes to alone: its id reaches it.
    ing = minilm_ref.tokenizer.token_to_id("##ing")
    [got] = cli_json(minilm_dir, "neighbors", f"#{ing}", "-k", "5")
    assert got["query_ids"] == [ing]
    scores, expected = row_ranking(minilm_ref, ing, 5)
    assert_same_ranking(got["neighbors"], scores, expected)
    [text] = cli_json(minilm_dir, "neighbors", "##ing", "-k", "5")
    assert text["query_ids"] == minilm_ref.ids("##ing") != [ing]


def test_compare_takes_hash_ids_in_each_position(minilm_dir, minilm_ref):
    got = cli_json(minilm_dir, "compare", f"#{KING}", f"#{QUEEN}")
    assert got["a"]["query_id"] == KING and got["b"]["query_id"] == QUEEN
    assert got["cosine"] == pytest.approx(cosine(minilm_ref, KING, QUEEN), abs=1e-6)
    raw = minilm_ref.raw
    assert got["norm_a"] == pytest.approx(np.linalg.norm(raw[KING]), rel=1e-5)
    mixed = cli_json(minilm_dir, "compare", "king", f"#{QUEEN}")
    assert mixed["cosine"] == pytest.approx(got["cosine"], abs=1e-9)
    literal = cli_json(minilm_dir, "compare", "\\#5", "#5")
    assert literal["a"]["ids"] == minilm_ref.ids("#5") and literal["b"]["ids"] == [5]


def test_analogy_takes_hash_ids_in_each_position(minilm_dir, minilm_ref):
    got = cli_json(minilm_dir, "analogy", f"#{MAN}", f"#{KING}", f"#{WOMAN}", "-k", "8")
    assert got["negative"] == [MAN] and got["positive"] == [KING, WOMAN]
    unit = minilm_ref.unit
    total = unit[KING] - unit[MAN] + unit[WOMAN]
    scores = unit @ (total / np.linalg.norm(total))
    expected = [i for i, _ in filtered_ranking(minilm_ref, scores, 8, exclude={MAN, KING, WOMAN})]
    assert_same_ranking(got["neighbors"], scores, expected)
    words = cli_json(minilm_dir, "analogy", "man", "king", "woman", "-k", "8")
    assert [n["id"] for n in words["neighbors"]] == [n["id"] for n in got["neighbors"]]
    options = cli_json(minilm_dir, "analogy", "-p", f"#{KING}", "-p", "#2450", "-n", f"#{MAN}",
                       "-k", "8")  # fmt: skip
    assert options["neighbors"] == got["neighbors"]


def test_verify_and_map_take_hash_ids(minilm_dir, tmp_path):
    verified = cli_json(minilm_dir, "verify", f"#{KING}", "-k", "5")
    assert verified["query_id"] == KING and verified["query_ids"] == [KING]
    by_id = cli_json(minilm_dir, "verify", "--id", str(KING), "-k", "5")
    timings = {k for k in verified if "second" in k or "speed" in k}  # differ run to run
    assert {k: v for k, v in verified.items() if k not in timings} == {
        k: v for k, v in by_id.items() if k not in timings
    }
    by_hash = cli_json(minilm_dir, "map", f"#{KING}", "-k", "6", "--plot", tmp_path / "a.svg")
    by_id = cli_json(minilm_dir, "map", "--id", str(KING), "-k", "6", "--plot", tmp_path / "b.svg")
    assert by_hash == by_id


@pytest.mark.parametrize(
    "args",
    [
        ["neighbors", "#30522"],
        ["compare", "king", "#30522"],
        ["analogy", "man", "#30522", "woman"],
        ["verify", "#30522"],
        ["neighbors", "#" + "9" * 30],
    ],
)
def test_an_id_outside_the_vocabulary_is_one_line_naming_the_range(minilm_dir, args):
    result = helpers.cli(*args, "-m", minilm_dir)
    helpers.assert_one_line_error(result, 2, "outside 0..30521")


def test_diff_refuses_a_row_id_it_cannot_share(minilm_dir):
    result = helpers.cli("diff", "king", "#5", "--sample", "0", "--against-metric", "centered",
                         "-m", minilm_dir)  # fmt: skip
    helpers.assert_one_line_error(result, 2, "#5 names a row", "\\#5")


def test_the_empty_query_hint_names_the_id_syntax_and_it_works(minilm_dir, minilm_ref):
    for args in (["compare", "king", ""], ["analogy", "king", "", "queen"], ["neighbors", ""]):
        result = helpers.cli(*args, "-m", minilm_dir)
        helpers.assert_one_line_error(result, 2, "empty", "give its id as #N")
        assert "--id" not in result.stderr
    # What the hint names works in each command that gave it (MiniLM has no whitespace token:
    # any id shows the syntax is taken).
    assert cli_json(minilm_dir, "compare", "king", "#100")["b"]["query_id"] == 100
    analogy = cli_json(minilm_dir, "analogy", "king", "#100", "queen", "-k", "2")
    assert analogy["negative"] == ["king"] and analogy["positive"] == [100, "queen"]
    assert cli_json(minilm_dir, "neighbors", "#100", "-k", "2")[0]["query_id"] == 100


# --- the shell, the page's API, the Python API ------------------------------------------------


@pytest.fixture(scope="module")
def emb(minilm_dir, module_cache):
    return tokneigh.load(str(minilm_dir), cache_dir=module_cache)


def test_shell_lines_take_hash_ids(emb, minilm_ref, capsys):
    from tokneigh.cli.shell import Shell, ShellFormat

    sh = Shell(emb, top=6, output=ShellFormat.json, interactive=False, loader=lambda *a: emb)
    lines = [f"#{KING}", f":compare #{KING} queen", f":analogy #{MAN} #{KING} #{WOMAN}",
             "\\#5", ":compare '\\#5' #5", "#30522"]  # fmt: skip
    assert sh.run_lines(lines)
    captured = capsys.readouterr()
    first, compared, analogy, literal, both, refused = map(json.loads, captured.out.splitlines())
    scores, expected = row_ranking(minilm_ref, KING, 6)
    assert first["query_id"] == KING
    assert_same_ranking(first["neighbors"], scores, expected)
    assert compared["a"]["query_id"] == KING and compared["b"]["ids"] == [QUEEN]
    assert analogy["positive"] == [KING, WOMAN] and analogy["negative"] == [MAN]
    assert literal["query"] == "#5" and literal["query_ids"] == minilm_ref.ids("#5")
    assert both["a"]["ids"] == minilm_ref.ids("#5") and both["b"]["query_id"] == 5
    assert refused["command"] == "neighbors" and "outside 0..30521" in refused["error"]


@pytest.fixture(scope="module")
def client(emb):
    from starlette.testclient import TestClient

    from tokneigh.web.app import Served, create_app
    from tokneigh.web.worker import Worker

    served = Served({"cosine": emb.resident()})
    worker = Worker(served.spaces)
    with TestClient(create_app(served, worker), base_url="http://localhost") as test_client:
        yield test_client
    worker.close()


def test_web_api_takes_hash_ids_and_the_escape(client, minilm_ref):
    got = client.get("/api/neighbors", params={"q": f"#{KING}", "k": "9"}).json()
    scores, expected = row_ranking(minilm_ref, KING, 9)
    assert got["query_id"] == KING
    assert_same_ranking(got["neighbors"], scores, expected)
    literal = client.get("/api/neighbors", params={"q": "\\#5", "k": "3"}).json()
    assert literal["query"] == "#5" and literal["query_ids"] == minilm_ref.ids("#5")
    compared = client.get("/api/compare", params={"a": f"#{KING}", "b": "queen"}).json()
    assert compared["a"]["query_id"] == KING
    assert compared["cosine"] == pytest.approx(cosine(minilm_ref, KING, QUEEN), abs=1e-6)
    analogy = client.get("/api/analogy", params={"a": f"#{MAN}", "b": "king", "c": "#2450"}).json()
    assert analogy["negative"] == [MAN] and analogy["positive"] == ["king", WOMAN]
    refused = client.get("/api/neighbors", params={"q": "#30522"})
    assert refused.status_code == 404 and "outside 0..30521" in refused.json()["error"]


def test_python_api_takes_hash_ids_and_the_escape(emb, minilm_ref):
    by_hash = emb.neighbors(f"#{KING}", k=10)
    assert by_hash.to_json() == emb.neighbors(KING, k=10).to_json()
    scores = minilm_ref.unit @ minilm_ref.unit[KING]
    expected = [i for i, _ in filtered_ranking(minilm_ref, scores, 10, skip_special=False)]
    assert_same_ranking(by_hash.to_json()["neighbors"], scores, expected)
    assert emb.query_tokens("\\#5").ids == minilm_ref.ids("#5")
    assert emb.compare(f"#{KING}", "queen").cosine == pytest.approx(
        cosine(minilm_ref, KING, QUEEN), abs=1e-6
    )
    assert (
        emb.analogy(f"#{MAN}", f"#{KING}", f"#{WOMAN}", k=5).to_json()
        == emb.analogy(MAN, KING, WOMAN, k=5).to_json()
    )
    with pytest.raises(TokenIdError):
        emb.neighbors("#30522")
