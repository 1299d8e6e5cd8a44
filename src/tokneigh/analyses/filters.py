"""Which tokens a ranking may list: one value shared by every query method."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError


@dataclass(frozen=True)
class Filters:
    """Filters on a neighbour ranking, all off by default (the API ranks every row).

    ``skip_special`` leaves out control tokens, reserved slots and rows the tokenizer does not
    name (a query's own tokens excepted); ``words_only`` tokens without a letter; ``min_sim``
    tokens below that cosine; ``dedupe`` folds tokens that differ only by a leading space or
    case into the best one, listing the others as its variants. They apply to the ranking of
    the whole vocabulary before ``k`` is taken.
    """

    skip_special: bool = False
    words_only: bool = False
    dedupe: bool = False
    min_sim: float | None = None

    def __post_init__(self) -> None:
        if self.min_sim is not None:
            # `not (a <= x <= b)` also refuses NaN, which every comparison lets through.
            if not -1.0 <= float(self.min_sim) <= 1.0:
                raise UsageError(
                    f"the minimum similarity must be between -1 and 1, got {self.min_sim}"
                )
            object.__setattr__(self, "min_sim", float(self.min_sim))

    @property
    def narrowing(self) -> bool:
        """Whether a filter other than ``skip_special`` may leave fewer than k tokens."""
        return self.words_only or self.dedupe or self.min_sim is not None


NO_FILTERS = Filters()
