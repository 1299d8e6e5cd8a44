"""Help pages in plain words: the command and group classes every tokneigh command uses.

Typer's help shows every parameter with a Python type (``--dedupe <bool>``, ``queries...
<list[str]>``, ``<int range>``) and, in Rich mode, parses help text for markup. These classes
write click-style plain help instead, from each parameter's public attributes only (opts,
metavar, nargs, is_flag, help, default, envvar), with click's HelpFormatter:

- usage: ``Usage: tokneigh neighbors [OPTIONS] QUERY...`` (``[QUERY]...`` when optional,
  ``A B`` for single arguments, a metavar with a space such as ``A B C`` as is, no dots);
- arguments by metavar (their name in capitals when they have none), with their help;
- flags with no value, value options with their metavar only (``--top N``,
  ``--format table|json|tsv|csv``); a missing metavar falls back to the choices, N for whole
  numbers, X for numbers, PATH for paths, else the name in capitals;
- help text reflowed by paragraph, example lines (starting with ``$ ``) kept one per line,
  and "[" shown as typed (``\\[``, Rich's escape, reads as ``[`` too).

Usage: ``app.command("neighbors", cls=HelpCommand, ...)``, ``typer.Typer(cls=HelpGroup, ...)``.
"""

from __future__ import annotations

import enum
import inspect
from pathlib import Path
from typing import Any, get_args, get_origin

from typer.core import TyperCommand, TyperGroup

from .typer_internals import (
    Context,
    HelpFormatter,
    Parameter,
    click_exceptions,
    join_options,
    wrap_text,
)

EXAMPLE_PREFIX = "$ "


# --- names ----------------------------------------------------------------------------------


def _base_name(param: Parameter) -> str:
    """An argument's name without brackets or dots: its metavar, else its name in capitals."""
    name = (getattr(param, "metavar", None) or "").strip()
    if len(name) > 1 and name.startswith("[") and name.endswith("]"):
        name = name[1:-1].strip()  # "[A B C]": the brackets are ours to add
    if name.endswith("..."):
        name = name[:-3].rstrip()
    return name or str(param.name or "value").upper()


def _variadic(param: Parameter) -> bool:
    return getattr(param, "nargs", 1) == -1


def argument_name(param: Parameter) -> str:
    """How an argument is listed: ``QUERY...`` (variadic), ``A``, or ``A B C`` (as written)."""
    name = _base_name(param)
    if " " in name:
        return name
    nargs = getattr(param, "nargs", 1)
    if nargs == -1:
        return f"{name}..."
    if isinstance(nargs, int) and nargs > 1:
        return " ".join([name] * nargs)
    return name


def argument_label(param: Parameter) -> str:
    """An argument in an error message: ``QUERY``, ``A``, ``A B C`` (no brackets, no dots)."""
    return _base_name(param)


def usage_piece(param: Parameter) -> str:
    """An argument on the usage line: ``QUERY...``, ``[QUERY]...``, ``A``, ``[A B C]``."""
    name = argument_name(param)
    dots = "..." if name.endswith("...") else ""
    name = name[: len(name) - len(dots)]
    if not getattr(param, "required", False):
        name = f"[{name}]"
    return name + dots


def _leaf_annotation(param: Parameter) -> Any:
    descriptor = getattr(param, "type_descriptor", None)
    annotation = getattr(descriptor, "annotation", None)
    if get_origin(annotation) in (list, tuple):
        args = get_args(annotation)
        annotation = args[0] if args else None
    return annotation


def option_metavar(param: Parameter) -> str:
    """The value an option takes, in words: its metavar, else a plain stand-in."""
    metavar = getattr(param, "metavar", None)
    if metavar:
        return str(metavar)
    try:
        annotation = _leaf_annotation(param)
        if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
            return "|".join(str(member.value) for member in annotation)
        if annotation is int:
            return "N"
        if annotation is float:
            return "X"
        if isinstance(annotation, type) and issubclass(annotation, Path):
            return "PATH"
    except Exception:  # a Typer without type descriptors: the name will do
        pass
    return str(param.name or "value").upper()


def takes_value(param: Parameter) -> bool:
    return not (getattr(param, "is_flag", False) or getattr(param, "count", False))


def option_label(param: Parameter) -> str:
    """An option in an error message: its long name (``--top``)."""
    opts = list(getattr(param, "opts", []) or [])
    long = [opt for opt in opts if opt.startswith("--")]
    return (long or opts or [str(param.name)])[0]


def is_argument(param: Parameter) -> bool:
    return getattr(param, "param_type_name", "") == "argument"


# --- help text ------------------------------------------------------------------------------


def _plain(text: str) -> str:
    """Help text as the user should read it: Rich's escape ``\\[`` is a plain ``[``."""
    return text.replace("\\[", "[")


def _paragraph_lines(paragraph: str, width: int) -> list[str]:
    """One paragraph: prose rewrapped to ``width``, example lines ("$ ...") as they are."""
    lines = paragraph.strip("\n").split("\n")
    if lines and lines[0].strip() == "\b":  # click's "do not rewrap" marker
        return lines[1:]
    out: list[str] = []
    prose: list[str] = []
    for line in [*lines, None]:
        if line is None or line.lstrip().startswith(EXAMPLE_PREFIX):
            if prose:
                joined = " ".join(part.strip() for part in prose)
                out.extend(wrap_text(joined, width).split("\n"))
                prose = []
            if line is not None:
                out.append(line.strip())
        else:
            prose.append(line)
    return out


def write_help_text(formatter: HelpFormatter, text: str) -> None:
    """Paragraphs reflowed to the terminal; example lines ("$ ...") kept one per line."""
    text = _plain(inspect.cleandoc(text).partition("\f")[0]).strip()
    if not text:
        return
    indent = " " * (formatter.current_indent + formatter.indent_increment)
    width = max(formatter.width - len(indent), 20)
    paragraphs = [
        "\n".join(indent + line if line else line for line in _paragraph_lines(p, width))
        for p in text.split("\n\n")
    ]
    formatter.write_paragraph()
    formatter.write("\n\n".join(paragraphs) + "\n")


# --- parameters -----------------------------------------------------------------------------


def _default_text(param: Parameter, ctx: Context) -> str:
    show_default = getattr(param, "show_default", False)
    if isinstance(show_default, str):
        return show_default
    if not (show_default or getattr(ctx, "show_default", False)):
        return ""
    try:
        value = param.get_default(ctx, call=False)
    except Exception:
        value = getattr(param, "default", None)
    if getattr(param, "is_flag", False):
        secondary = getattr(param, "secondary_opts", None)
        if not secondary:
            return ""  # a lone flag is off unless given
        return option_label(param).lstrip("-") if value else secondary[0].lstrip("-")
    if isinstance(value, (list, tuple)):
        return ", ".join(_shown_default(v) for v in value if v is not None)
    return "" if value is None else _shown_default(value)


def _shown_default(value: Any) -> str:
    if isinstance(value, enum.Enum):
        return str(value.value)
    if callable(value):
        return "(dynamic)"
    return str(value)


def _extras(param: Parameter, ctx: Context) -> str:
    extra = []
    envvar = getattr(param, "envvar", None)
    if envvar and getattr(param, "show_envvar", False):
        names = envvar if isinstance(envvar, str) else ", ".join(str(e) for e in envvar)
        extra.append(f"env var: {names}")
    default = _default_text(param, ctx)
    if default:
        extra.append(f"default: {default}")
    if getattr(param, "required", False) and not is_argument(param):
        extra.append("required")
    return f"[{'; '.join(extra)}]" if extra else ""


def _help_cell(param: Parameter, ctx: Context) -> str:
    help_ = _plain(inspect.cleandoc(getattr(param, "help", None) or ""))
    help_ = " ".join(help_.split())
    extras = _extras(param, ctx)
    return f"{help_}  {extras}" if help_ and extras else help_ or extras


def argument_record(param: Parameter, ctx: Context) -> tuple[str, str]:
    return argument_name(param), _help_cell(param, ctx)


def option_record(param: Parameter, ctx: Context) -> tuple[str, str]:
    def names(opts: list[str]) -> str:
        text, _ = join_options(opts)
        if takes_value(param):
            text += f" {option_metavar(param)}"
        return text

    parts = [names(list(param.opts))]
    if getattr(param, "secondary_opts", None):
        parts.append(names(list(param.secondary_opts)))
    return " / ".join(parts), _help_cell(param, ctx)


def write_parameters(command: Any, ctx: Context, formatter: HelpFormatter) -> None:
    """The Arguments and Options sections of a help page."""
    arguments, options = [], []
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        if is_argument(param):
            arguments.append(argument_record(param, ctx))
        elif getattr(param, "param_type_name", "") == "option":
            options.append(option_record(param, ctx))
    if arguments:
        with formatter.section("Arguments"):
            formatter.write_dl(arguments)
    if options:
        with formatter.section("Options"):
            formatter.write_dl(options)


# --- the classes ----------------------------------------------------------------------------


class _PlainHelp:
    """The help page of a command or group, in plain words (see the module docstring)."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)  # type: ignore[misc]
        except click_exceptions.UsageError as exc:  # the parser's own: without the context
            if getattr(exc, "ctx", None) is None:
                exc.ctx = ctx
                exc.cmd = ctx.command
            raise

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        command: Any = self
        pieces = [command.options_metavar] if command.options_metavar else []
        for param in command.get_params(ctx):
            if is_argument(param) and not getattr(param, "hidden", False):
                pieces.append(usage_piece(param))
        return pieces

    def format_help(self, ctx: Context, formatter: HelpFormatter) -> None:
        command: Any = self
        command.format_usage(ctx, formatter)
        command.format_help_text(ctx, formatter)
        command.format_options(ctx, formatter)
        command.format_epilog(ctx, formatter)

    def format_help_text(self, ctx: Context, formatter: HelpFormatter) -> None:
        command: Any = self
        text = command.help or ""
        if command.deprecated:
            note = (
                f"(DEPRECATED: {command.deprecated})"
                if isinstance(command.deprecated, str)
                else "(DEPRECATED)"
            )
            text = f"{note}\n\n{text}"
        write_help_text(formatter, text)

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        write_parameters(self, ctx, formatter)


class HelpCommand(_PlainHelp, TyperCommand):
    """A tokneigh command: plain help; a missing argument is an error, never the help page
    (``no_args_is_help`` is ignored: the handler reports what is missing, exit 2)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["rich_markup_mode"] = None
        kwargs["no_args_is_help"] = False
        super().__init__(*args, **kwargs)

    def invoke(self, ctx: Context) -> Any:
        from ..errors import TokneighError

        try:
            return super().invoke(ctx)
        except TokneighError as exc:
            # cli/errors.py hints only at options this command has (compare has no --id).
            setattr(exc, OPTIONS_ATTRIBUTE, command_options(self))
            raise


OPTIONS_ATTRIBUTE = "_tokneigh_command_options"


def command_options(command: Any) -> frozenset[str]:
    """Every long option ``command`` takes (hidden spellings included)."""
    return frozenset(
        name
        for param in command.params
        if not is_argument(param)
        for name in getattr(param, "opts", ())
        if name.startswith("--")
    )


class HelpGroup(_PlainHelp, TyperGroup):
    """A tokneigh command group: plain help, its commands listed after the options."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["rich_markup_mode"] = None
        super().__init__(*args, **kwargs)

    def collect_usage_pieces(self, ctx: Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        return [*pieces, self.subcommand_metavar] if self.subcommand_metavar else pieces

    def format_options(self, ctx: Context, formatter: HelpFormatter) -> None:
        write_parameters(self, ctx, formatter)
        self.format_commands(ctx, formatter)
