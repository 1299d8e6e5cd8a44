"""Running the tokneigh CLI in tests, and reading what it reported.

``cli`` runs it in this process (Typer's CliRunner); ``run_cli`` in a fresh process (for
import, signal and exit-code checks). Every test module uses these, not a runner of its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typer.testing import Result


def cli(*args: object, catch_exceptions: bool = True) -> Result:
    """``tokneigh ARGS`` in this process (the cache root is the per-test one conftest sets):
    Typer's Result, with exit_code, stdout and stderr apart."""
    from typer.testing import CliRunner

    from tokneigh.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=catch_exceptions)


def cli_outcome(*args: object) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr). An exception the CLI lets out is
    raised here, and stdout must be valid UTF-8."""
    result = cli(*args, catch_exceptions=False)
    return result.exit_code, result.stdout_bytes.decode("utf-8"), result.stderr


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    """Run `python -m tokneigh` in a fresh process (for import and exit-code checks)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tokneigh", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
    )


_IMPORT_PROBE = """
import json, sys
import tokneigh.cli
try:
    tokneigh.cli.main({args!r})
except SystemExit as exit:
    code = exit.code
else:
    code = 0
heavy = {heavy!r}
print(json.dumps({{"code": code, "loaded": [m for m in heavy if m in sys.modules]}}),
      file=sys.stderr)
"""


def heavy_imports(args: list[str], heavy: list[str]) -> list[str]:
    """Which of the ``heavy`` modules a fresh process imported to run ``tokneigh ARGS``
    (the run itself must succeed)."""
    script = _IMPORT_PROBE.format(args=list(args), heavy=list(heavy))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] in (0, None), proc.stderr
    return report["loaded"]


def assert_one_line_error(result, code: int, *fragments: str) -> None:
    """Exactly one error line; anything else on stderr is tokneigh's own progress lines
    (e.g. "tokneigh: building the cache ..."), never a traceback or a library's noise.
    ``result`` is run_cli's (returncode) or cli's (exit_code)."""
    returncode = getattr(result, "returncode", None)
    if returncode is None:
        returncode = result.exit_code
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("tokneigh: error: ")]
    assert returncode == code, (returncode, result.stderr)
    assert len(errors) == 1, result.stderr
    assert all(line.startswith("tokneigh: ") for line in lines), result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])


def assert_one_error_line(stderr: str) -> str:
    """The error report is one line, the last on stderr, and there is no traceback."""
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("tokneigh: error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    assert "internal error" not in errors[0]  # an anticipated failure, not a crash
    return errors[0]
