"""What a newcomer ran into, each checked: notes that say why, cache commands that take the
names they show, messages that fit what happened, tokenize without the matrix."""

from __future__ import annotations

import json
import shutil

from helpers import cli

import tokneigh
from tokneigh.store import listing


def test_a_short_list_says_which_special_tokens_were_hidden(gpt2_dir):
    result = cli("neighbors", "Mike", "--top", "100000", "-f", "tsv", "-m", str(gpt2_dir))
    assert result.exit_code == 0, result.stderr
    # All but <|endoftext|> and the fixture's zero rows 7 and 11.
    assert len(result.stdout.rstrip("\n").split("\n")) == 1 + 50254
    notes = [line for line in result.stderr.splitlines() if "tokens listed for" in line]
    assert len(notes) == 1, result.stderr
    assert "1 special token is hidden" in notes[0] and "--include-special" in notes[0]
    assert "2 rows have no direction" in notes[0]
    assert "filters" not in notes[0]  # no filter was given
    assert "--top 100000 is more than the model's 50257 tokens" in result.stderr


def test_a_filtered_short_list_names_the_filter_that_cut_it(minilm_dir):
    result = cli("neighbors", "queen", "--min-sim", "0.45", "-m", str(minilm_dir))
    assert result.exit_code == 0, result.stderr
    [note] = [line for line in result.stderr.splitlines() if "note:" in line]
    assert "only 6 tokens pass --min-sim 0.45 for 'queen'" in note
    assert "special tokens are hidden" not in note  # they are not why the list is short


def test_cache_build_says_once_what_it_did(gpt2_dir, cache_dir):
    first = cli("cache", "build", "-m", str(gpt2_dir))
    assert first.exit_code == 0, first.stderr
    assert first.stdout.startswith("built ") and first.stdout.count("\n") == 1
    assert "(first use)" in first.stderr and "cached " not in first.stderr
    again = cli("cache", "build", "-m", str(gpt2_dir))
    assert again.stdout.startswith("already cached: ") and "building" not in again.stderr
    forced = cli("cache", "build", "--force", "-m", str(gpt2_dir))
    assert forced.stdout.startswith("built ") and forced.stdout.count("\n") == 1
    assert "building the cache" in forced.stderr and "first use" not in forced.stderr


def test_cache_list_formats_and_clear_by_the_listed_name(gpt2_dir, llama_dir, cache_dir):
    for model in (gpt2_dir, llama_dir):
        assert cli("cache", "build", "-m", str(model)).exit_code == 0
    listed = json.loads(cli("cache", "list", "--format", "json").stdout)
    assert sorted(e["path"] for e in listed) == sorted([str(gpt2_dir), str(llama_dir)])
    by_path = {e["path"]: e for e in listed}
    llama = by_path[str(llama_dir)]
    assert llama["model"] == f"{llama_dir.parent.name}/{llama_dir.name}"
    assert llama["vocab_size"] == 479 and llama["source"] == "local"
    tsv = cli("cache", "list", "-f", "tsv").stdout.splitlines()
    assert tsv[0].split("\t")[:2] == ["model", "path"] and len(tsv) == 3

    cleared = cli("cache", "clear", "--model", llama["model"])  # the name the list shows
    assert cleared.exit_code == 0 and "removed 1 cached entry" in cleared.stdout
    left = [e["path"] for e in json.loads(cli("cache", "list", "-f", "json").stdout)]
    assert left == [str(gpt2_dir)]


def test_cache_clear_takes_the_name_of_a_folder_deleted_since(gpt2_dir, tmp_path, cache_dir):
    copy = tmp_path / "gone" / "tiny"
    shutil.copytree(gpt2_dir, copy)
    assert cli("cache", "build", "-m", str(copy)).exit_code == 0
    shutil.rmtree(copy)
    cleared = cli("cache", "clear", "--model", str(copy))
    assert cleared.exit_code == 0, cleared.stderr
    assert "removed 1 cached entry" in cleared.stdout and listing.list_entries(cache_dir) == []
    missing = cli("cache", "clear", "--model", "gone/tiny")
    assert missing.exit_code == 0 and "is not cached" in missing.stderr


def test_an_ambiguous_short_name_is_refused(gpt2_dir, tmp_path, cache_dir):
    for parent in ("a", "b"):
        shutil.copytree(gpt2_dir, tmp_path / parent / "same" / "tiny")
        built = cli("cache", "build", "-m", str(tmp_path / parent / "same" / "tiny"))
        assert built.exit_code == 0
    result = cli("cache", "clear", "--model", "same/tiny")
    assert result.exit_code == 2 and "--cache-dir" not in result.stderr
    assert "names several cached models" in result.stderr
    assert len(listing.list_entries(cache_dir)) == 2


def test_tokenize_reads_only_the_tokenizer(llama_dir, cache_dir):
    result = cli("tokenize", "the king", "-m", str(llama_dir), "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert "building" not in result.stderr
    assert not cache_dir.exists() or listing.list_entries(cache_dir) == []  # nothing extracted
    cached = tokneigh.load(str(llama_dir))
    assert json.loads(result.stdout)[0]["ids"] == cached.tokenize("the king").ids


def test_a_missing_argument_is_exit_2_not_help(gpt2_dir):
    wanted = {"neighbors": "give a QUERY, --id N", "tokenize": "missing TEXT",
              "compare": "missing B"}  # fmt: skip
    for args in (["neighbors"], ["tokenize"], ["compare", "ban"]):
        result = cli(*args, "-m", str(gpt2_dir))
        assert result.exit_code == 2, args
        assert result.stdout == "" and result.stderr.count("\n") == 1
        assert result.stderr.startswith(f"tokneigh: error: {wanted[args[0]]}"), result.stderr
