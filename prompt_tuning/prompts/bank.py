"""Named prompts for one frozen model, as the table a batch of mixed prompts reads.

    bank = PromptBank(width=768)
    bank.add("sst2", np.load("sst2.npy"))        # [100, 768]
    bank.add("rte", np.load("rte.npy"))          # [20, 768]
    values, lengths = bank.table()               # [2, 100, 768], (100, 20)
    prompt_ids = bank.ids(["rte", "sst2", "rte"])   # [3] int32

`runtime.with_prompts` turns a bank into a model (`PaddedPromptTable`) and its parameters.
"""

from __future__ import annotations

import difflib
from typing import Iterable, Optional

import numpy as np

from prompt_tuning import errors
from prompt_tuning.prompts.files import check_finite


class PromptBank:
    """An ordered set of named `[P, width]` prompts (P may differ between prompts)."""

    def __init__(self, width: int):
        self.width = int(width)
        self._prompts: dict[str, np.ndarray] = {}

    def add(self, name: str, value: np.ndarray, source: str = "the prompt") -> None:
        """Adds (or replaces) prompt `name`; `value` must be `[P, width]`, finite."""
        if not isinstance(name, str) or not name.strip() or name != name.strip():
            raise errors.UsageError(f"A prompt name must be non-empty text without surrounding "
                                    f"spaces, got {name!r}.")
        value = np.asarray(value, np.float32)
        if value.ndim != 2 or value.shape[0] < 1 or value.shape[1] != self.width:
            raise errors.PromptFileError(
                f"{source}: a prompt of shape {list(value.shape)} does not fit the model: "
                f"expected [P, {self.width}] (the model's embedding width).")
        check_finite(value, source)
        self._prompts[name] = value

    def remove(self, name: str) -> None:
        self.ids([name])  # the unknown-name error
        del self._prompts[name]

    @property
    def names(self) -> list[str]:
        return list(self._prompts)

    def __len__(self) -> int:
        return len(self._prompts)

    def __contains__(self, name: object) -> bool:
        return name in self._prompts

    def get(self, name: str) -> np.ndarray:
        self.ids([name])
        return self._prompts[name]

    def ids(self, names: Iterable[str]) -> np.ndarray:
        """[len(names)] int32: each name's row in `table()`; an unknown name is one error."""
        index = {name: i for i, name in enumerate(self._prompts)}
        out = []
        for name in names:
            if name not in index:
                raise errors.UsageError(unknown_prompt_message(name, self.names))
            out.append(index[name])
        return np.asarray(out, np.int32)

    def table(self, capacity: Optional[int] = None, length: Optional[int] = None
              ) -> tuple[np.ndarray, tuple[int, ...]]:
        """([rows, P_max, width] float32, the real length of each row).

        Row i is prompt i in its first positions, zeros after. `capacity` (>= len) and
        `length` (>= the longest prompt) pad the table further, e.g. to a few fixed shapes so
        that adding a prompt rarely changes them; padding rows have length 1 and are never
        picked.
        """
        if not self._prompts:
            raise errors.UsageError("No prompt is registered.")
        rows = capacity or len(self._prompts)
        longest = max(p.shape[0] for p in self._prompts.values())
        width_p = length or longest
        if rows < len(self._prompts) or width_p < longest:
            raise ValueError(f"table({capacity}, {length}) is smaller than the bank "
                             f"({len(self._prompts)} prompts, the longest {longest}).")
        values = np.zeros((rows, width_p, self.width), np.float32)
        lengths = [1] * rows
        for i, prompt in enumerate(self._prompts.values()):
            values[i, :prompt.shape[0]] = prompt
            lengths[i] = int(prompt.shape[0])
        return values, tuple(lengths)


def unknown_prompt_message(name: object, known: list[str]) -> str:
    close = difflib.get_close_matches(str(name), known, n=1, cutoff=0.6)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"Unknown prompt {name!r}; registered: {known}.{hint}"
