"""Issue #5, reliability: races, crashes, damaged caches, unsafe inputs, hostile environments.

Races and crashes run the real CLI in child processes (tests/reliability_driver.py injects the
faults: a start barrier, a slow build, a SIGKILL at a chosen call); the rest call the API or the
CLI in-process. Network tests talk only to a server of their own on 127.0.0.1.
"""

from __future__ import annotations

import ast
import builtins
import errno
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_one_error_line
from helpers import cli_outcome as cli
from helpers_cache import DRIVER, QUERY, builds, entries, leftovers, warnings
from hypothesis import given, settings
from hypothesis import strategies as st

import tokneigh
from tokneigh.api import loading as api
from tokneigh.errors import ModelNotFoundError, TokneighError
from tokneigh.store import entries as store_entries
from tokneigh.store import files, layout

SRC = Path(tokneigh.__file__).parent
ENTRY_FILES = {layout.MATRIX, layout.NORMS, layout.TOKENIZER, layout.INDEX, layout.META}


# --- helpers --------------------------------------------------------------------------------


def drive(*args: object, env: dict[str, str] | None = None, **kw) -> subprocess.Popen:
    """The CLI in a child process, with the driver's faults (see reliability_driver.py)."""
    return subprocess.Popen(
        [sys.executable, str(DRIVER), *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        **kw,
    )


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)  # a safety net only: nothing here takes that long
    return proc.returncode, out, err


def rewrite_weights(folder: Path, seed: int, extra_metadata: bool = False) -> None:
    """New random input embeddings in ``folder``'s model.safetensors (same shapes)."""
    from safetensors import safe_open
    from safetensors.numpy import save_file

    path = folder / "model.safetensors"
    with safe_open(str(path), framework="numpy") as handle:
        metadata = dict(handle.metadata() or {})
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    rng = np.random.default_rng(seed)
    tensors["wte.weight"] = rng.standard_normal(tensors["wte.weight"].shape).astype(np.float32)
    if extra_metadata:
        metadata["note"] = "rewritten with a longer header" * 4
    save_file(tensors, str(path), metadata=metadata)


def result_of(emb: api.Embeddings) -> list[list[tuple[int, float]]]:
    return [
        [(n.id, round(n.similarity, 6)) for n in r.neighbors]
        for r in emb.neighbors_many(["Mike", " banana"], k=8)
    ]


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected_result(tiny_dir: Path, template: Path) -> list:
    return result_of(api.load(str(tiny_dir), cache_dir=template))


@pytest.fixture
def seeded(template: Path, cache_dir: Path) -> Path:
    """The test's cache root holding a copy of the template entry; returns the entry folder."""
    shutil.copytree(template, cache_dir, dirs_exist_ok=True)
    (entry,) = entries(cache_dir)
    return entry


@pytest.fixture
def own_checkpoint(tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny checkpoint, for tests that rewrite its weights."""
    return Path(shutil.copytree(tiny_dir, tmp_path / "own-ckpt"))


# --- 1. races -------------------------------------------------------------------------------

RACERS = 4


def race(tmp_path: Path, model: Path, n: int = RACERS) -> list[tuple[int, str, str]]:
    """n processes that start `load` at the same instant; the build sleeps 1 s after
    extracting, so every one of them finds the entry missing (or damaged) before it is done."""
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {"DRIVER_BARRIER": f"{barrier}:{n}", "DRIVER_SLOW_BUILD": "1.0"}
    procs = [drive(*QUERY, "--model", model, env=env) for _ in range(n)]
    return [finish(p) for p in procs]


def test_concurrent_first_uses_extract_once_and_agree(tiny_dir, cache_dir, tmp_path, expected):
    results = race(tmp_path, tiny_dir)
    assert [code for code, _, _ in results] == [0] * RACERS, [err for _, _, err in results]
    assert all(json.loads(out) == expected for _, out, _ in results)
    # One process extracted; the others waited on the lock and reused its entry.
    assert sum(builds(err) for _, _, err in results) == 1
    assert not any(warnings(err) for _, _, err in results)
    (entry,) = entries(cache_dir)
    assert leftovers(cache_dir) == []
    store_entries.check_entry(entry)  # whole: validates
    assert {p.name for p in entry.iterdir()} >= ENTRY_FILES


def test_concurrent_uses_of_a_damaged_entry_rebuild_once(seeded, cache_dir, tmp_path, tiny_dir,
                                                         expected):
    os.truncate(seeded / layout.MATRIX, 1000)
    results = race(tmp_path, tiny_dir)
    assert [code for code, _, _ in results] == [0] * RACERS, [err for _, _, err in results]
    assert all(json.loads(out) == expected for _, out, _ in results)
    assert sum(builds(err) for _, _, err in results) == 1
    assert all(len(warnings(err)) <= 1 for _, _, err in results)
    assert sum(len(warnings(err)) for _, _, err in results) >= 1
    assert leftovers(cache_dir) == []
    store_entries.check_entry(seeded)


# --- 2. crashes -----------------------------------------------------------------------------

# name: (where the driver SIGKILLs the build, whether it replaces an old entry)
KILL_POINTS = {
    # The matrix streams into files.create's file; norms.npy is then the first fsync_write.
    "after-scratch-mkdir": ("create:1", False),
    "after-matrix-written": ("fsync_write:1", False),
    "after-meta-written-before-rename": ("rename:1", False),
    "between-the-two-renames": ("rename:2", True),
    "after-the-renames-before-old-entry-removed": ("rmtree:1", True),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_build_killed_mid_write_leaves_nothing_a_later_run_uses(
    point, tiny_dir, own_checkpoint, cache_dir, tmp_path, expected
):
    kill_at, replacing = KILL_POINTS[point]
    model = tiny_dir
    if replacing:
        # An old entry of a checkpoint that has changed since: the next run replaces it.
        model = own_checkpoint
        code, old, err = cli(*QUERY, "--model", model)
        assert code == 0, err
        rewrite_weights(model, seed=1)
        stat = (model / "model.safetensors").stat()
        os.utime(model / "model.safetensors", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        code, out, err = cli(*QUERY, "--model", model, "--cache-dir", tmp_path / "fresh")
        assert code == 0, err
        expected = json.loads(out)
        assert expected != json.loads(old)  # the old entry's answer is now wrong

    code, out, err = finish(drive(*QUERY, "--model", model, env={"DRIVER_KILL_AT": kill_at}))
    assert code == -signal.SIGKILL, err
    # The kill happened where intended: check what the dead build left.
    scratch = [p for p in cache_dir.iterdir() if p.name.startswith(".tmp-")]
    trash = [p for p in cache_dir.iterdir() if p.name.startswith(".trash-")]
    written = {
        "after-scratch-mkdir": set(),
        "after-matrix-written": {layout.MATRIX},
        "after-meta-written-before-rename": ENTRY_FILES,
        "between-the-two-renames": ENTRY_FILES,
    }
    if point in written:
        assert [{f.name for f in s.iterdir()} for s in scratch] == [written[point]]
        assert entries(cache_dir) == []  # no entry at all: the next run must build one
    else:
        assert scratch == [] and len(entries(cache_dir)) == 1
    assert len(trash) == (1 if replacing else 0)

    code, out, err = finish(drive(*QUERY, "--model", model))
    assert code == 0, err
    assert json.loads(out) == expected  # never the old entry, never a partial one
    assert builds(err) == (0 if point.startswith("after-the-renames") else 1)
    assert leftovers(cache_dir) == []  # stale scratch and trash folders are cleaned
    (entry,) = entries(cache_dir)
    store_entries.check_entry(entry)


# --- 3. damage ------------------------------------------------------------------------------


def _resave(name: str, change):
    def damage(entry: Path) -> None:
        array = np.load(entry / name)
        np.save(entry / name, change(array))

    return damage


def _truncate(name: str, size) -> object:
    def damage(entry: Path) -> None:
        os.truncate(entry / name, size((entry / name).stat().st_size))

    return damage


def _write(name: str, data: bytes):
    def damage(entry: Path) -> None:
        (entry / name).write_bytes(data)

    return damage


def _edit_meta(change):
    def damage(entry: Path) -> None:
        meta = json.loads((entry / layout.META).read_text())
        change(meta)
        (entry / layout.META).write_text(json.dumps(meta))

    return damage


def _unlink(name: str):
    return lambda entry: (entry / name).unlink()


def _make_folder(name: str):
    def damage(entry: Path) -> None:
        (entry / name).unlink()
        (entry / name).mkdir()

    return damage


def _other_tokenizer(entry: Path) -> None:
    from checkpoints import minilm_folder

    shutil.copy(minilm_folder() / "tokenizer.json", entry / layout.TOKENIZER)


DAMAGE = {
    "matrix-truncated-to-nothing": _truncate(layout.MATRIX, lambda size: 0),
    "matrix-truncated-in-header": _truncate(layout.MATRIX, lambda size: 40),
    "matrix-truncated-in-data": _truncate(layout.MATRIX, lambda size: size // 2),
    "matrix-one-byte-short": _truncate(layout.MATRIX, lambda size: size - 1),
    "matrix-with-trailing-bytes": _truncate(layout.MATRIX, lambda size: size + 64),
    "matrix-float64": _resave(layout.MATRIX, lambda a: a.astype(np.float64)),
    "matrix-big-endian": _resave(layout.MATRIX, lambda a: a.astype(">f4")),
    "matrix-one-row-short": _resave(layout.MATRIX, lambda a: a[:-1]),
    "matrix-transposed": _resave(layout.MATRIX, lambda a: np.ascontiguousarray(a.T)),
    "matrix-is-a-folder": _make_folder(layout.MATRIX),
    "matrix-garbage": _write(layout.MATRIX, b"\x93NUMPY garbage" * 10),
    "norms-missing": _unlink(layout.NORMS),
    "norms-truncated": _truncate(layout.NORMS, lambda size: size // 2),
    "norms-wrong-length": _resave(layout.NORMS, lambda a: a[:100]),
    "meta-missing": _unlink(layout.META),
    "meta-garbage": _write(layout.META, b"\x00\xff{not json"),
    "meta-empty": _write(layout.META, b""),
    "meta-not-an-object": _write(layout.META, b"[1, 2, 3]"),
    "meta-absurdly-nested": _write(layout.META, b"[" * 100_000),
    "meta-other-format-version": _edit_meta(lambda m: m.update(format_version=999)),
    "meta-field-missing": _edit_meta(lambda m: m.pop("vocab_size")),
    "meta-field-wrong-type": _edit_meta(lambda m: m.update(dim="32")),
    "meta-vocab-disagrees-with-matrix": _edit_meta(lambda m: m.update(vocab_size=50000)),
    "tokenizer-missing": _unlink(layout.TOKENIZER),
    "tokenizer-garbage": _write(layout.TOKENIZER, b"{\"model\": nonsense"),
    "tokenizer-of-another-model": _other_tokenizer,
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_is_detected_warned_once_and_rebuilt(kind, seeded, tiny_dir, expected_result):
    DAMAGE[kind](seeded)
    lines: list[str] = []
    emb = api.load(str(tiny_dir), report=lines.append)
    assert len(warnings(lines)) == 1 and "rebuilding" in warnings(lines)[0], lines
    assert builds(lines) == 1
    assert result_of(emb) == expected_result
    lines.clear()
    assert result_of(api.load(str(tiny_dir), report=lines.append)) == expected_result
    assert lines == []  # the rebuilt entry is whole: no second warning, no second build


@pytest.mark.parametrize("kind", ["matrix-truncated-in-data", "meta-garbage",
                                  "tokenizer-of-another-model"])
def test_damage_warning_is_one_stderr_line_on_the_cli(kind, seeded, tiny_dir, expected):
    DAMAGE[kind](seeded)
    code, out, err = cli(*QUERY, "--model", tiny_dir)
    assert code == 0, err
    assert json.loads(out) == expected
    (warning,) = warnings(err)
    assert warning.startswith("tokneigh: warning: ") and "rebuilding" in warning
    assert "Traceback" not in err


@pytest.mark.parametrize("change", ["new-weights-new-mtime", "new-weights-new-size-same-mtime"])
def test_a_changed_local_checkpoint_is_rebuilt(change, own_checkpoint, tmp_path):
    weights = own_checkpoint / "model.safetensors"
    old = result_of(api.load(str(own_checkpoint)))
    before = weights.stat()
    rewrite_weights(own_checkpoint, seed=7, extra_metadata=change.endswith("same-mtime"))
    after = weights.stat()
    if change == "new-weights-new-mtime":
        assert after.st_size == before.st_size  # only the mtime tells
        os.utime(weights, ns=(after.st_atime_ns, before.st_mtime_ns + 10**9))
    else:
        assert after.st_size != before.st_size  # only the size tells
        os.utime(weights, ns=(after.st_atime_ns, before.st_mtime_ns))
    lines: list[str] = []
    new = result_of(api.load(str(own_checkpoint), report=lines.append))
    assert builds(lines) == 1 and "changed" in warnings(lines)[0]
    assert new != old
    assert new == result_of(api.load(str(own_checkpoint), cache_dir=tmp_path / "fresh"))


# --- 4. safety ------------------------------------------------------------------------------


class _Payload:
    """Unpickling this creates a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.mark.parametrize("name", [layout.MATRIX, layout.NORMS])
def test_object_arrays_are_never_unpickled(name, seeded, tiny_dir, tmp_path, expected_result):
    marker = tmp_path / "code-ran"
    payload = np.array([_Payload(marker)] * 4, dtype=object)
    np.save(seeded / name, payload, allow_pickle=True)
    lines: list[str] = []
    emb = api.load(str(tiny_dir), report=lines.append)
    assert not marker.exists()
    assert len(warnings(lines)) == 1 and builds(lines) == 1
    assert result_of(emb) == expected_result
    # The payload is live: a loader that allowed pickles would have run it.
    np.save(tmp_path / "probe.npy", payload, allow_pickle=True)
    np.load(tmp_path / "probe.npy", allow_pickle=True)
    assert marker.exists()


def _calls(tree: ast.AST, names: set[str]) -> list[ast.Call]:
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in names
    ]


def _keyword(call: ast.Call, name: str) -> object:
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else keyword
    return None


def test_source_never_trusts_remote_code_nor_pickles():
    checked = 0
    for path in sorted(SRC.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for call in _calls(tree, {"from_pretrained", "from_config"}):
            where = f"{path.name}:{call.lineno}"
            assert _keyword(call, "trust_remote_code") is False, where
            checked += 1
        for call in _calls(tree, {"load"}):
            if isinstance(call.func.value, ast.Name) and call.func.value.id in ("np", "numpy"):
                assert _keyword(call, "allow_pickle") is False, f"{path.name}:{call.lineno}"
            if isinstance(call.func.value, ast.Name) and call.func.value.id == "torch":
                assert _keyword(call, "weights_only") is True, f"{path.name}:{call.lineno}"
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not {"pickle", "dill", "cloudpickle"} & set(names), path.name
            if isinstance(node, ast.keyword) and node.arg == "trust_remote_code":
                assert isinstance(node.value, ast.Constant) and node.value.value is False
    assert checked >= 3  # the scan saw the transformers calls it guards


def _custom_code_checkpoint(folder: Path, tiny_dir: Path, variant: str, marker: Path) -> None:
    """A checkpoint whose config points transformers at its own Python code."""
    from safetensors.numpy import save_file

    folder.mkdir()
    (folder / "evil.py").write_text(
        f"import os\nos.mkdir({str(marker)!r})\n"
        "from transformers import PretrainedConfig, PreTrainedModel\n"
        "class EvilConfig(PretrainedConfig):\n    model_type = 'evilnet'\n"
        "class EvilModel(PreTrainedModel):\n    config_class = EvilConfig\n"
    )
    auto_map = {"AutoConfig": "evil.EvilConfig", "AutoModel": "evil.EvilModel",
                "AutoTokenizer": ["evil.EvilTokenizer", None]}
    (folder / "config.json").write_text(json.dumps({"model_type": "evilnet",
                                                    "auto_map": auto_map}))
    if variant == "tokenizer-code":  # no tokenizer.json: transformers would build one
        shutil.copy(tiny_dir / "model.safetensors", folder)
        (folder / "tokenizer_config.json").write_text(
            json.dumps({"auto_map": auto_map, "tokenizer_class": "EvilTokenizer"})
        )
        (folder / "vocab.json").write_text("{}")
        return
    shutil.copy(tiny_dir / "tokenizer.json", folder)
    if variant == "architecture-code":  # tensor names say nothing: transformers is asked
        save_file({"encoder.table": np.zeros((300, 8), np.float32)},
                  str(folder / "model.safetensors"))
    else:  # "weights-code": no safetensors, transformers loads the model
        (folder / "pytorch_model.bin").write_bytes(b"")


@pytest.mark.parametrize("variant", ["architecture-code", "weights-code", "tokenizer-code"])
def test_code_shipped_with_a_checkpoint_never_runs(variant, tiny_dir, tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    folder = tmp_path / "custom"
    _custom_code_checkpoint(folder, tiny_dir, variant, marker)
    prompts: list[str] = []
    # transformers asks on stdin whether to run such code: someone would answer yes.
    monkeypatch.setattr(builtins, "input", lambda *a: prompts.append(str(a)) or "y")
    with pytest.raises(ModelNotFoundError) as raised:
        api.load(str(folder), report=lambda _: None)
    assert not marker.exists() and prompts == []
    assert "\n" not in str(raised.value)


def _tree(base: Path, skip: Path) -> dict[str, tuple[bool, int]]:
    found = {}
    for path in base.rglob("*"):
        if path == skip or skip in path.parents:
            continue
        found[str(path.relative_to(base))] = (path.is_dir(), 0 if path.is_dir() else
                                              path.stat().st_size)
    return found


NASTY_MODELS = [
    "../../x",
    "../../../../../../../../../../tmp/tokneigh-escape",
    "/nonexistent/absolute/path",
    "/",
    "..",
    "~",
    "a/../../b",
    "owner/..",
    "owner/../..",
    "..%2f..%2fx",
    "%2e%2e",
    "a b",
    " spaced-out ",
    "ünïcödé/módel",
    "模型",
    "right-to-left\u202egpt2",
    "x" * 300,
    "y" * 5000,
    "owner/" + "z" * 300,
    "x\x00y",
    "\udcff\udcfe",
    "~nosuchuser/x",
    "-",
    "a/b/c",
    "C:\\Windows\\x",
    "owner/name\nsecond-line",
    "nobody/no-such-model",
]


@pytest.mark.parametrize("model", NASTY_MODELS, ids=range(len(NASTY_MODELS)))
def test_no_model_value_writes_outside_the_cache_root(model, tmp_path, cache_dir, monkeypatch):
    cwd = tmp_path / "sandbox" / "a" / "b" / "c"
    cwd.mkdir(parents=True)
    (tmp_path / "sandbox" / "a" / "x").mkdir()  # so that "../../x" exists from cwd
    monkeypatch.chdir(cwd)
    before = _tree(tmp_path, skip=cache_dir)
    for command in (["neighbors", "hello", "--format", "json"], ["cache", "build"],
                    ["cache", "clear"]):
        code, out, err = cli(*command, "--model", model)
        assert code in (1, 2) or (command[1] == "clear" and code == 0), (command, err)
        if code:
            assert_one_error_line(err)
    assert _tree(tmp_path, skip=cache_dir) == before
    if cache_dir.exists():  # all that was written is the root's lock folder
        assert {p.name for p in cache_dir.iterdir()} <= {".locks"}
    assert not Path("/tmp/tokneigh-escape").exists()


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=300))
def test_entry_names_are_one_safe_path_component(name):
    for identity in (f"local:{name}", f"hub:{name}"):
        folder = layout.entry_name(identity, name)
        assert layout.ENTRY_NAME.match(folder)
        assert "/" not in folder and folder not in (".", "..") and len(folder) <= 70


def test_clear_all_removes_only_tokneigh_entries(seeded, cache_dir, tmp_path):
    key = seeded.name.rsplit("--", 1)[1]
    stale = cache_dir / f".tmp-{key}-0123abcd"
    stale.mkdir()
    (stale / layout.MATRIX).write_bytes(b"half")
    damaged = Path(shutil.copytree(seeded, cache_dir / "damaged--00000000deadbeef"))
    (damaged / layout.META).unlink()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep me")
    mine = {  # the user's own things, some named like tokneigh's
        "notes.txt": "keep me",
        "mydata/precious.bin": "keep me",
        "lookalike--0123456789abcdef/precious.txt": "keep me",
        "lookalike--0123456789abcdef/matrix.npy": "keep me",
        ".tmp-notes.txt": "keep me",
    }
    for name, text in mine.items():
        (cache_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (cache_dir / name).write_text(text)
    (cache_dir / "linked--fedcba9876543210").symlink_to(outside, target_is_directory=True)

    code, out, err = cli("cache", "clear", "--all")
    assert code == 0, err
    assert "removed 2" in out
    assert not seeded.exists() and not damaged.exists() and not stale.exists()
    for name, text in mine.items():
        assert (cache_dir / name).read_text() == text
    assert (cache_dir / "linked--fedcba9876543210").is_symlink()
    assert (outside / "precious.txt").read_text() == "keep me"


# --- 6. environment -------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["env", "option"])
def test_a_cache_root_under_a_file_is_a_one_line_error(how, tiny_dir, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    root = blocker / "cache"
    if how == "env":
        monkeypatch.setenv("TOKNEIGH_CACHE_DIR", str(root))
        code, _, err = cli(*QUERY, "--model", tiny_dir)
    else:
        code, _, err = cli(*QUERY, "--model", tiny_dir, "--cache-dir", root)
    assert code == 1
    line = assert_one_error_line(err)
    assert str(root) in line and "TOKNEIGH_CACHE_DIR" in line
    assert blocker.read_text() == "a file, not a folder"


def _forbid_writes(monkeypatch: pytest.MonkeyPatch, under: Path, code: int) -> None:
    """Make every write under ``under`` fail with ``code`` (EACCES, EROFS), as for a non-root
    user or a read-only mount; reads still work."""
    under = under.resolve()

    def blocked(path) -> bool:
        try:
            target = Path(os.fsdecode(path)).resolve()
        except (TypeError, ValueError):
            return False
        return target == under or under in target.parents

    def fail(path):
        raise OSError(code, os.strerror(code), os.fsdecode(path))

    real_open, real_os_open, real_mkdir = builtins.open, os.open, os.mkdir

    def fake_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and set(mode) & set("wax+") and blocked(file):
            fail(file)
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        writes = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
        if flags & writes and blocked(path):
            fail(path)
        return real_os_open(path, flags, *args, **kwargs)

    def fake_mkdir(path, *args, **kwargs):
        if blocked(path):
            if os.path.isdir(path) and code == errno.EROFS:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), path)
            fail(path)
        return real_mkdir(path, *args, **kwargs)

    for owner, name, fake in [(builtins, "open", fake_open), (io, "open", fake_open),
                              (os, "open", fake_os_open), (os, "mkdir", fake_mkdir)]:
        monkeypatch.setattr(owner, name, fake)
    for name in ("rename", "replace", "unlink", "rmdir"):
        real = getattr(os, name)

        def fake(src, *args, _real=real, **kwargs):
            if blocked(src):
                fail(src)
            return _real(src, *args, **kwargs)

        monkeypatch.setattr(os, name, fake)


@pytest.mark.parametrize("code", [errno.EACCES, errno.EROFS], ids=["EACCES", "EROFS"])
def test_an_unwritable_cache_root_is_a_one_line_error(code, tiny_dir, tmp_path, monkeypatch):
    root = tmp_path / "locked" / "cache"
    if code == errno.EROFS:
        root.mkdir(parents=True)  # it exists, but the file system is read-only
    monkeypatch.setenv("TOKNEIGH_CACHE_DIR", str(root))
    _forbid_writes(monkeypatch, tmp_path / "locked", code)
    exit_code, _, err = cli(*QUERY, "--model", tiny_dir)
    assert exit_code == 1
    line = assert_one_error_line(err)
    assert str(root) in line and "TOKNEIGH_CACHE_DIR" in line
    assert os.strerror(code) in line


def test_a_read_only_cache_still_serves_what_it_holds(seeded, cache_dir, tiny_dir, expected,
                                                      monkeypatch):
    cli(*QUERY, "--model", tiny_dir)  # first open: derived files (if any) exist from now on
    _forbid_writes(monkeypatch, cache_dir, errno.EROFS)
    code, out, err = cli(*QUERY, "--model", tiny_dir)
    assert code == 0, err
    assert json.loads(out) == expected and err == ""
    os.truncate(seeded / layout.MATRIX, 100)  # (the patch covers writes made by tokneigh)
    code, _, err = cli(*QUERY, "--model", tiny_dir)
    assert code == 1
    assert len(warnings(err)) == 1
    assert "TOKNEIGH_CACHE_DIR" in assert_one_error_line(err)


class _FullDisk(io.FileIO):
    """A file on a disk that fills up at the first write: a few bytes land, then ENOSPC."""

    def write(self, data) -> int:
        super().write(bytes(data)[:10])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.name))


def _disk_full_at(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    real = files.fsync_write
    real_create = files.create

    def full_create(path: Path):
        # matrix.npy streams through files.create (a block of rows at a time), not fsync_write.
        return _FullDisk(path, "w") if path.name == name else real_create(path)

    monkeypatch.setattr(files, "create", full_create)

    def fake(path: Path, *args, **kwargs):
        if path.name == name:
            with open(path, "wb") as handle:  # a partial write, then the disk is full
                handle.write(b"\x93NUMPY\x01\x00" + b"\x00" * 100)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(files, "fsync_write", fake)


@pytest.mark.parametrize("name", [layout.MATRIX, layout.META])
def test_disk_full_during_a_build_leaves_no_entry(name, tiny_dir, cache_dir, expected,
                                                   monkeypatch):
    with monkeypatch.context() as patch:
        _disk_full_at(patch, name)
        code, out, err = cli(*QUERY, "--model", tiny_dir)
    assert code == 1 and out == ""
    line = assert_one_error_line(err)
    assert "disk is full" in line and str(cache_dir) in line and "TOKNEIGH_CACHE_DIR" in line
    assert entries(cache_dir) == [] and leftovers(cache_dir) == []
    code, out, err = cli(*QUERY, "--model", tiny_dir)  # space is back: a normal build
    assert code == 0 and builds(err) == 1
    assert json.loads(out) == expected


def test_disk_full_during_a_rebuild_keeps_the_old_entry(seeded, tiny_dir, cache_dir, expected,
                                                         monkeypatch):
    meta = (seeded / layout.META).read_text()
    with monkeypatch.context() as patch:
        _disk_full_at(patch, layout.MATRIX)
        code, _, err = cli("cache", "build", "--force", "--model", tiny_dir)
    assert code == 1 and "disk is full" in assert_one_error_line(err)
    assert (seeded / layout.META).read_text() == meta and leftovers(cache_dir) == []
    code, out, err = cli(*QUERY, "--model", tiny_dir)
    assert code == 0 and json.loads(out) == expected and builds(err) == 0


def test_a_failed_swap_puts_the_old_entry_back(seeded, tiny_dir, cache_dir, expected,
                                               monkeypatch):
    meta = (seeded / layout.META).read_text()
    real, calls = os.rename, []

    def second_rename_fails(src, dst, *args, **kwargs):
        calls.append(src)
        if len(calls) == 2:  # old entry already moved aside; the new one cannot move in
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(src))
        return real(src, dst, *args, **kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(os, "rename", second_rename_fails)
        code, _, err = cli("cache", "build", "--force", "--model", tiny_dir)
    assert len(calls) >= 2 and code == 1  # moved aside, failed, (put back)
    assert_one_error_line(err)
    assert (seeded / layout.META).read_text() == meta and leftovers(cache_dir) == []
    code, out, err = cli(*QUERY, "--model", tiny_dir)
    assert code == 0 and json.loads(out) == expected and builds(err) == 0


def _run_hub_query(model: str, tmp_path: Path, env: dict[str, str]) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    clean.update(env, NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost",
                 HF_HUB_DISABLE_TELEMETRY="1")
    proc = subprocess.run(
        [sys.executable, "-m", "tokneigh", "neighbors", "hello", "--model", model],
        capture_output=True, text=True, env=clean, cwd=tmp_path,
        timeout=120,  # a safety net, not an assertion: the command ends in seconds
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.mark.parametrize("model", ["gpt2", "openai-community/gpt2"])
def test_offline_with_an_uncached_hub_model_says_how_to_fix_it(model, tmp_path):
    code, out, err = _run_hub_query(model, tmp_path, {"HF_HUB_OFFLINE": "1"})
    assert code == 1 and out == ""
    line = assert_one_error_line(err)
    assert model in line and "HF_HUB_OFFLINE" in line and "--model PATH" in line


class _SilentServer:
    """Accepts TCP connections on 127.0.0.1 and never answers (or, refusing, is not there)."""

    def __init__(self, refuse: bool) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        if refuse:
            self.sock.close()
        else:
            threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                self.accepted.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        for conn in self.accepted:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("server", ["never-answers", "refuses"])
def test_an_unreachable_hub_is_a_prompt_one_line_error(server, tmp_path):
    hub = _SilentServer(refuse=server == "refuses")
    try:
        code, out, err = _run_hub_query("gpt2", tmp_path, {
            "HF_HUB_OFFLINE": "0",
            "HF_ENDPOINT": f"http://127.0.0.1:{hub.port}",
            "HF_HUB_ETAG_TIMEOUT": "2",
            "HF_HUB_DOWNLOAD_TIMEOUT": "2",
        })
    finally:
        hub.close()
    assert code == 1 and out == ""
    line = assert_one_error_line(err)
    assert "cannot be reached" in line and f"127.0.0.1:{hub.port}" in line
    if server == "never-answers":
        assert hub.accepted  # the request went to our server and nowhere else


def test_load_errors_are_tokneigh_errors_not_crashes(tiny_dir, tmp_path):
    # A folder that is not a checkpoint, and a checkpoint with truncated weights.
    empty = tmp_path / "empty"
    empty.mkdir()
    broken = Path(shutil.copytree(tiny_dir, tmp_path / "broken"))
    os.truncate(broken / "model.safetensors", 1000)
    for folder in (empty, broken):
        with pytest.raises(TokneighError):
            api.load(str(folder), report=lambda _: None)
