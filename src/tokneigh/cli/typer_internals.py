"""Every private name tokneigh uses from Typer, from the click that Typer vendors, and from the
interpreter's exit machinery: here and nowhere else, so that a Typer upgrade breaks this one
module, and tests/test_typer_internals.py says what moved.

Typer >= 0.20 ships its own copy of click as ``typer._click``: its commands, contexts and
exceptions are that copy's classes, not the public ``click`` package's (which Typer does not
depend on), so only ``typer._click`` names catch and format what Typer raises and prints.
What each use buys (measured on Typer 0.29.3, a cached ``tokneigh neighbors``):

- the click exceptions and help-formatting helpers: one-line errors (cli/errors.py) and plain
  help pages (cli/help.py: Typer's own shows ``<list[str]>``, ``{TEXT}...``, ``\\[CLS]``);
- the value coercion hook: keeps pydantic off the hot path (cli/_fastparams.py; 70-90 ms);
- ``atexit._run_exitfuncs``: ends a finished run without the interpreter's teardown
  (``_end_process`` in cli/__init__.py; 60-90 ms).
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import Any

import typer

try:  # Typer >= 0.20 ships its own copy of click
    from typer._click import Context, HelpFormatter, Parameter
    from typer._click import exceptions as click_exceptions
    from typer._click.formatting import join_options, wrap_text
except ImportError:  # pragma: no cover - older Typer uses click itself
    from click import Context, HelpFormatter, Parameter  # type: ignore[assignment]
    from click import exceptions as click_exceptions  # type: ignore[no-redef]
    from click.formatting import join_options, wrap_text  # type: ignore[no-redef]

# What cli/help.py and cli/errors.py take from here as they are.
__all__ = ["Context", "HelpFormatter", "Parameter", "click_exceptions", "join_options", "wrap_text"]


# --- output ---------------------------------------------------------------------------------


def raised_by_echo(exc: BaseException) -> bool:
    """Whether ``exc`` came out of ``typer.echo`` itself (it writes and flushes at once: a
    full or closed standard output fails there), as opposed to code that called it."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and tb.tb_frame.f_code is getattr(typer.echo, "__code__", None)


def run_exit_functions() -> None:
    """Run the atexit handlers now (before ``os._exit``, which skips them)."""
    atexit._run_exitfuncs()


# --- value coercion -------------------------------------------------------------------------


def param_types() -> Any:
    """Typer's value helpers (coerce_cli_choice, coerce_cli_path, routes_to_path), looked up at
    each use: one that Typer renames then fails the fast path, which falls back to Typer's own
    coercion, instead of the import of the whole CLI."""
    from typer import _param_types

    return _param_types


Coerce = Callable[[Any, Any, Any, Any, Any], Any]
Reword = Callable[[Any, Any, Any, Any, Any, Exception, Callable[[Any], Any]], Any]


def route_value_coercion(
    coerce: Coerce, reword: Reword, is_rejection: Callable[[BaseException], bool]
) -> bool:
    """Route every Typer parameter's value coercion through ``coerce(annotation, info, value,
    param, ctx)`` first; Typer's own (pydantic) coercion, built only then, decides whatever
    ``coerce`` raises on that ``is_rejection`` does not accept. When Typer's own rejects a
    value, ``reword(annotation, info, value, param, ctx, exc, typer_own)`` may return a plainer
    exception to raise instead (``typer_own(v)`` coerces ``v`` Typer's way).

    False, changing nothing, if Typer's internals differ from what this expects or a smoke
    test fails (one plain value, one plain rejection)."""
    try:
        return _route(coerce, reword, is_rejection)
    except Exception:
        return False


def _route(coerce: Coerce, reword: Reword, is_rejection: Callable[[BaseException], bool]) -> bool:
    try:
        from typer import _coercion
        from typer.core import _TyperParameter
        from typer.models import OptionInfo
    except ImportError:
        return False
    if getattr(_TyperParameter, "_tokneigh_fast", False):
        return True
    original_build: Any = getattr(_coercion, "build_runtime_param", None)
    base: Any = getattr(_coercion, "RuntimeParam", None)
    resolve: Any = getattr(_coercion, "resolve_type_descriptor", None)
    original_get: Any = getattr(_TyperParameter, "get_runtime_param", None)
    if None in (original_build, base, resolve, original_get) or not isinstance(base, type):
        return False

    class PlainRuntimeParam(base):  # type: ignore[misc, valid-type]
        """Typer's RuntimeParam contract; pydantic only for values it must judge."""

        def __init__(self, descriptor: Any) -> None:
            super().__init__(  # dataclass(frozen=True) fields of RuntimeParam
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )
            object.__setattr__(self, "_descriptor", descriptor)
            object.__setattr__(self, "_typer", None)

        def _typer_own(self) -> Any:
            if self._typer is None:
                object.__setattr__(self, "_typer", original_build(self._descriptor))
            return self._typer

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            try:
                return coerce(self.annotation, self.parameter_info, value, param, ctx)
            except Exception as exc:  # not a plain case, or a broken helper: Typer decides
                if is_rejection(exc):
                    raise
            try:
                return self._typer_own()._coerce_value(value, param=param, ctx=ctx)
            except Exception as exc:

                def typer_own(item: Any) -> Any:
                    return self._typer_own()._coerce_value(item, param=param, ctx=ctx)

                try:
                    plain = reword(
                        self.annotation, self.parameter_info, value, param, ctx, exc, typer_own
                    )
                except Exception:  # no plain words today: Typer's own message stands
                    plain = None
                if plain is None:
                    raise
                raise plain from exc

    # Smoke test before touching anything: a plain value, and a plain rejection.
    probe = PlainRuntimeParam(resolve(int, OptionInfo(min=1)))
    if probe._coerce_value("5", param=None, ctx=None) != 5:
        return False
    try:
        probe._coerce_value("0", param=None, ctx=None)
    except Exception as exc:
        if not is_rejection(exc):
            return False
    else:
        return False

    def get_runtime_param(self: Any) -> Any:
        try:
            runtime = self.__dict__.get("_tokneigh_runtime")
            if runtime is None:
                descriptor = self.type_descriptor
                if descriptor.file_annotation is not None:  # opened files: Typer's own
                    return original_get(self)
                runtime = PlainRuntimeParam(descriptor)
                self.__dict__["_tokneigh_runtime"] = runtime
            return runtime
        except Exception:
            return original_get(self)

    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010
    setattr(_TyperParameter, "_tokneigh_fast", True)  # noqa: B010
    return True
