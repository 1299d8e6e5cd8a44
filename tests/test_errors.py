"""Bad input: one line on stderr, a non-zero exit (2 for usage errors), never a traceback,
and never a change to the cache."""

from __future__ import annotations

import hashlib

import pytest
from helpers import assert_one_line_error, run_cli


@pytest.fixture(scope="module")
def warm_cache(gpt2_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("errors-cache")
    result = run_cli("cache", "build", "--model", str(gpt2_dir), "--cache-dir", str(root))
    assert result.returncode == 0, result.stderr
    return root


def snapshot(root):
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and ".locks" not in p.parts
    }


USAGE_ERRORS = [
    (["neighbors", ""], "empty"),
    (["neighbors", "   "], "whitespace"),
    (["neighbors", "--top", "5"], "QUERY"),
    (["neighbors", "Mike", "--top", "0"], "--top"),
    (["neighbors", "Mike", "--top", "many"], "--top"),
    (["neighbors", "--id", "50257"], "50257"),
    (["neighbors", "--id", "-1"], "-1"),
    (["neighbors", "Mike", "--format", "xml"], "--format"),
    (["tokenize", ""], "empty"),
    (["compare", "ban"], "missing B"),
    (["compare", "ban", " "], "whitespace"),
    (["compare", "ban", "ana", "--plot", "figure.txt"], ".png"),
    (["compare", "ban", "ana", "--plot", "/no/such/folder/x.png"], "/no/such/folder"),
    (["frobnicate"], "frobnicate"),
    (["neighbors", "Mike", "--bogus"], "--bogus"),
]


@pytest.mark.parametrize(("args", "fragment"), USAGE_ERRORS, ids=lambda v: str(v))
def test_usage_errors_exit_2_with_one_line(args, fragment, gpt2_dir, warm_cache):
    before = snapshot(warm_cache)
    result = run_cli(*args, "--model", str(gpt2_dir), "--cache-dir", str(warm_cache))
    assert_one_line_error(result, 2, fragment)
    assert snapshot(warm_cache) == before


def test_cache_clear_needs_a_model_or_all(warm_cache):
    result = run_cli("cache", "clear", "--cache-dir", str(warm_cache))
    assert_one_line_error(result, 2, "--all")


def test_model_path_that_does_not_exist(tmp_path):
    result = run_cli("neighbors", "Mike", "--model", str(tmp_path / "nowhere"))
    assert_one_line_error(result, 1, "no such folder")


def test_model_folder_without_a_checkpoint(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_cli("neighbors", "Mike", "--model", str(tmp_path / "empty"))
    assert_one_line_error(result, 1, "config.json")


def test_model_path_that_is_a_file(tmp_path):
    (tmp_path / "weights.bin").write_bytes(b"x")
    result = run_cli("neighbors", "Mike", "--model", str(tmp_path / "weights.bin"))
    assert_one_line_error(result, 1, "is a file")


def test_checkpoint_without_tokenizer(gpt2_dir, tmp_path):
    folder = tmp_path / "no-tokenizer"
    folder.mkdir()
    for name in ("config.json", "model.safetensors"):
        (folder / name).write_bytes((gpt2_dir / name).read_bytes())
    result = run_cli("neighbors", "Mike", "--model", str(folder))
    assert_one_line_error(result, 1, "tokenizer")


@pytest.mark.parametrize(
    ("model", "code", "fragment"),
    [
        ("not a model!", 2, "neither an existing folder nor a valid hub id"),
        ("a/b/c", 1, "no such folder"),  # two slashes: a path, and none exists
        ("owner/-bad", 2, "neither an existing folder nor a valid hub id"),
        ("x" * 300, 2, "neither an existing folder nor a valid hub id"),
    ],
)
def test_malformed_hub_ids(model, code, fragment):
    result = run_cli("neighbors", "Mike", "--model", model)
    assert_one_line_error(result, code, fragment)


def test_uncached_hub_model_with_hf_hub_offline(tmp_path):
    result = run_cli("neighbors", "Mike", "--model", "gpt2", env={"HF_HUB_OFFLINE": "1"})
    assert_one_line_error(result, 1, "HF_HUB_OFFLINE", "--model PATH")


def test_uncached_hub_model_with_the_hub_unreachable(tmp_path):
    # Port 9 on loopback refuses connections: the hub is unreachable, deterministically.
    env = {"HF_HUB_OFFLINE": "0", "HF_ENDPOINT": "http://127.0.0.1:9"}
    result = run_cli("neighbors", "Mike", "--model", "gpt2", env=env, timeout=120)
    assert_one_line_error(result, 1, "cannot be reached", "--model PATH")


def test_cache_root_that_cannot_be_written(gpt2_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run_cli("neighbors", "Mike", "--model", str(gpt2_dir),
                     "--cache-dir", str(blocker / "cache"))
    assert_one_line_error(result, 1, str(blocker / "cache"), "TOKNEIGH_CACHE_DIR")


def test_python_dash_m_and_version():
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("tokneigh ")
