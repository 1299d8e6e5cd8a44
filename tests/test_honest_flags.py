"""Honest flags (issue 22, item 8): scan's reference and special tokens, options a command
really uses, one meaning per short flag, the --model help and an empty --model, notes that
name the filter that cut a list, and hints that name an option the command has."""

from __future__ import annotations

import json

import helpers
import pytest

from tokneigh.cli import COMMANDS, _command

SHARED_CACHE = True  # one cache per module: each model is built once

# `scan --top 8` on all-MiniLM-L6-v2's real weights before this change (ids, in order).
MINILM_SCAN_TOP8 = [672, 691, 647, 30520, 1632, 376, 752, 640]


def scan_json(model, *args: str) -> dict:
    result = helpers.cli("scan", "--format", "json", "-m", str(model), *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def full_ranking(model) -> list[dict]:
    """Every usable token, most likely under-trained first (the API ranks every row)."""
    import tokneigh

    emb = tokneigh.load(str(model))
    return [t.to_json() for t in emb.scan(top=emb.vocab_size).tokens]


# --- scan: the reference and special tokens --------------------------------------------------


def test_scan_lists_todays_tokens_with_include_special(minilm_dir):
    data = scan_json(minilm_dir, "--top", "8", "--include-special")
    assert [t["id"] for t in data["tokens"]] == MINILM_SCAN_TOP8
    assert [t["rank"] for t in data["tokens"]] == list(range(1, 9))
    assert data["include_special"] is True and data["exclude_reference"] is False


def test_scan_leaves_special_tokens_out_by_default(minilm_dir, minilm_ref):
    ranking = full_ranking(minilm_dir)
    data = scan_json(minilm_dir, "--top", "8")
    expected = [t["id"] for t in ranking if not minilm_ref.is_special(t["id"])][:8]
    assert [t["id"] for t in data["tokens"]] == expected
    assert not any(t["special"] for t in data["tokens"])
    assert [t["rank"] for t in data["tokens"]] == list(range(1, 9))
    assert data["include_special"] is False
    # The table says so, and names the flag that lists them.
    table = helpers.cli("scan", "--top", "8", "-m", str(minilm_dir))
    assert table.exit_code == 0, table.stderr
    hidden = sum(minilm_ref.is_special(i) for i in range(len(ranking)))
    assert f"{hidden:,} special tokens left out" in " ".join(table.stdout.split())


def test_scan_exclude_reference_lists_no_reference_token(minilm_dir):
    ranking = full_ranking(minilm_dir)
    for extra in ([], ["--include-special"]):
        data = scan_json(minilm_dir, "--top", "8", "--exclude-reference", *extra)
        reference = set(data["reference"]["ids"])
        assert len(reference) == 1331
        ids = [t["id"] for t in data["tokens"]]
        assert len(ids) == 8 and not reference & set(ids)
        allowed = [t for t in ranking if t["id"] not in reference]
        if not extra:
            allowed = [t for t in allowed if not t["special"]]
        assert ids == [t["id"] for t in allowed[:8]]
        assert data["exclude_reference"] is True
    # Today's top 8 held reference tokens: the flag changes the list.
    assert set(MINILM_SCAN_TOP8) & reference


def test_scan_exclude_reference_with_ids_and_other_indicators(minilm_dir):
    data = scan_json(minilm_dir, "--top", "3", "--reference", "672,691", "--exclude-reference",
                     "--include-special")  # fmt: skip
    import tokneigh

    emb = tokneigh.load(str(minilm_dir))
    ranking = [t.id for t in emb.scan(reference="672,691", top=10).tokens]
    assert [t["id"] for t in data["tokens"]] == [i for i in ranking if i not in (672, 691)][:3]
    bad = helpers.cli("scan", "--indicator", "norm", "--exclude-reference", "-m", str(minilm_dir))
    helpers.assert_one_line_error(bad, 2, "--exclude-reference")


# --- options a command uses -------------------------------------------------------------------


def is_option(param) -> bool:
    return getattr(param, "param_type_name", "") == "option"


def _commands() -> list:
    found = []
    for name in COMMANDS:
        command = _command(name)
        if hasattr(command, "commands"):
            found += [(f"{name} {sub}", c) for sub, c in command.commands.items()]
        else:
            found.append((name, command))
    return found


def test_tokenize_offers_no_embeddings_option():
    result = helpers.cli("tokenize", "--help")
    assert result.exit_code == 0
    assert "--embeddings" not in result.stdout
    bad = helpers.cli("tokenize", "king", "--embeddings", "output")
    helpers.assert_one_line_error(bad, 2, "--embeddings")


# --- short flags --------------------------------------------------------------------------------


def test_each_short_flag_means_one_option_everywhere():
    meaning: dict[str, set[str]] = {}
    for _, command in _commands():
        for param in command.params:
            if not is_option(param):
                continue
            longs = [o for o in param.opts if o.startswith("--")]
            for short in (o for o in param.opts if not o.startswith("--")):
                meaning.setdefault(short, set()).update(longs)
    assert {s: m for s, m in meaning.items() if len(m) != 1} == {}
    assert meaning["-k"] == {"--top"}


def test_hubness_top_is_the_rows_and_k_a_long_option(llama_dir):
    def hubness(*args: str) -> dict:
        result = helpers.cli("hubness", "-f", "json", "-m", str(llama_dir), *args)
        assert result.exit_code == 0, result.stderr
        return json.loads(result.stdout)

    data = hubness("--k", "5", "--top", "3")
    assert data["k"] == 5 and len(data["hubs"]) == 3
    assert hubness("--k", "5", "-k", "3") == data
    old = hubness("--k", "5", "--hubs", "3")  # the old spelling stays, hidden
    assert old == data
    page = helpers.cli("hubness", "--help").stdout
    assert "--k K" in page and "--hubs" not in page


def test_graph_k_is_a_long_option_and_top_still_works(llama_dir, tmp_path):
    for spelling in (["--k", "3"], ["--top", "3"], ["-k", "3"]):
        out = tmp_path / f"g{len(spelling[0])}.jsonl"
        result = helpers.cli("graph", "-o", out, "-f", "json", "-m", llama_dir, *spelling)
        assert result.exit_code == 0, result.stderr
        assert json.loads(result.stdout)["k"] == 3
    page = helpers.cli("graph", "--help").stdout
    assert "--k K" in page and "--top" not in page


def test_p_is_positive_only():
    page = helpers.cli("serve", "--help").stdout
    assert "--port" in page and "-p," not in page and "-p " not in page
    assert "-p, --positive" in helpers.cli("analogy", "--help").stdout


# --- --model ------------------------------------------------------------------------------------


def test_model_help_names_every_kind():
    for _, command in _commands():
        for param in command.params:
            if is_option(param) and "--model" in param.opts:
                text = param.help or ""
                for kind in ("hub id", "folder", "GGUF", "ollama:NAME"):
                    assert kind in text, (command.name, text)


@pytest.mark.parametrize(
    "command",
    [["tokenize", "king"], ["neighbors", "king"], ["cache", "build"],
     ["diff", "king", "--against"]],  # fmt: skip
)
def test_an_empty_model_is_a_usage_error(command, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if command[-1] == "--against":
        result = helpers.cli(*command, "", "-m", "gpt2")
        helpers.assert_one_line_error(result, 2, "--against", "empty")
    else:
        result = helpers.cli(*command, "--model", "")
        helpers.assert_one_line_error(result, 2, "--model", "empty")
    assert "'gpt2'" not in result.stderr  # not the default model's failure


def test_an_empty_model_variable_is_unset(monkeypatch):
    # TOKNEIGH_MODEL="" is "not set" (as click and most tools read an empty variable): the
    # default model is asked for; offline, that is the error naming gpt2.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TOKNEIGH_MODEL", "")
    result = helpers.cli("tokenize", "king")
    assert result.exit_code == 1 and "'gpt2'" in result.stderr


def test_library_load_of_an_empty_name_is_refused():
    import tokneigh
    from tokneigh.errors import ModelNameError

    with pytest.raises(ModelNameError, match="empty"):
        tokneigh.load("")


# --- the short-list note ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--min-sim", "0.6"], "--min-sim 0.6"),
        (["--words-only", "-k", "30000"], "--words-only"),
        (["--dedupe", "-k", "30000"], "--dedupe"),
    ],
)
def test_the_note_names_the_filter_that_cut_the_list(minilm_dir, args, named):
    result = helpers.cli("neighbors", "king", "-f", "tsv", "-m", minilm_dir, *args)
    assert result.exit_code == 0, result.stderr
    notes = [line for line in result.stderr.splitlines() if "note:" in line]
    assert len(notes) == 1 and named in notes[0], result.stderr
    assert "special tokens are hidden" not in notes[0]


def test_the_note_without_filters_still_names_the_hidden_special_tokens(minilm_dir):
    result = helpers.cli("neighbors", "king", "-k", "30000", "-f", "tsv", "-m", minilm_dir)
    assert "special tokens are hidden (--include-special lists them)" in result.stderr


# --- hints ----------------------------------------------------------------------------------


def test_every_hint_names_an_option_the_command_has(minilm_dir):
    result = helpers.cli("compare", "king", "", "-m", minilm_dir)
    helpers.assert_one_line_error(result, 2, "empty")
    assert "--id" not in result.stderr
    result = helpers.cli("analogy", "king", "", "queen", "-m", minilm_dir)
    helpers.assert_one_line_error(result, 2, "empty")
    assert "--id" not in result.stderr
    result = helpers.cli("neighbors", "", "-m", minilm_dir)
    helpers.assert_one_line_error(result, 2, "empty", "#N")
    # The hint names the id syntax, which every one of them takes (tests/test_id_syntax.py).
    for args in (["compare", "king", "#100"], ["analogy", "king", "#100", "queen"]):
        assert helpers.cli(*args, "-m", minilm_dir).exit_code == 0


def test_hints_are_checked_against_each_command_that_can_raise_them():
    from tokneigh.cli.errors import HINTS

    for option, text in HINTS.values():
        # An option (shown only to a command that has it), or None: the #N syntax every query
        # reads, which the hint then names.
        assert option.startswith("--") if option is not None else "#N" in text
    for name, command in _commands():
        opts = {o for p in command.params for o in getattr(p, "opts", ())}
        assert "--model" not in opts or "--cache-dir" in opts, name
