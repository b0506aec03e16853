"""Where a prompt meets the model: its parameter path, and how it is attached to a `Transformer`.

The model has one seam for prompts: `Transformer(config, prompt=combiner)`, where the combiner
(`model.Combiner`: a `Prompt`, a `PromptTable`, ...) joins the embedded encoder inputs. The
combiner's parameters live under the `prompt` scope, its main table under `prompt/prompt`. Every
other part of the package (training, checkpoints, export, scoring) names that path through this
module only.

    model = prompted_model(config, Prompt(20))            # or PromptTable(3, 20)
    params = with_prompt(frozen_params, prompt_array)     # [P, embed] or [num_prompts, P, embed]
    value = prompt_value(params)                          # back out of a tree or a flat dict
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.model import Combiner, T5Config, Transformer

PyTree = Any
# The Transformer attribute (and parameter scope) that holds the combiner.
SCOPE = "prompt"
# The combiner's table parameter.
PARAM = "prompt"
# The table's path in a '/'-joined flat parameter dict (`training.trainable`, checkpoints).
PATH = f"{SCOPE}/{PARAM}"
# What trains by default: everything of the combiner.
TRAINABLE = (f"{SCOPE}/.*",)


def prompted_model(config: T5Config, combiner: Optional[Combiner]) -> Transformer:
    """The frozen model's architecture with `combiner` at the encoder seam (None: no prompt)."""
    return Transformer(config, **{SCOPE: combiner})


def with_prompt(params: Mapping[str, Any], value: Any) -> dict[str, Any]:
    """`params` (a nested tree without a prompt) plus the prompt table `value`, as float32."""
    return {**params, SCOPE: {PARAM: jnp.asarray(value, jnp.float32)}}


def without_prompt(params: Mapping[str, Any]) -> dict[str, Any]:
    """`params` minus the prompt scope."""
    return {k: v for k, v in params.items() if k != SCOPE}


def prompt_value(params: Mapping[str, Any]) -> np.ndarray:
    """The prompt table of a nested tree or of a '/'-joined flat dict, as host float32."""
    value = params[PATH] if PATH in params else params[SCOPE][PARAM]
    return np.asarray(jax.device_get(value), np.float32)


def is_prompt_path(path: str) -> bool:
    """Whether a '/'-joined parameter path belongs to the combiner."""
    return path == SCOPE or path.startswith(SCOPE + "/")
