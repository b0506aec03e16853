"""The paper's optimizer: Adafactor at a constant learning rate of 0.3 (Lester et al., 2021, §3).

optax's `adafactor` with these settings matches T5X's Adafactor for a prompt: decay exponent
0.8 (beta2_t = 1 - (t+1)^-0.8), no parameter scaling, update clipping at RMS 1.0, decoupled
weight decay 1e-5 (`p - lr*u - wd*p`), epsilon 1e-30, and no factoring (T5X's factor rules
leave the prompt axes unfactored; optax would factor a prompt whose dims are both >= 128).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import optax

from prompt_tuning import errors


@dataclasses.dataclass(frozen=True)
class AdafactorConfig:
    learning_rate: float = 0.3
    decay_rate: float = 0.8
    weight_decay_rate: Optional[float] = 1e-5
    clipping_threshold: Optional[float] = 1.0
    multiply_by_parameter_scale: bool = False
    factored: bool = False
    # Constant by default, as in the paper; a linear warmup is one number away.
    warmup_steps: int = 0

    def __post_init__(self):
        def number(name, low, strict=True, optional=False):
            value = getattr(self, name)
            if optional and value is None:
                return
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
                value > low if strict else value >= low)
            if not ok:
                raise errors.UsageError(f"AdafactorConfig.{name} must be a number "
                                        f"{'>' if strict else '>='} {low}, got {value!r}.")

        number("learning_rate", 0)
        number("decay_rate", 0)
        number("weight_decay_rate", 0, strict=False, optional=True)
        number("clipping_threshold", 0, optional=True)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) \
                or self.warmup_steps < 0:
            raise errors.UsageError(f"warmup_steps must be an integer >= 0, got "
                                    f"{self.warmup_steps!r}.")


def learning_rate_schedule(config: AdafactorConfig) -> optax.Schedule:
    if config.warmup_steps:
        return optax.linear_schedule(0.0, config.learning_rate, config.warmup_steps)
    return optax.constant_schedule(config.learning_rate)


def adafactor(config: AdafactorConfig = AdafactorConfig()) -> optax.GradientTransformation:
    """The optimizer for the trainable parameters only (see `training.trainable`)."""
    return optax.adafactor(
        learning_rate=learning_rate_schedule(config),
        decay_rate=config.decay_rate,
        multiply_by_parameter_scale=config.multiply_by_parameter_scale,
        clipping_threshold=config.clipping_threshold,
        weight_decay_rate=config.weight_decay_rate,
        factored=config.factored,
    )
