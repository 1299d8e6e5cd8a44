"""`tokneigh shell`: scripted through a pipe, in-process line by line, and once on a pty."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tokneigh
from tokneigh.cli.shell import Shell, ShellFormat


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shell-root")


@pytest.fixture(autouse=True)
def _shared_cache(shared_root: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # One cache root for the module: each test's fresh process skips re-extracting the matrix.
    monkeypatch.setenv("TOKNEIGH_CACHE_DIR", str(shared_root))


def run_shell(model: Path, text: str | bytes, *args: str) -> subprocess.CompletedProcess:
    data = text.encode("utf-8") if isinstance(text, str) else text
    done = subprocess.run(
        [sys.executable, "-m", "tokneigh", "shell", "--model", str(model), *args],
        input=data,
        capture_output=True,
        env=dict(os.environ),
        timeout=600,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode("utf-8"), done.stderr.decode("utf-8")
    )


def errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("tokneigh: error: ")]


def test_pipe_json_lines_one_object_per_line(gpt2_dir: Path) -> None:
    done = run_shell(gpt2_dir, "Mike\n:top 5\nbanana\n", "--format", "json")
    assert done.returncode == 0, done.stderr
    assert not errors(done.stderr)
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    first, top, banana = (json.loads(line) for line in lines)
    emb = tokneigh.load(str(gpt2_dir))
    assert first["command"] == "neighbors" and first["query"] == "Mike"
    expected = emb.neighbors("Mike", k=10).neighbors
    assert [n["id"] for n in first["neighbors"]] == [n.id for n in expected]
    assert top == {"command": "top", "top": 5}
    assert banana["query_tokens"] == ["ban", "ana"] and len(banana["neighbors"]) == 5


def test_pipe_table_has_no_prompt_and_no_colour(gpt2_dir: Path) -> None:
    done = run_shell(gpt2_dir, "Mike\n:compare ban ana\n:tokenize banana\n")
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x1b" not in done.stderr  # no ANSI codes at all
    assert "tokneigh>" not in done.stdout + done.stderr
    assert done.stdout.count("Neighbours of") == 1
    assert "cosine similarity" in done.stdout
    assert '"banana" comprises 2 tokens: ["ban", "ana"]' in done.stdout


def test_bad_lines_report_one_error_each_and_the_loop_goes_on(gpt2_dir: Path) -> None:
    script = (
        ":bogus\n"  # unknown command
        ":top zero\n"  # not a number
        ":top 0\n"  # below 1
        ":compare onlyone\n"  # wrong arity
        ':compare "unclosed\n'  # shlex error
        ":id 99999999\n"  # out of range
        ":model /no/such/folder\n"  # cannot load: the current model stays
        ":embeddings sideways\n"
        "Mike\n"  # still answered
    )
    done = run_shell(gpt2_dir, script, "--format", "json")
    assert done.returncode == 0
    assert len(errors(done.stderr)) == 8, done.stderr
    assert "Traceback" not in done.stderr
    out = [json.loads(line) for line in done.stdout.splitlines()]
    assert [o["command"] for o in out] == [
        "bogus", "top", "top", "compare", "compare", "id", "model", "embeddings", "neighbors"
    ]
    assert all("error" in o for o in out[:8])
    assert out[-1]["model"] == str(gpt2_dir) and len(out[-1]["neighbors"]) == 10


def test_quit_stops_reading_and_blank_lines_give_an_error_object(gpt2_dir: Path) -> None:
    done = run_shell(gpt2_dir, "\n   \nMike\n:quit\nbanana\n", "--format", "json")
    assert done.returncode == 0, done.stderr
    out = [json.loads(x) for x in done.stdout.splitlines()]
    assert len(out) == 3  # one line out per line in, up to :quit
    assert [o.get("error") is not None for o in out] == [True, True, False]
    assert out[2]["query"] == "Mike"
    table = run_shell(gpt2_dir, "\n   \nMike\n")  # a person's blank lines ask nothing
    assert table.returncode == 0 and table.stderr == "" and '"Mike"' in table.stdout


def test_invalid_utf8_line_is_reported_and_skipped(gpt2_dir: Path) -> None:
    done = run_shell(gpt2_dir, b"\xff\xfe\nMike\n", "--format", "json")
    assert done.returncode == 0
    assert len(errors(done.stderr)) == 1 and "UTF-8" in done.stderr
    assert json.loads(done.stdout.splitlines()[-1])["query"] == "Mike"


def test_a_model_that_cannot_load_ends_the_command(tmp_path: Path) -> None:
    done = run_shell(tmp_path / "missing", "Mike\n")
    assert done.returncode == 1
    assert len(done.stderr.strip().splitlines()) == 1 and errors(done.stderr)


def test_shell_across_families_and_matrices(gpt2_dir: Path, llama_dir: Path) -> None:
    script = f":model {llama_dir}\nking\n:embeddings output\nking\n:tokenize €\n"
    done = run_shell(gpt2_dir, script, "--format", "json", "--top", "3")
    assert done.returncode == 0, done.stderr
    model, king_in, kind, king_out, euro = (json.loads(x) for x in done.stdout.splitlines())
    assert model["model"] == str(llama_dir) and model["embeddings"] == "input"
    assert kind["embeddings"] == "output"
    out = tokneigh.load(str(llama_dir), embeddings="output")
    expected = out.neighbors("king", 3).neighbors
    assert [n["id"] for n in king_out["neighbors"]] == [n.id for n in expected]
    assert king_in["neighbors"] != king_out["neighbors"]
    assert euro["items"][0]["tokens"][-3:] == ["\\xe2", "\\x82", "\\xac"]


# --- in process: each command's output --------------------------------------------------------


@pytest.fixture(scope="module")
def emb(gpt2_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    return tokneigh.load(str(gpt2_dir), cache_dir=tmp_path_factory.mktemp("shell-cache"))


def make_shell(emb, output: ShellFormat = ShellFormat.json) -> Shell:
    def loader(name: str, kind: str, metric: str = "cosine"):
        return tokneigh.load(name, embeddings=kind, metric=metric)

    return Shell(emb, top=4, output=output, interactive=False, loader=loader)


def test_commands_in_process(emb, capsys: pytest.CaptureFixture[str]) -> None:
    sh = make_shell(emb)
    for line in (" Mike", ":n :)", ":id 50256", ":compare ban ana", ':t "New York" x', ":top"):
        assert sh.run_line(line + "\n")
    assert sh.run_line(":q") is False
    out = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert out[0]["query"] == " Mike" and out[0]["query_tokens"] == [" Mike"]  # space kept
    assert out[1]["query"] == ":)"
    assert out[2]["query_ids"] == [50256] and out[2]["neighbors"][0]["id"] == 50256
    assert out[3]["rank_of_b"] == emb.compare("ban", "ana").rank_of_b
    assert [i["text"] for i in out[4]["items"]] == ["New York", "x"]
    assert out[5] == {"command": "top", "top": 4}


def test_help_lists_every_command(emb, capsys: pytest.CaptureFixture[str]) -> None:
    make_shell(emb, ShellFormat.table).run_line(":help")
    text = capsys.readouterr().out
    for command in (":compare", ":tokenize", ":analogy", ":top", ":model", ":quit", ":id"):
        assert command in text


def test_analogy_equals_numpy(emb, capsys: pytest.CaptureFixture[str]) -> None:
    make_shell(emb).run_line(":analogy man king woman")
    [got] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    unit = np.asarray(emb.unit, dtype=np.float64)

    def vec(word: str) -> np.ndarray:
        v = unit[emb.tokenize(word).ids].mean(axis=0)
        return v / np.linalg.norm(v)

    target = vec("king") - vec("man") + vec("woman")
    scores = unit @ (target / np.linalg.norm(target))
    for word in ("man", "king", "woman", "<|endoftext|>"):  # the terms, and special tokens
        scores[emb.tokenize(word).ids] = -np.inf
    expected = np.argsort(-scores, kind="stable")[:4]
    assert [n["id"] for n in got["neighbors"]] == expected.tolist()
    assert [n["rank"] for n in got["neighbors"]] == [1, 2, 3, 4]


def test_special_tokens_are_left_out_as_in_the_other_commands(
    minilm_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """[unused0]'s nearest rows are other never-trained [unusedN] slots: the shell leaves them
    out, as `tokneigh neighbors` does, unless --include-special."""
    minilm = tokneigh.load(str(minilm_dir), cache_dir=tmp_path)
    for skip in (True, False):
        sh = make_shell(minilm)
        sh.top, sh.filters = 6, tokneigh.Filters(skip_special=skip)
        sh.run_line(":id 1")
        sh.run_line(":compare king queen")
        shown, compared = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
        want = minilm.neighbors(1, k=6, filters=tokneigh.Filters(skip_special=skip)).neighbors
        assert [n["id"] for n in shown["neighbors"]] == [n.id for n in want]
        ranked = minilm.rank("king", "queen", filters=tokneigh.Filters(skip_special=skip))
        assert compared["rank_of_b"] == ranked
        specials = sum(minilm.codec.is_special(n["id"]) for n in shown["neighbors"])
        # Only the query's own [unused0]; or, included, the other slots crowd the list.
        assert specials == 1 if skip else specials >= 5


# --- on a terminal: prompt, readline history ----------------------------------------------------


def test_terminal_session_prompts_and_keeps_history(gpt2_dir: Path, shared_root: Path) -> None:
    import pty
    import select

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tokneigh", "shell", "--model", str(gpt2_dir), "--top", "3"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    seen = b""

    def read_until(marker: bytes, count: int = 1) -> None:
        nonlocal seen
        while seen.count(marker) < count:
            ready, _, _ = select.select([master], [], [], 120)
            assert ready, seen.decode("utf-8", "replace")
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk

    try:
        read_until(b"tokneigh> ")
        os.write(master, b"Mike\n")
        read_until(b"tokneigh> ", 2)
        os.write(master, b":quit\n")
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = seen.decode("utf-8", "replace")
    assert "tokneigh shell ·" in text and "Neighbours of" in text
    history = (shared_root / "shell_history").read_text(encoding="utf-8")
    assert "Mike" in history and ":quit" in history


# --- the reader leaving early (`| head`) ------------------------------------------------------


@pytest.mark.parametrize("fmt", ["table", "json"])
def test_reader_leaving_early_ends_the_shell_quietly(gpt2_dir: Path, fmt: str) -> None:
    # 300 queries, far more output than a pipe buffer holds; head keeps two lines and leaves.
    pipeline = (
        f'yes Mike | head -n 300 | "{sys.executable}" -m tokneigh shell --model "{gpt2_dir}" '
        f'--format {fmt} | head -n 2 >/dev/null; echo "status=${{PIPESTATUS[2]}}"'
    )
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=600)
    assert "status=0" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr and not errors(done.stderr)


def test_plain_command_into_head_has_no_traceback(gpt2_dir: Path) -> None:
    # Rich exits on a broken pipe with SystemExit; the root group must let it through cleanly.
    pipeline = (
        f'"{sys.executable}" -m tokneigh neighbors Mike --top 3000 --model "{gpt2_dir}" '
        f'| head -n 1 >/dev/null; echo "status=${{PIPESTATUS[0]}}"'
    )
    done = subprocess.run(["bash", "-c", pipeline], capture_output=True, text=True, timeout=600)
    assert "status=" in done.stdout
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr, done.stderr
