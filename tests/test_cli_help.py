"""The command line's own words: help pages without Python types, bad values and missing
arguments as one plain line (exit 2), exit codes and hints for library errors, and a fast
value path that survives Typer renaming the private helpers it borrows."""

from __future__ import annotations

import importlib
import json
import re
from enum import Enum
from typing import Annotated

import helpers
import pytest
import typer
from typer.testing import CliRunner

from tokneigh.cli import app
from tokneigh.cli.common import DEFAULT_FORMAT, FormatOption, help_text
from tokneigh.cli.errors import describe
from tokneigh.cli.help import HelpCommand, HelpGroup
from tokneigh.errors import (
    CacheError,
    EmptyQueryError,
    FigureError,
    HubUnavailableError,
    ModelNameError,
    ModelNotFoundError,
    TokenIdError,
    UsageError,
)

runner = CliRunner()  # for the scratch apps below; tokneigh's own CLI runs through helpers.cli

# Anything that reads as a Python type or a pydantic message.
TYPED = re.compile(r"<[a-z]|list\[|\{[a-z_]+\}|int range|\bx[<>]=|Input should|Value error")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory, gpt2_dir):
    """One cache root for the module, built once."""
    root = tmp_path_factory.mktemp("cli-help-cache")
    result = helpers.cli("cache", "build", "--model", str(gpt2_dir), "--cache-dir", str(root))
    assert result.exit_code == 0, result.stderr
    return root


@pytest.fixture
def cli(gpt2_dir, shared_cache):
    def invoke(*args: str):
        return helpers.cli(*args, "--model", str(gpt2_dir), "--cache-dir", str(shared_cache))

    return invoke


def one_error_line(result) -> str:
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tokneigh: error: ")
    assert not TYPED.search(lines[0]), lines[0]
    return lines[0]


# --- help pages -----------------------------------------------------------------------------


class Kind(str, Enum):
    input = "input"
    output = "output"


def _scratch_app() -> typer.Typer:
    """Commands declared as the command modules declare theirs, plus some without metavars."""
    scratch = typer.Typer(cls=HelpGroup, rich_markup_mode=None, add_completion=False)

    @scratch.callback()
    def _root() -> None:
        """A scratch app."""

    @scratch.command(
        "look",
        cls=HelpCommand,
        help=help_text(
            "Look up each QUERY.\n\nSpecial tokens ([CLS], [unused12]) are left out.\n\n"
            "Examples:\n\n  tokneigh look Mike --top 20\n  tokneigh look king --flag"
        ),
    )
    def look(
        queries: Annotated[list[str], typer.Argument(metavar="QUERY", help="Text to look up.")],
        top: Annotated[int, typer.Option("--top", "-k", min=1, metavar="N", help="How many.")] = 20,
        flag: Annotated[bool, typer.Option("--flag", help="A switch.")] = False,
        output: FormatOption = DEFAULT_FORMAT,
    ) -> None:
        pass

    @scratch.command("pair", cls=HelpCommand, no_args_is_help=True)
    def pair(
        a: Annotated[str, typer.Argument(metavar="A", help="First.")],
        b: Annotated[str, typer.Argument(metavar="B", help="Second.")],
    ) -> None:
        """Compare A and B."""

    @scratch.command("three", cls=HelpCommand)
    def three(
        words: Annotated[list[str] | None, typer.Argument(metavar="A B C", help="Words.")] = None,
        extra: Annotated[str | None, typer.Argument(help="More.")] = None,
        count: Annotated[int, typer.Option(help="A count.")] = 1,
        ratio: Annotated[float | None, typer.Option(min=0.0, help="A ratio.")] = None,
        where: Annotated[str | None, typer.Option(help="A name.")] = None,
        kind: Annotated[Kind, typer.Option(help="Which.")] = Kind.input,
    ) -> None:
        """Three words."""

    return scratch


def test_usage_lines_name_arguments_by_their_metavar():
    scratch = _scratch_app()
    usage = {
        name: runner.invoke(scratch, [name, "--help"]).stdout.splitlines()[0]
        for name in ("look", "pair", "three")
    }
    assert usage["look"].endswith(" look [OPTIONS] QUERY...")
    assert usage["pair"].endswith(" pair [OPTIONS] A B")
    assert usage["three"].endswith(" three [OPTIONS] [A B C] [EXTRA]")


def test_help_shows_metavars_and_flags_without_values():
    result = runner.invoke(_scratch_app(), ["look", "--help"])
    assert result.exit_code == 0
    page = result.stdout
    assert not TYPED.search(page), page
    assert re.search(r"^  QUERY\.\.\.  +Text to look up\.$", page, re.M), page
    assert re.search(r"^  -k, --top N  +How many\.  \[default: 20\]$", page, re.M), page
    assert re.search(r"^  --flag  +A switch\.$", page, re.M), page
    # (a metavar wider than click's first column puts the help on the next line, as --metric)
    format_row = r"^  -f, --format table\|json\|tsv\|csv\n {20,}table for people"
    assert re.search(format_row, page, re.M), page
    assert re.search(r"^  -h, --help  +Show this message and exit\.$", page, re.M) or (
        re.search(r"^  --help  +Show this message and exit\.$", page, re.M)
    ), page


def test_help_text_keeps_brackets_and_one_example_per_line():
    page = runner.invoke(_scratch_app(), ["look", "--help"]).stdout
    assert "([CLS], [unused12])" in page and "\\[" not in page
    assert "\n  $ tokneigh look Mike --top 20\n  $ tokneigh look king --flag\n" in page


def test_missing_metavars_fall_back_to_plain_words():
    page = runner.invoke(_scratch_app(), ["three", "--help"]).stdout
    assert not TYPED.search(page), page
    assert re.search(r"^  A B C  +Words\.$", page, re.M), page
    assert re.search(r"^  EXTRA  +More\.$", page, re.M), page
    for row in ("--count N", "--ratio X", "--where WHERE", "--kind input|output"):
        assert re.search(rf"^  {re.escape(row)}  ", page, re.M), (row, page)


def test_every_real_command_has_a_plain_help_page():
    import typer.main

    group = typer.main.get_command(app)
    ctx = group.make_context("tokneigh", ["--help"], resilient_parsing=True)
    paths = [[]]
    for name in group.list_commands(ctx):  # click's lookup: the commands load on demand
        command = group.get_command(ctx, name)
        paths.append([name])
        paths.extend([name, sub] for sub in getattr(command, "commands", {}))
    assert len(paths) >= 18, paths  # 13 commands, the cache group and its 4 subcommands
    for path in paths:
        result = helpers.cli(*path, "--help")
        assert result.exit_code == 0, path
        assert result.stdout.startswith(f"Usage: tokneigh {' '.join(path)}".rstrip()), path
        assert not TYPED.search(result.stdout), (path, TYPED.search(result.stdout))
        assert "\\[" not in result.stdout, path
        assert "Example" in result.stdout, path


def test_real_neighbors_help():
    page = helpers.cli("neighbors", "--help").stdout
    assert page.startswith("Usage: tokneigh neighbors [OPTIONS] [QUERY]...\n")
    assert re.search(r"^  QUERY\.\.\.  +Text to look up\.", page, re.M), page
    assert re.search(r"^  --dedupe  +Fold", page, re.M), page
    assert re.search(r"^  -k, --top N  ", page, re.M), page
    assert "[CLS]" in page
    assert "\n  $ tokneigh neighbors Mike --top 20\n" in page


def test_bare_tokneigh_prints_the_top_level_help():
    result = helpers.cli()
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: tokneigh [OPTIONS] COMMAND [ARGS]...")
    assert "neighbors" in result.stdout


# --- errors in plain words ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["neighbors", "Mike", "--top", "0"], "--top: must be at least 1, got 0"),
        (["neighbors", "Mike", "-k", "abc"], "--top: 'abc' is not a whole number"),
        (["neighbors", "Mike", "--top", "2.5"], "--top: '2.5' is not a whole number"),
        (["neighbors", "Mike", "-f", "xml"], "--format: 'xml' is not one of table, json, tsv, csv"),
        (["neighbors", "Mike", "--min-sim", "1.5"], "--min-sim: must be from -1 to 1, got 1.5"),
        (["neighbors", "Mike", "--min-sim", "high"], "--min-sim: 'high' is not a number"),
        (["neighbors", "Mike", "--id", "1", "--id", "x"], "--id: 'x' is not a whole number"),
        (["neighbors", "Mike", "--embeddings", "both"], "--embeddings: 'both' is not one of"),
        (["neighbors", "Mike", "--bogus"], "no such option: --bogus"),
        (["neighbors", "Mike", "--top"], "option '--top' needs a value"),
        (["compare", "ban"], "missing B"),
        (["compare", "a", "b", "c"], "unexpected extra argument(s) (c)"),
        (["frobnicate"], "no such command 'frobnicate'"),
    ],
)
def test_a_wrong_value_is_one_plain_line_with_exit_2(args, expected):
    line = one_error_line(helpers.cli(*args))
    assert expected in line, line
    command = args[0] if args[0] != "frobnicate" else None
    see = f"(see 'tokneigh {command} --help')" if command else "(see 'tokneigh --help')"
    assert line.endswith(see), line


def test_a_command_without_its_arguments_is_an_error_not_help():
    line = one_error_line(helpers.cli("compare"))
    assert "missing A" in line and line.endswith("(see 'tokneigh compare --help')")
    line = one_error_line(helpers.cli("neighbors"))
    assert "QUERY" in line
    result = runner.invoke(_scratch_app(), ["pair"])  # no_args_is_help=True is overruled
    assert result.exit_code == 2 and "Missing argument 'A'" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("error", "code", "hint"),
    [
        (HubUnavailableError("model 'gpt2' is not cached"), 1, "--model PATH"),
        (CacheError("cannot write /x"), 1, "--cache-dir or TOKNEIGH_CACHE_DIR"),
        (EmptyQueryError("the query is empty"), 2, "give its id as #N"),
        (ModelNameError("'a/b/c' is not a hub id"), 2, "with --model"),
        (TokenIdError(50257, 50257), 2, None),
        (FigureError("cannot write x.txt"), 2, None),
        (UsageError("bad"), 2, None),
        (ModelNotFoundError("no such model"), 1, None),
    ],
)
def test_library_errors_get_exit_codes_and_hints_at_the_edge(error, code, hint):
    message, exit_code = describe(error)
    assert exit_code == code
    assert message.startswith(str(error))
    if hint is None:
        assert message == str(error)
    else:
        assert message.startswith(f"{error}; ") and hint in message
    assert not hasattr(type(error), "exit_code")


# --- the fast value path, when Typer changes under it ---------------------------------------


def _neighbors_json(cli) -> list:
    result = cli("neighbors", "Mike", "banana", "--id", "447", "--top", "5", "--format", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    "helper",
    [
        "typer._param_types.coerce_cli_choice",
        "typer._param_types.coerce_cli_path",
        "typer._param_types.routes_to_path",
    ],
)
def test_a_renamed_typer_helper_falls_back_to_typers_own_coercion(cli, monkeypatch, helper):
    expected = _neighbors_json(cli)
    module_name, name = helper.rsplit(".", 1)
    # A real rename changes Typer's own call sites too: load the modules that hold their own
    # reference (Typer's pydantic adapters) first, so that only the fast path loses it.
    importlib.import_module("typer._adapters")
    monkeypatch.delattr(importlib.import_module(module_name), name)
    assert _neighbors_json(cli) == expected
    line = one_error_line(cli("neighbors", "Mike", "--format", "xml"))
    assert "--format: 'xml' is not one of table, json, tsv, csv" in line


def test_install_changes_nothing_when_typers_internals_differ(monkeypatch):
    from typer import _coercion
    from typer.core import _TyperParameter

    from tokneigh.cli import _fastparams

    installed = _TyperParameter.get_runtime_param
    monkeypatch.delattr(_TyperParameter, "_tokneigh_fast")
    monkeypatch.delattr(_coercion, "RuntimeParam")
    assert _fastparams.install() is False
    assert _TyperParameter.get_runtime_param is installed
    monkeypatch.undo()

    # A RuntimeParam whose constructor changed: the smoke test fails, nothing is patched.
    class Changed:
        def __init__(self, *, something_else: object) -> None: ...

    monkeypatch.delattr(_TyperParameter, "_tokneigh_fast")
    monkeypatch.setattr(_coercion, "RuntimeParam", Changed)
    assert _fastparams.install() is False
    assert _TyperParameter.get_runtime_param is installed
