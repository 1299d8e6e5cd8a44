"""``to_pandas()`` of every table-shaped result, built here once.

Each result says which rows and columns it has, derived from its own ``to_json()`` (so the
data frame and the JSON contract cannot drift); this module turns them into a typed frame:

- ``int``: int64 (ids, ranks, counts that are always there);
- ``maybe_int``: pandas' nullable Int64 (an id that may be null: a text query's ``query_id``);
- ``float``: float64 (similarities, scores; a JSON null or an undefined value is NaN);
- ``bool``: bool;
- ``text``: object, each cell the very ``str`` the JSON holds, or None where the JSON has
  null. Object, not pandas' ``string`` dtype: that one stores text in Arrow when pyarrow is
  installed (pandas 3), which cannot hold a lone surrogate (a query from a shell's undecodable
  argument), and it turns None into ``pd.NA``. A token ``"nan"`` stays the string "nan";
- ``object``: any Python value as is (a list of variants).

pandas is imported only here, when a frame is asked for: it is an optional dependency
(``pip install 'tokneigh[frames]'``), and a cached query never loads it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from ..errors import MissingDependencyError

Kind = Literal["int", "maybe_int", "float", "bool", "text", "object"]

_DTYPES: dict[str, Any] = {
    "int": "int64",
    "maybe_int": "Int64",
    "float": "float64",
    "bool": "bool",
    "text": object,
    "object": object,
}


def pandas() -> Any:
    """The pandas module, or a one-line error naming the install."""
    try:
        import pandas  # type: ignore[import-untyped]
    except ImportError as exc:
        raise MissingDependencyError(
            "data frames need pandas, which is not installed: pip install pandas "
            "(or pip install 'tokneigh[frames]')"
        ) from exc
    return pandas


def frame(columns: Mapping[str, tuple[Kind, Sequence[Any] | np.ndarray]]) -> Any:
    """A DataFrame of these columns (name -> (kind, values)), each typed by its kind."""
    pd = pandas()
    data = {}
    for name, (kind, values) in columns.items():
        if kind == "float" and not isinstance(values, np.ndarray):
            # None (a JSON null) becomes NaN, as a float64 column spells a missing value.
            values = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        if kind in ("text", "object") and not isinstance(values, np.ndarray):
            # Built by hand: pandas would infer a str dtype, or split lists into elements.
            cells = np.empty(len(values), dtype=object)
            cells[:] = list(values)
            values = cells
        data[name] = pd.Series(values, dtype=_DTYPES[kind])
    return pd.DataFrame(data)


def records_frame(records: Iterable[Mapping[str, Any]], kinds: Mapping[str, Kind]) -> Any:
    """A DataFrame with one row per record (a dict from a result's JSON), the columns
    ``kinds`` names, in that order."""
    rows = list(records)
    return frame({name: (kind, [r[name] for r in rows]) for name, kind in kinds.items()})
