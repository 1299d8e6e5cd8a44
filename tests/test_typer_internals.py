"""What tokneigh takes from Typer's private internals (src/tokneigh/cli/typer_internals.py), each
checked on the installed Typer: when an upgrade renames or changes one, a test here fails and
says which, instead of the CLI quietly getting slower or wordier."""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import importlib
import os
import subprocess
import sys

import pytest
import typer
from typer.core import TyperCommand, TyperGroup

from tokneigh.cli import _fastparams, typer_internals
from tokneigh.cli.typer_internals import click_exceptions

CLICK_EXCEPTIONS = [
    "ClickException", "UsageError", "BadParameter", "MissingParameter", "NoArgsIsHelpError",
]  # fmt: skip


def test_typer_vendors_click_where_we_look_for_it():
    assert click_exceptions.__name__ == "typer._click.exceptions", (
        "Typer no longer ships click as typer._click: cli/typer_internals.py imports it"
    )
    for name in CLICK_EXCEPTIONS:
        assert isinstance(getattr(click_exceptions, name, None), type), (
            f"typer._click.exceptions.{name} is gone: cli/errors.py and cli/__init__.py catch it"
        )
    assert typer.BadParameter is click_exceptions.BadParameter


def test_typers_commands_raise_the_click_exceptions_we_catch():
    app = typer.Typer(cls=TyperGroup)

    @app.command(cls=TyperCommand)
    def look(top: int = typer.Option(1, "--top", min=1)) -> None: ...

    @app.command(cls=TyperCommand)
    def other() -> None: ...

    group = typer.main.get_command(app)
    with pytest.raises(click_exceptions.UsageError):  # an unknown option
        group.main(["look", "--bogus"], standalone_mode=False)
    with pytest.raises(click_exceptions.BadParameter):
        group.main(["look", "--top", "0"], standalone_mode=False)
    with pytest.raises(click_exceptions.NoArgsIsHelpError):
        typer.main.get_command(typer.Typer(no_args_is_help=True, callback=lambda: None)).main(
            [], standalone_mode=False
        )


def test_the_help_formatting_helpers_are_there():
    text, any_prefix_is_slash = typer_internals.join_options(["-k", "--top"])
    assert text == "-k, --top" and any_prefix_is_slash is False
    assert typer_internals.wrap_text("one two three", 8).split("\n") == ["one two", "three"]
    formatter = typer_internals.HelpFormatter(width=60)
    for name in ("write_dl", "section", "write_paragraph", "write", "current_indent",
                 "indent_increment", "width"):  # fmt: skip
        assert hasattr(formatter, name), f"click's HelpFormatter lost {name}: cli/help.py uses it"
    command = typer.main.get_command(typer.Typer(callback=lambda: None))
    assert isinstance(typer_internals.Context(command), typer_internals.Context)


def test_the_value_coercion_hook_is_what_the_fast_path_patches():
    coercion = importlib.import_module("typer._coercion")
    param_types = importlib.import_module("typer._param_types")
    from typer.core import _TyperParameter

    for name in ("build_runtime_param", "RuntimeParam", "resolve_type_descriptor"):
        assert hasattr(coercion, name), f"typer._coercion.{name} is gone"
    for name in ("coerce_cli_choice", "coerce_cli_path", "routes_to_path"):
        assert hasattr(param_types, name), f"typer._param_types.{name} is gone"
    fields = [f.name for f in dataclasses.fields(coercion.RuntimeParam)]
    assert fields == ["parameter_info", "annotation"], f"RuntimeParam's fields are {fields}"
    assert hasattr(coercion.RuntimeParam, "_coerce_value"), "RuntimeParam._coerce_value is gone"
    assert _fastparams.install() is True, "the fast value path no longer installs"
    assert getattr(_TyperParameter, "_tokneigh_fast", False)


def test_a_cached_querys_coercion_never_imports_pydantic():
    """The whole point of the hook: Typer's coercion builds pydantic adapters, 70-90 ms."""
    script = (
        "import sys\n"
        "import typer.main\n"
        "from tokneigh.cli import app\n"
        "group = typer.main.get_command(app)\n"
        "cmd = group.get_command(None, 'neighbors')\n"
        "ctx = cmd.make_context('neighbors', ['Mike', '--top', '5', '--format', 'json'])\n"
        "assert ctx.params['top'] == 5, ctx.params\n"
        "print('pydantic' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "parsing a plain command line imported pydantic"


def test_a_failed_write_of_echo_is_told_from_other_os_errors():
    reader, writer = os.pipe()
    os.close(reader)  # nobody reads: the write fails (in C, under echo's own frame)
    gone = open(writer, "w")
    try:
        with pytest.raises(OSError) as raised:
            typer.echo("x", file=gone)
    finally:
        with contextlib.suppress(OSError):  # (closing flushes, and fails, again)
            gone.close()
    assert typer_internals.raised_by_echo(raised.value), "typer.echo's frame is not recognized"

    def elsewhere() -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError) as raised:
        elsewhere()
    assert not typer_internals.raised_by_echo(raised.value)


def test_exit_functions_run_on_request():
    assert callable(getattr(atexit, "_run_exitfuncs", None)), "atexit._run_exitfuncs is gone"
    # In a child: running them here would run (and drop) pytest's own.
    script = (
        "import atexit, os\n"
        "from tokneigh.cli.typer_internals import run_exit_functions\n"
        "atexit.register(print, 'ran', flush=True)\n"
        "run_exit_functions()\n"
        "os._exit(0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert (done.returncode, done.stdout, done.stderr) == (0, "ran\n", "")
