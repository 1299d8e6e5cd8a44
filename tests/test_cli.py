"""The command line through Typer's runner: output formats, the JSON contract, help, plots."""

from __future__ import annotations

import json

import helpers
import numpy as np
import pytest

import tokneigh


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-cache")


@pytest.fixture
def cli(gpt2_dir, shared_cache):
    def invoke(*args: str, model: str | None = None):
        return helpers.cli(
            *args, "--model", model or str(gpt2_dir), "--cache-dir", str(shared_cache)
        )

    return invoke


@pytest.fixture
def emb(gpt2_dir, shared_cache):
    return tokneigh.load(str(gpt2_dir), cache_dir=shared_cache)


def test_neighbors_json_contract(cli, emb, gpt2_dir):
    result = cli("neighbors", "Mike", "banana", "--id", "447", "--top", "5", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [d["query"] for d in data] == ["Mike", "banana", None]
    assert [d["query_id"] for d in data] == [None, None, 447]
    for item in data:
        assert set(item) == {"query", "query_id", "query_ids", "query_tokens", "model",
                             "vocab_size", "dim", "metric", "neighbors"}
        assert item["model"] == str(gpt2_dir) and item["vocab_size"] == 50257
        assert item["dim"] == 32
        assert [n["rank"] for n in item["neighbors"]] == [1, 2, 3, 4, 5]
        for n in item["neighbors"]:
            assert set(n) == {"rank", "id", "token", "similarity"}
            assert isinstance(n["id"], int) and isinstance(n["similarity"], float)
    assert data[1]["query_ids"] == emb.tokenize("banana").ids
    assert data[1]["query_tokens"] == ["ban", "ana"]
    expected = emb.neighbors("banana", k=5)
    assert [n["id"] for n in data[1]["neighbors"]] == [n.id for n in expected.neighbors]
    assert data[2]["query_ids"] == [447]
    assert data[2]["query_tokens"] == ["\\xe2\\x80"]  # a byte fragment, escaped, not U+FFFD


def test_tokenize_json_contract(cli):
    result = cli("tokenize", "banana", " banana", "apple", "☃", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    # labels: as the tables show each token (quoted; a byte fragment as bytes)
    assert data == [
        {"text": "banana", "ids": data[0]["ids"], "tokens": ["ban", "ana"],
         "labels": ['"ban"', '"ana"']},
        {"text": " banana", "ids": data[1]["ids"], "tokens": [" banana"],
         "labels": ['" banana"']},
        {"text": "apple", "ids": data[2]["ids"], "tokens": ["apple"], "labels": ['"apple"']},
        {"text": "☃", "ids": data[3]["ids"], "tokens": ["\\xe2\\x98", "\\x83"],
         "labels": ['b"\\xe2\\x98"', 'b"\\x83"']},
    ]  # fmt: skip
    assert len(data[0]["ids"]) == 2 and len(data[1]["ids"]) == len(data[2]["ids"]) == 1


def test_compare_json_contract(cli, emb):
    result = cli("compare", "ban", "ana", "--format", "json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert set(data) == {"a", "b", "metric", "similarity", "cosine", "angle_degrees", "pearson",
                         "norm_a", "norm_b", "rank_of_b"}
    assert data["metric"] == "cosine" and data["similarity"] == data["cosine"]
    assert data["a"] == {"text": "ban", "query_id": None, "ids": emb.tokenize("ban").ids,
                         "tokens": ["ban"]}
    assert data["b"]["tokens"] == ["ana"]
    assert data["cosine"] == pytest.approx(emb.similarity("ban", "ana"))
    assert isinstance(data["rank_of_b"], int) and data["rank_of_b"] >= 1
    # The CLI hides special tokens unless --include-special: the API's rank with that filter.
    no_special = tokneigh.Filters(skip_special=True)
    assert data["rank_of_b"] == emb.rank("ban", "ana", filters=no_special)


def test_tsv_is_plain_with_one_row_per_neighbour(cli):
    result = cli("neighbors", "Mike", " Mike", "-k", "3", "--format", "tsv")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "query\tquery_id\trank\tid\ttoken\tsimilarity"
    assert len(lines) == 1 + 2 * 3
    assert all(len(line.split("\t")) == 6 for line in lines)
    assert "\x1b" not in result.stdout and "│" not in result.stdout
    assert lines[1].startswith("Mike\t\t1\t")
    assert lines[4].startswith(" Mike\t\t1\t")


def test_table_shows_title_pieces_and_quoted_tokens(cli, emb):
    result = cli("neighbors", "banana", "-k", "5")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    title = " ".join(out.split("┏")[0].split())  # the title wraps at the terminal's width
    assert 'Neighbours of "banana" = "ban" + "ana" (mean of 2 tokens)' in title
    assert "50,257 tokens × 32 dims" in title
    for n in emb.neighbors("banana", k=5).neighbors:
        assert n.label in out and f"{n.similarity:.3f}" in out
    result = cli("neighbors", "--id", "447", "--id", "4995", "-k", "1")
    assert 'b"\\xe2\\x80"' in result.stdout  # a fragment shows as escaped bytes
    assert '" Mike"' in result.stdout  # the leading space is visible
    assert "\ufffd" not in result.stdout


def test_tokenize_human_output_matches_the_seed_sentence(cli):
    result = cli("tokenize", "banana", "cosmic")
    assert result.exit_code == 0, result.stderr
    assert '"banana" comprises 2 tokens: ["ban", "ana"]' in result.stdout
    assert '"cosmic" comprises 2 tokens: ["cos", "mic"]' in result.stdout
    assert '" banana" comprises 1 token: [" banana"]' in result.stdout


def test_compare_table_and_plot(cli, emb, tmp_path):
    png = tmp_path / "ban-ana.png"
    result = cli("compare", "ban", "ana", "--plot", str(png))
    assert result.exit_code == 0, result.stderr
    assert f"{emb.similarity('ban', 'ana'):.3f}" in result.stdout
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_compare_plot_is_the_seed_scatter(emb, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tokneigh.present.plot import compare_scatter

    seen = {}
    monkeypatch.setattr(plt, "close", lambda fig: seen.setdefault("fig", fig))
    result = emb.compare("ban", "ana")
    compare_scatter(emb.raw_vector("ban"), emb.raw_vector("ana"), result, tmp_path / "x.png")
    ax = seen["fig"].axes[0]
    assert ax.get_title() == f"Cosine similarity = {result.cosine:.3f}"
    offsets = ax.collections[0].get_offsets()
    assert offsets.shape == (32, 2)  # one dot per dimension
    np.testing.assert_allclose(offsets[:, 0], emb.raw_vector("ban"), rtol=1e-5)


def test_top_beyond_vocab_is_clamped_with_a_warning(cli):
    # --include-special: by default the CLI leaves <|endoftext|> out of neighbour lists.
    result = cli("neighbors", "Mike", "--top", "60000", "--format", "tsv", "--include-special")
    assert result.exit_code == 0
    assert "warning" in result.stderr and "50257" in result.stderr
    # Every row but the zero rows 7 and 11 (no direction: never ranked). Not splitlines: U+2028.
    assert len(result.stdout.rstrip("\n").split("\n")) == 1 + 50255


def test_version_and_help_with_examples_on_every_command():
    result = helpers.cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"tokneigh {tokneigh.__version__}"
    for command in (["neighbors"], ["tokenize"], ["compare"], ["cache"], ["cache", "list"],
                    ["cache", "build"], ["cache", "clear"], ["cache", "path"], []):
        result = helpers.cli(*command, "--help")
        assert result.exit_code == 0, command
        assert "Example" in result.stdout, command


def test_progress_goes_to_stderr_and_results_to_stdout(gpt2_dir, tmp_path):
    result = helpers.cli("neighbors", "Mike", "-k", "2", "-f", "json", "--model",
                         str(gpt2_dir), "--cache-dir", str(tmp_path / "fresh"))
    assert result.exit_code == 0
    assert "building the cache" in result.stderr
    json.loads(result.stdout)  # nothing but the JSON on stdout
