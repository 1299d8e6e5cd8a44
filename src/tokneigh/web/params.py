"""A request's query parameters read strictly, and the refusals every endpoint shares."""

from __future__ import annotations

from starlette.requests import Request

from ..analyses.filters import Filters

# What one request may ask: a query of a page's worth of text.
MAX_QUERY_CHARS = 1000

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class BadRequest(Exception):
    """A request parameter that is missing, malformed or beyond a limit (status 400)."""


class Refused(Exception):
    """A request the server cannot answer as asked, with its status (the map too large for
    the page: 413; not computed yet: 409)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


class Params:
    """A request's query parameters, read strictly: each at most once, none unknown."""

    def __init__(self, request: Request, allowed: set[str]) -> None:
        items = request.query_params.multi_items()
        self._values: dict[str, str] = {}
        for name, value in items:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "none"
                raise BadRequest(f"unknown parameter {name!r} (this endpoint takes {takes})")
            if name in self._values:
                raise BadRequest(f"parameter {name!r} is given more than once")
            self._values[name] = value

    def get(self, name: str) -> str | None:
        return self._values.get(name)

    def text(self, name: str) -> str:
        value = self._values.get(name)
        if value is None or not value.strip():
            raise BadRequest(f"parameter {name!r} is missing or empty")
        if len(value) > MAX_QUERY_CHARS:
            raise BadRequest(
                f"parameter {name!r} is {len(value):,} characters long; the limit is "
                f"{MAX_QUERY_CHARS:,}"
            )
        return value

    def query(self, name: str) -> str:
        """A query as written: the library reads ``#N`` (token id N) and ``\\#...`` (the
        literal text) as every surface does (``analyses.queries.parse_query_text``)."""
        return self.text(name)

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self._values.get(name)
        if value is None or value == "":
            return default
        try:
            number = int(value)
        except ValueError:
            raise BadRequest(f"parameter {name!r} must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise BadRequest(f"parameter {name!r} must be between {low} and {high}, got {number}")
        return number

    def flag(self, name: str) -> bool:
        value = self._values.get(name, "").lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise BadRequest(f"parameter {name!r} is 1 or 0, got {value!r}")

    def number(self, name: str) -> float | None:
        value = self._values.get(name)
        if value is None or value == "":
            return None
        try:
            return float(value)
        except ValueError:
            raise BadRequest(f"parameter {name!r} must be a number, got {value!r}") from None

    def filters(self) -> Filters:
        return Filters(
            skip_special=not self.flag("include_special"),
            words_only=self.flag("words_only"),
            dedupe=self.flag("dedupe"),
            min_sim=self.number("min_sim"),  # Filters refuses NaN and values outside [-1, 1]
        )


FILTERS = {"include_special", "words_only", "dedupe", "min_sim"}
