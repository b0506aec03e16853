"""The soft prompt's settings, as gin binds them: length, initializer, placement, what trains.

    PromptConfig.length = %PROMPT_LENGTH
    PromptConfig.init = @initializers.from_class_labels    # a prompts/*.gin file binds this
    PromptConfig.placement = %PLACEMENT                     # 'prefix' | 'suffix'

`combiner(...)` turns the settings into the module the model's seam takes.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from typing import Any, Callable, Mapping, Optional, Sequence, Union

import jax
import jax.numpy as jnp

from prompt_tuning import errors
from prompt_tuning.prompts import placements, seam
from prompt_tuning.prompts.module import Prompt
from prompt_tuning.prompts.table import PromptTable

InitFactory = Callable[..., Callable]
# Arguments an initializer factory may take from the frozen model when gin leaves them unbound.
MODEL_PROVIDED = ("embedding", "vocabulary")


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    """The soft prompt.

    Attributes:
      length: P.
      init: a factory returning a Flax initializer, e.g. `initializers.from_sampled_vocab`
        (gin: `PromptConfig.init = @initializers.from_sampled_vocab`). Arguments named
        `embedding` or `vocabulary` that the factory takes and gin left unbound are filled with
        the frozen model's embedding table `[vocab, embed]` and vocabulary. None: U[-0.5, 0.5].
      placement: where the prompt goes in the encoder input: a name of
        `placements.PLACEMENTS` ('prefix', the paper's, or 'suffix'; gin: PLACEMENT) or a
        placement function.
      trainable: regexes over '/'-joined parameter paths that train (default: the prompt only;
        they must include the prompt's own path, `prompt/prompt`).
    """

    length: int = 100
    init: Optional[InitFactory] = None
    placement: placements.Placement = placements.prefix
    trainable: Sequence[str] = seam.TRAINABLE

    def __post_init__(self):
        if not isinstance(self.length, int) or isinstance(self.length, bool) or self.length <= 0:
            raise errors.UsageError(
                f"PROMPT_LENGTH must be a positive integer, got {self.length!r}.")
        if self.init is not None and not callable(self.init):
            raise errors.UsageError(f"PromptConfig.init must be an initializer factory such as "
                                    f"@initializers.random_uniform, got {self.init!r}.")
        if isinstance(self.placement, str):
            if self.placement not in placements.PLACEMENTS:
                raise errors.UsageError(f"PLACEMENT must be one of {sorted(placements.PLACEMENTS)}"
                                        f" (or a placement function), got {self.placement!r}.")
            object.__setattr__(self, "placement", placements.PLACEMENTS[self.placement])
        if not callable(self.placement):
            raise errors.UsageError(f"PromptConfig.placement must be a placement function such "
                                    f"as @placements.prefix, got {self.placement!r}.")
        patterns = (self.trainable,) if isinstance(self.trainable, str) else self.trainable
        if not patterns or not all(isinstance(p, str) for p in patterns):
            raise errors.UsageError(f"PromptConfig.trainable must be a list of regexes, got "
                                    f"{self.trainable!r}.")
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as e:
                raise errors.UsageError(
                    f"PromptConfig.trainable: bad regex {pattern!r}: {e}.") from e
            if compiled.fullmatch(seam.PATH):
                break
        else:
            raise errors.UsageError(f"PromptConfig.trainable {list(patterns)} leaves the prompt "
                                    f"frozen; include '{seam.SCOPE}/.*'.")
        object.__setattr__(self, "trainable", tuple(patterns))

    def initializer(self, provided: Mapping[str, Callable[[], Any]]) -> Callable:
        """The Flax initializer: `init` called with what it needs of `provided`.

        Args:
          provided: {argument name: zero-argument function returning it}, for the names in
            MODEL_PROVIDED that the factory takes and gin left unbound (each is called only
            if needed, so a large embedding table is fetched only by initializers that use it).
        """
        factory = self.init
        if factory is None:
            from prompt_tuning.prompts import initializers  # pylint: disable=import-outside-toplevel
            factory = initializers.random_uniform
        try:
            parameters = inspect.signature(factory).parameters
        except (TypeError, ValueError):
            parameters = {}
        kwargs = {name: make() for name, make in provided.items()
                  if name in parameters and parameters[name].default is inspect.Parameter.empty}
        return factory(**kwargs)

    def combiner(self, initializer: Optional[Callable] = None,
                 num_prompts: Optional[int] = None) -> Union[Prompt, PromptTable]:
        """The module for the model's seam (`initializer` only matters for init): one `Prompt`,
        or a `PromptTable` of `num_prompts` prompts (one per task of a multi-task run), each
        row initialised on its own by the initializer."""
        if num_prompts is None:
            return Prompt(self.length, initializer=initializer, placement=self.placement)
        return PromptTable(num_prompts, self.length, placement=self.placement,
                           initializer=None if initializer is None else per_row(initializer))


def per_row(initializer: Callable) -> Callable:
    """A `[n, P, d]` initializer from a `[P, d]` one: row k from its own key."""

    def init(rng, shape, dtype=jnp.float32):
        keys = jax.random.split(rng, shape[0])
        return jnp.stack([initializer(key, tuple(shape[1:]), dtype) for key in keys])

    return init
