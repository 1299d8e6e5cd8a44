"""The `tokneigh` command line: a thin Typer layer over the Python API.

One module per command group; results on stdout, progress, warnings and errors on stderr.
Every failure the user can cause ends as one line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from .. import interrupts
from ..errors import TokneighError
from ..version import __version__
from ._fastparams import install as _install_fast_params
from .common import error_line, help_text
from .errors import describe, missing_arguments
from .help import HelpGroup
from .typer_internals import click_exceptions, raised_by_echo, run_exit_functions

_install_fast_params()  # keeps pydantic (Typer's value coercion) off the hot path


class _Interrupted(Exception):
    """Ctrl-C, carried past Typer (which would turn KeyboardInterrupt into a silent exit 130)."""


class _OneLineErrors(HelpGroup):
    """Runs the app non-standalone so that every error becomes one line on stderr, worded
    and given its exit code by ``cli/errors.py`` (2 for usage errors, 1 for the rest)."""

    def make_context(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().make_context(*args, **kwargs)
        except KeyboardInterrupt as exc:
            raise _Interrupted() from exc

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:
            raise _Interrupted() from exc

    def main(self, args: Any = None, prog_name: str | None = None, *a: Any, **kw: Any) -> Any:
        kw["standalone_mode"] = False
        try:
            result = super().main(args, prog_name or "tokneigh", *a, **kw)
        except click_exceptions.NoArgsIsHelpError as exc:
            if hasattr(exc.ctx.command, "commands"):
                # A group without a command (bare `tokneigh`, `tokneigh cache`): its help.
                typer.echo(exc.ctx.get_help())
                sys.exit(0)
            # A command without its arguments is an error, not a help page (HelpCommand
            # ignores no_args_is_help; this covers a command declared without it).
            error_line(missing_arguments(exc.ctx))
            sys.exit(2)
        except (click_exceptions.ClickException, TokneighError) as exc:
            message, code = describe(exc)
            error_line(message)
            sys.exit(code)
        except (
            _Interrupted,
            KeyboardInterrupt,
            getattr(click_exceptions, "Abort", typer.Abort),
            typer.Abort,
        ):
            # Without the SIGINT handler (the shell restores KeyboardInterrupt), the same line.
            if sys.stderr is not None:
                sys.stderr.write(interrupts.INTERRUPTED_LINE.decode())
                sys.stderr.flush()
            sys.exit(interrupts.INTERRUPTED_EXIT)
        except BrokenPipeError:
            # `tokneigh ... | head`: the reader left; not an error worth a traceback.
            sys.stderr.close()
            sys.exit(0)
        except Exception as exc:
            failure = _output_failure(exc)
            if failure is not None:  # typer.echo (`cache path`, help) on a full or broken stdout
                from ..present.render import output_error

                _discard_stdout()
                error_line(describe(output_error(failure))[0])
                sys.exit(1)
            if os.environ.get("TOKNEIGH_DEBUG"):
                raise
            message, code = describe(exc)
            error_line(f"{message} (set TOKNEIGH_DEBUG=1 for the traceback, and please report it)")
            sys.exit(code)
        sys.exit(result if isinstance(result, int) else 0)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tokneigh {__version__}")
        raise typer.Exit()


# Each command's module, in the order `tokneigh --help` lists them. A run imports only the
# module of the command it names (as pip's commands/ do), through click's own extension points
# for a lazy group: `list_commands` and `get_command`.
COMMANDS = {
    "neighbors": "neighbors",
    "tokenize": "tokenize",
    "compare": "compare",
    "analogy": "analogy",
    "verify": "verify",
    "map": "map",
    "graph": "graph",
    "hubness": "hubness",
    "layout": "layout",
    "export": "export",
    "stats": "stats",
    "scan": "scan",
    "diff": "diff",
    "vocab": "vocab",
    "align": "align",
    "serve": "serve",
    "shell": "shell",
    "cache": "cache",
}


class _LazyCommands(_OneLineErrors):
    """The root group: a command's module is imported, and its click command built from the
    Typer function, when the command is first looked up."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, name: str) -> Any:
        if name not in self.commands and name in COMMANDS:
            self.add_command(_command(name), name)
        return self.commands.get(name)


def _command(name: str) -> Any:
    """The click command (or group) for ``tokneigh NAME``, built by Typer from its module."""
    import importlib

    import typer.main

    module = importlib.import_module(f"{__name__}.{COMMANDS[name]}")
    if name == "cache":
        group = typer.main.get_command(module.app)
        group.name = name
        return group
    single = typer.Typer(
        rich_markup_mode=None, add_completion=False, pretty_exceptions_enable=False
    )
    module.register(single)
    return typer.main.get_command(single)


app = typer.Typer(
    cls=_LazyCommands,
    name="tokneigh",
    help=help_text(
        "Nearest neighbours in the token embeddings of transformer language models.\n\n"
        "Examples:\n\n"
        "  tokneigh neighbors Mike --top 20\n\n"
        "  tokneigh tokenize banana cosmic\n\n"
        "  tokneigh compare ban ana"
    ),
    no_args_is_help=True,
    rich_markup_mode=None,  # plain help (cli/help.py), "[CLS]" shown as typed
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Nearest neighbours in the token embeddings of transformer language models."""




def main(argv: list[str] | None = None) -> None:
    """Run the command line: on ``argv``, or on ``sys.argv`` as this process's command (see
    tokneigh/entry.py, which installs the Ctrl-C handler before importing this)."""
    import gc

    if argv is None:  # this process is the command: Ctrl-C ends it (see tokneigh/entry.py)
        interrupts.install_interrupt_handler()
        if sys.argv[1:2] == ["shell"]:  # except in the shell, which catches KeyboardInterrupt
            interrupts.restore_default_interrupts()

    # A query imports numpy and Rich: a hundred thousand objects, none of them garbage. With
    # the default threshold the cycle collector would sweep them some 150 times meanwhile.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], 50_000), *thresholds[1:])
    try:
        app(args=argv, prog_name="tokneigh")
    except SystemExit as done:
        if argv is None:  # the console script (or python -m): this process ends here
            _end_process(done.code)
        raise
    finally:
        gc.set_threshold(*thresholds)


def _end_process(code: object) -> None:
    """End a finished command-line run at once, skipping the interpreter's teardown.

    Freeing every module and stopping numpy's BLAS threads takes 20-40 ms, a tenth of a
    cached query, and a process that is about to exit needs none of it. Output is flushed
    and atexit handlers run; if anything is unusual (a thread still running, a stream that
    cannot be flushed, a non-numeric status) this returns and Python exits the normal way.
    """
    import threading

    if code is None:
        code = 0
    failure = _flush_stdout()
    if failure is not None:
        # What is left cannot be written: drop it, or Python's own flush at exit would fail
        # again (a traceback-like "Exception ignored" and status 120).
        _discard_stdout()
        if code == 0 and not isinstance(failure, BrokenPipeError):  # the result was lost
            from ..present.render import output_error

            error_line(describe(output_error(failure))[0])
            code = 1
    if not isinstance(code, int) or isinstance(code, bool):
        return
    if any(t.is_alive() and not t.daemon for t in threading.enumerate()[1:]):
        return
    try:
        sys.stderr.flush()
    except Exception:
        return
    run_exit_functions()
    os._exit(code)


def _output_failure(exc: BaseException) -> OSError | None:
    """``exc`` when it is a failed write to standard output, not another OSError: raised by
    ``typer.echo`` (it writes and flushes at once), or standard output cannot be flushed."""
    if not isinstance(exc, OSError):
        return None
    if raised_by_echo(exc):
        return exc
    return _flush_stdout()


def _flush_stdout() -> OSError | None:
    """Flush standard output; the error when it cannot be written (a full device, a reader
    gone, a broken stream), else None."""
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except OSError as exc:
        return exc
    except ValueError:  # closed
        return None
    return None


def _discard_stdout() -> None:
    """Point the process's standard output at the null device, so that the rest of its buffer
    goes nowhere instead of failing again."""
    out = sys.__stdout__
    if out is None or sys.stdout is not out:  # in-process (tests): not this process's stdout
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, out.fileno())
        finally:
            os.close(null)
        out.flush()
    except (OSError, ValueError):
        pass
