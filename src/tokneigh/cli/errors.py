"""What the command line makes of an error: one line of text and an exit code.

The library's errors (``tokneigh.errors``) state facts and never name a flag; here each class
gets its exit code (2 for a malformed request, 1 for everything else) and, where the user can
act on it from the command line, a hint naming the flag. Click's own usage errors (a missing
argument, an unknown option, a bad value) are worded the same way, without Python types.

``describe(exc)`` is the one entry point: the handler in ``cli/__init__.py`` and the
interactive shell both use it.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..errors import (
    CacheError,
    EmptyQueryError,
    HubUnavailableError,
    ModelNameError,
    TokneighError,
    UsageError,
)
from .help import (
    OPTIONS_ATTRIBUTE,
    argument_label,
    is_argument,
    option_label,
    option_metavar,
    takes_value,
)
from .typer_internals import click_exceptions

USAGE_EXIT = 2
FAILURE_EXIT = 1

# The most specific class wins (looked up along the exception's MRO): the option a hint
# names, and the hint, shown only when the command that failed has that option. None: the hint
# names the query syntax (``#N``), which every query of every command and the shell reads
# (analyses.queries.parse_query_text), so it is always shown.
HINTS: dict[type[TokneighError], tuple[str | None, str]] = {
    HubUnavailableError: (
        "--model",
        "connect once to download it, or use --model PATH with a local checkpoint folder",
    ),
    CacheError: ("--cache-dir", "choose another folder with --cache-dir or TOKNEIGH_CACHE_DIR"),
    EmptyQueryError: (None, "to look up a whitespace token, give its id as #N"),
    ModelNameError: ("--model", "give a hub id like 'gpt2' or a checkpoint folder with --model"),
}


def exit_code(exc: BaseException) -> int:
    """2 for a malformed request (the library's UsageError, click's usage errors), else 1."""
    if isinstance(exc, (UsageError, click_exceptions.UsageError)):
        return USAGE_EXIT
    if isinstance(exc, click_exceptions.ClickException):
        code = getattr(exc, "exit_code", FAILURE_EXIT)
        return code if isinstance(code, int) and code > 0 else FAILURE_EXIT
    return FAILURE_EXIT


def hint(exc: BaseException, options: Collection[str] | None = None) -> str | None:
    """The hint for ``exc``, if the command has the option it names: ``options`` are the
    command's long options (default: those HelpCommand recorded on ``exc``; unknown, every
    hint is shown)."""
    if options is None:
        options = getattr(exc, OPTIONS_ATTRIBUTE, None)
    for cls in type(exc).__mro__:
        if cls in HINTS:
            option, text = HINTS[cls]  # type: ignore[index]
            return text if option is None or options is None or option in options else None
    return None


def describe(exc: BaseException, options: Collection[str] | None = None) -> tuple[str, int]:
    """The one line to show for ``exc`` (without the "tokneigh: error: " prefix), and the
    exit code: a library error with its hint after "; " (see ``hint``), a click usage error
    in plain words followed by where to find the command's help."""
    if isinstance(exc, click_exceptions.ClickException):
        message = click_message(exc)
        ctx = getattr(exc, "ctx", None)
        if isinstance(exc, click_exceptions.UsageError) and ctx is not None:
            path = getattr(ctx, "command_path", "")
            if path:
                message += f" (see '{path} --help')"
        return message, exit_code(exc)
    message = " ".join(str(exc).split())
    if isinstance(exc, TokneighError):
        extra = hint(exc, options)
        if extra and extra not in message:
            message = f"{message}; {extra}" if message else extra
        return message, exit_code(exc)
    return f"internal error: {exc.__class__.__name__}: {message}", FAILURE_EXIT


def missing_arguments(ctx: Any) -> str:
    """The line for a command run with nothing at all: what it needs, and where to look."""
    needed = [p for p in ctx.command.get_params(ctx) if is_argument(p) and p.required]
    what = " ".join(argument_label(p) for p in needed) or "arguments"
    return f"missing {what} (see '{ctx.command_path} --help')"


def _param_label(param: Any) -> str:
    return argument_label(param) if is_argument(param) else option_label(param)


def _stock(message: str) -> str:
    """Click's own sentence, in the house style: lower-case start, no final period."""
    message = " ".join(str(message).split()).rstrip(".")
    message = message.replace("requires an argument", "needs a value")
    if message[:1].isupper() and message[1:2].islower():
        message = message[0].lower() + message[1:]
    return message


def click_message(exc: Any) -> str:
    """A click exception in plain words: "missing QUERY", "--top: must be at least 1, got 0",
    "no such option: --xyz"; never a Python type."""
    param = getattr(exc, "param", None)
    if isinstance(exc, click_exceptions.MissingParameter):
        if param is None:
            return _stock(exc.format_message())
        if is_argument(param):
            return f"missing {argument_label(param)}"
        label = option_label(param)
        return (
            f"missing {label} {option_metavar(param)}"
            if takes_value(param)
            else (f"missing {label}")
        )
    if isinstance(exc, click_exceptions.BadParameter):
        text = " ".join(str(exc.message).split())
        hint_ = getattr(exc, "param_hint", None)
        if param is not None:
            return f"{_param_label(param)}: {text}"
        if hint_:
            names = hint_ if isinstance(hint_, str) else " / ".join(str(h) for h in hint_)
            return f"{names}: {text}"
        return text
    return _stock(exc.format_message())
