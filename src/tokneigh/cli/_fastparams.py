"""Keep pydantic off the hot path of Typer >= 0.2x, and word bad values plainly.

Recent Typer coerces every command-line value through a pydantic ``TypeAdapter``: importing
pydantic and building the adapters costs more than the whole of a cached query. This module
gives each Typer parameter a coercer for the plain cases our commands use (str, int and float
with min/max, Enum choices, Path, bool, and lists of those), done as Typer does them, and hands
every other value to Typer's own pydantic coercer, built only then. Accepted values are
therefore exactly Typer's; tests/test_hot_path.py checks both paths agree.

Rejected values are worded here, in plain words, instead of pydantic's ("Input should be
greater than or equal to 1"): ``must be at least 1, got 0``, ``'abc' is not a whole number``,
``'xml' is not one of table, json, tsv, csv``. They are raised as click's BadParameter, so click
names the parameter, and ``cli/errors.py`` prints ``--top: must be at least 1, got 0``.

The hook into Typer's private internals is in ``cli/typer_internals.py``, and it fails safe:
``install()`` patches nothing (and returns False) unless a smoke test passes, and any exception
from this code or from the Typer helpers it calls, other than a deliberate rejection, falls
back to Typer's own coercion.
"""

from __future__ import annotations

import math
import re
from enum import Enum
from pathlib import Path
from typing import Any, get_args, get_origin

import typer

from . import typer_internals

# The plain forms, decided here without pydantic.
_INTEGER = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")
# Everything pydantic might accept besides (signs, spaces, "1_000", "20.0", "1e3", "inf"):
# such values go to Typer's own coercion; whatever matches neither is rejected here.
_INTEGER_LIKE = re.compile(r"[+-]?[0-9][0-9_]*(\.[0-9_]*)?", re.ASCII)
_NUMBER_LIKE = re.compile(
    r"[+-]?(inf(inity)?|nan|([0-9][0-9_]*(\.[0-9_]*)?|\.[0-9][0-9_]*)(e[+-]?[0-9_]+)?)",
    re.ASCII | re.IGNORECASE,
)
_VERDICT = "_tokneigh_verdict"  # marks a BadParameter raised here on purpose


class _Unhandled(Exception):
    """The value is not a plain case: let Typer's own (pydantic) coercion decide."""


# --- wording --------------------------------------------------------------------------------


def _rejection(message: str, param: Any, ctx: Any) -> Exception:
    exc = typer.BadParameter(message, ctx=ctx, param=param)
    setattr(exc, _VERDICT, True)
    return exc


def is_rejection(exc: BaseException) -> bool:
    """True for a value this module rejected on purpose (its message is already plain)."""
    return bool(getattr(exc, _VERDICT, False))


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    return repr(str(value))


def _bound(number: float) -> str:
    return f"{number:g}" if isinstance(number, float) else str(number)


def _out_of_range(info: Any, number: float) -> str | None:
    """The range message if ``number`` is outside [min, max] (NaN is outside any range)."""
    low, high = info.min, info.max
    below = low is not None and not number >= low
    above = high is not None and not number <= high
    if not (below or above):
        return None
    if low is not None and high is not None:
        return f"must be from {_bound(low)} to {_bound(high)}"
    if low is not None:
        return f"must be at least {_bound(low)}"
    return f"must be at most {_bound(high)}"


def _number_problem(whole: bool, info: Any, value: Any) -> str:
    """Why Typer rejected ``value`` for an int (whole) or float option, in words."""
    text = value.strip() if isinstance(value, str) else str(value)
    number: float | None = None
    if text.isascii() and text.isprintable():
        try:
            number = float(text)
        except ValueError:
            number = None
    if number is not None and (not whole or (math.isfinite(number) and number.is_integer())):
        problem = _out_of_range(info, number)
        if problem is not None:
            return f"{problem}, got {text}"
    return f"{_shown(value)} is not {'a whole number' if whole else 'a number'}"


def _choice_problem(choices: Any, value: Any) -> str:
    names = ", ".join(str(c.value) if isinstance(c, Enum) else str(c) for c in choices)
    return f"{_shown(value)} is not one of {names}"


def _leaf_problem(annotation: Any, info: Any, value: Any, typer_says: str) -> str | None:
    """Plain words for a value Typer rejected, or None to keep Typer's own message (a path
    that does not exist, say: Typer words those plainly)."""
    if annotation is int and not info.clamp:
        return _number_problem(True, info, value)
    if annotation is float and not info.clamp:
        return _number_problem(False, info, value)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return _choice_problem(tuple(annotation), value)
    if annotation is bool:
        return f"{_shown(value)} is not true or false"
    if typer_says.startswith("Input "):  # pydantic's voice ("Input is not a valid path ...")
        if isinstance(annotation, type) and issubclass(annotation, Path):
            return f"{_shown(value)} is not a path"
        return f"{_shown(value)} is not a valid value"
    return None


# --- the plain cases ------------------------------------------------------------------------


def _number(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    whole = annotation is int
    if info.clamp:
        raise _Unhandled
    if isinstance(value, str):
        plain = _INTEGER if whole else _DECIMAL
        if plain.fullmatch(value):
            number: Any = int(value) if whole else float(value)  # float(): correctly rounded
        elif (_INTEGER_LIKE if whole else _NUMBER_LIKE).fullmatch(value.strip()):
            raise _Unhandled  # an unusual spelling: Typer decides
        else:
            raise _rejection(_number_problem(whole, info, value), param, ctx)
    elif type(value) is annotation:
        number = value
    else:
        raise _Unhandled
    problem = _out_of_range(info, number)
    if problem is not None:
        got = value if isinstance(value, str) else _bound(number)
        raise _rejection(f"{problem}, got {got}", param, ctx)
    return number


def _leaf(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    pt = typer_internals.param_types()
    if info.parser is not None:
        raise _Unhandled
    if annotation is str:
        if isinstance(value, str):
            return value
        raise _Unhandled
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise _Unhandled
    if annotation is int or annotation is float:
        return _number(annotation, info, value, param, ctx)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        choices = tuple(annotation)
        try:
            return pt.coerce_cli_choice(
                value, choices=choices, case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:  # Typer's own way of saying "not one of them"
            raise _rejection(_choice_problem(choices, value), param, ctx) from None
    if (
        isinstance(annotation, type)
        and issubclass(annotation, Path)
        and pt.routes_to_path(annotation, info)
    ):
        path_type = info.path_type or annotation
        if not (isinstance(path_type, type) and issubclass(path_type, Path)):
            raise _Unhandled
        if isinstance(value, str) and value:
            value = path_type(value)
        if not isinstance(value, path_type):
            raise _Unhandled
        return pt.coerce_cli_path(value, info, path_type=path_type, param=param, ctx=ctx)
    raise _Unhandled


def _coerce(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    if get_origin(annotation) is list:
        args = get_args(annotation)
        if len(args) != 1 or not isinstance(value, (list, tuple)):
            raise _Unhandled
        return [_leaf(args[0], info, item, param, ctx) for item in value]
    return _leaf(annotation, info, value, param, ctx)


# --- installing -----------------------------------------------------------------------------


def _reword(
    annotation: Any, info: Any, value: Any, param: Any, ctx: Any, exc: Exception, typer_own: Any
) -> Exception | None:
    """Typer's rejection of ``value`` in plain words, when this module has them."""
    if not isinstance(exc, typer.BadParameter):
        return None
    culprit = value
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation)
        items = value if isinstance(value, (list, tuple)) else [value]
        culprit = _first_rejected(typer_own, items)
        if culprit is _NONE:
            return None
    says = str(getattr(exc, "message", exc))
    problem = _leaf_problem(annotation, info, culprit, says)
    return None if problem is None else _rejection(problem, param, ctx)


_NONE = object()


def _first_rejected(typer_own: Any, items: Any) -> Any:
    for item in items:
        try:
            typer_own([item])
        except Exception:
            return item
    return _NONE


def install() -> bool:
    """Route Typer's value coercion through the plain-case coercer; False if not applicable
    (an older or newer Typer whose internals differ), in which case nothing is changed."""
    return typer_internals.route_value_coercion(_coerce, _reword, is_rejection)
