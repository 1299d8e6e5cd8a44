"""Keep pydantic off the hot path of Typer >= 0.2x.

Recent Typer coerces every command-line value through a pydantic ``TypeAdapter``: importing
pydantic and building the adapters costs more than the whole of a cached query. This module
gives each Typer parameter a coercer for the plain cases our commands use (str, int and float
with min/max, Enum choices, Path, bool, and lists of those), done with Typer's own helper
functions exactly as Typer does them, and hands every other value (anything unusual, and every
value Typer would reject) to Typer's own pydantic coercer, built only then. Results and error
messages are therefore Typer's own; tests/test_hot_path.py checks both paths agree.

Installed by ``install()``; on a Typer without these internals it does nothing.
"""

from __future__ import annotations

import re
from enum import Enum
from pathlib import Path
from typing import Any

_DIGITS = re.compile(r"[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")


class _Unhandled(Exception):
    """The value is not a plain case: let Typer's own (pydantic) coercion decide."""


def _leaf(annotation: Any, info: Any, value: Any, param: Any, ctx: Any) -> Any:
    from typer import _param_types as pt

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
    if annotation is int:
        if info.clamp:
            raise _Unhandled
        if isinstance(value, str) and _DIGITS.fullmatch(value):
            number = int(value)
        elif type(value) is int:
            number = value
        else:
            raise _Unhandled
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            raise _Unhandled  # Typer words the error
        return number
    if annotation is float:
        if info.clamp:
            raise _Unhandled
        if isinstance(value, str) and _DECIMAL.fullmatch(value):
            number = float(value)  # correctly rounded, as pydantic's parser
        elif type(value) is float:
            number = value
        else:
            raise _Unhandled
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            raise _Unhandled
        return number
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return pt.coerce_cli_choice(
                value, choices=tuple(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:
            raise _Unhandled from None
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
    from typer._typing import get_args, get_origin

    if get_origin(annotation) is list:
        args = get_args(annotation)
        if len(args) != 1 or not isinstance(value, (list, tuple)):
            raise _Unhandled
        return [_leaf(args[0], info, item, param, ctx) for item in value]
    return _leaf(annotation, info, value, param, ctx)


def install() -> bool:
    """Route Typer's value coercion through the plain-case coercer; False if not applicable."""
    try:
        from typer import _coercion, _param_types  # noqa: F401
        from typer.core import _TyperParameter
    except ImportError:
        return False
    original_build = getattr(_coercion, "build_runtime_param", None)
    base = getattr(_coercion, "RuntimeParam", None)
    if original_build is None or base is None:
        return False
    if not hasattr(_TyperParameter, "get_runtime_param"):
        return False
    if getattr(_TyperParameter, "_tokneigh_fast", False):
        return True

    class PlainRuntimeParam(base):  # type: ignore[misc, valid-type]
        """Typer's RuntimeParam contract; pydantic only for values it must judge."""

        def __init__(self, descriptor: Any) -> None:
            super().__init__(  # dataclass(frozen=True) fields of RuntimeParam
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
            object.__setattr__(self, "_descriptor", descriptor)
            object.__setattr__(self, "_typer", None)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return _coerce(self.annotation, self.parameter_info, value, param, ctx)
            except _Unhandled:
                pass
            if self._typer is None:
                object.__setattr__(self, "_typer", original_build(self._descriptor))
            return self._typer._coerce_value(value, param=param, ctx=ctx)

    def get_runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            descriptor = self.type_descriptor
            if descriptor.file_annotation is not None:
                self._runtime_param = original_build(descriptor)
            else:
                self._runtime_param = PlainRuntimeParam(descriptor)
        return self._runtime_param

    _TyperParameter.get_runtime_param = get_runtime_param
    _TyperParameter._tokneigh_fast = True
    return True
