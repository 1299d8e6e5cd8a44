"""The architecture holds: the layering contract in .importlinter is kept, it fails when a layer
is crossed (a back-edge planted in a copy of the package), and no module imports itself back
through others (type-only and function-level imports included, as grimp counts them)."""

from __future__ import annotations

import graphlib
import shutil
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

import tokneigh

ROOT = Path(__file__).resolve().parent.parent
CONTRACT = ROOT / ".importlinter"
PACKAGE = Path(tokneigh.__file__).resolve().parent
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """lint-imports on the package found in ``src``, with the project's contract."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(src)}
    shutil.copy(CONTRACT, cwd / ".importlinter")
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=120,
    )


def test_the_layering_contract_is_kept(tmp_path):
    done = _lint(PACKAGE.parent, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    contracts = CONTRACT.read_text().count("[importlinter:contract:")
    assert f"Contracts: {contracts} kept, 0 broken." in done.stdout, done.stdout[-3000:]


# Each a line that crosses a layer the contract guards, planted at the top of a module.
BACK_EDGES = [
    ("store/layout.py", "from ..results import Query  # noqa\n", "result"),
    ("space/core.py", "from .. import errors  # noqa\n", "core imports nothing"),
    ("analyses/view.py", "from ..api import loading  # noqa\n", "Data flows down"),
    ("formats/extract.py", "from ..store import layout  # noqa\n", "Data flows down"),
    ("results/__init__.py", "import rich  # noqa\n", "Typer, click or Rich"),
    ("api/embeddings.py", "def _f():\n    from ..cli import output  # noqa\n", "Data flows down"),
]


@pytest.mark.parametrize("module, line, contract", BACK_EDGES, ids=[m for m, _, _ in BACK_EDGES])
def test_a_planted_back_edge_breaks_the_contract(tmp_path, module, line, contract):
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "tokneigh", ignore=shutil.ignore_patterns("__pycache__"))
    target = src / "tokneigh" / module
    text = target.read_text(encoding="utf-8")
    # After the module docstring and `from __future__`: the planted import is real code.
    head, sep, rest = text.partition("from __future__ import annotations\n")
    target.write_text(head + sep + line + rest if sep else line + text, encoding="utf-8")
    done = _lint(src, tmp_path)
    assert done.returncode != 0, done.stdout[-3000:]
    assert contract in done.stdout and "BROKEN" in done.stdout, done.stdout[-3000:]


def test_no_module_imports_itself_back():
    graph = grimp.build_graph("tokneigh")
    order: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for module in graph.modules:
        order.add(module, *graph.find_modules_directly_imported_by(module))
    try:
        order.prepare()
    except graphlib.CycleError as cycle:
        pytest.fail(f"an import cycle: {' -> '.join(cycle.args[1])}")


def test_no_module_over_600_lines_and_no_class_over_300():
    import ast

    too_long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        name = path.relative_to(PACKAGE)
        if text.count("\n") > 600:
            too_long.append(f"{name}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > 300:
                too_long.append(f"{name}: class {node.name}, {node.end_lineno - node.lineno + 1}")
    assert not too_long, too_long
