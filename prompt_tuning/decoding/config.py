"""How to decode: greedy, or beam search with T5X's defaults (gin-bindable)."""

from __future__ import annotations

import dataclasses

from prompt_tuning import errors

METHODS = ("greedy", "beam")


@dataclasses.dataclass(frozen=True)
class DecodingConfig:
    """T5X's defaults for beam search: 4 beams, brevity penalty alpha 0.6.

    Attributes:
      method: "greedy" or "beam" (`DECODING`).
      num_beams: beams per example for "beam".
      alpha: brevity-penalty exponent for "beam" (0: raw log-probabilities).
    """

    method: str = "greedy"
    num_beams: int = 4
    alpha: float = 0.6

    def __post_init__(self):
        if self.method not in METHODS:
            raise errors.UsageError(f"decoding method must be 'greedy' or 'beam' (DECODING), got "
                                    f"{self.method!r}.")
        if isinstance(self.num_beams, bool) or not isinstance(self.num_beams, int) \
                or self.num_beams < 1:
            raise errors.UsageError(f"num_beams must be >= 1, got {self.num_beams!r}.")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) \
                or self.alpha < 0:
            raise errors.UsageError(f"the brevity penalty alpha must be >= 0, got {self.alpha!r}.")

    def describe(self) -> str:
        """`greedy` or `beam search (4 beams, alpha 0.6)`, for output lines."""
        if self.method == "greedy":
            return "greedy"
        return f"beam search ({self.num_beams} beams, alpha {self.alpha:g})"
