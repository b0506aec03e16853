"""A frozen model with a prompt at its seam: built for training (a fresh prompt from the
initializer) or for using one (a prompt array from a file, a run or a checkpoint)."""

from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning import errors
from prompt_tuning.model import Transformer
from prompt_tuning.prompts import Prompt, PromptConfig, PromptTable, seam
from prompt_tuning.prompts.bank import PromptBank
from prompt_tuning.prompts.padded_table import PaddedPromptTable
from prompt_tuning.runtime.frozen_model import FrozenModel

PyTree = Any


def model_for_training(frozen: FrozenModel, prompt_config: PromptConfig,
                       num_prompts: Optional[int] = None) -> Transformer:
    """The frozen architecture with `prompt_config`'s prompt module at the seam (a table of
    `num_prompts` prompts for a multi-task run)."""
    return seam.prompted_model(frozen.config, prompt_config.combiner(num_prompts=num_prompts))


def init_prompt(prompt_config: PromptConfig, frozen: FrozenModel, rng: jax.Array,
                num_prompts: Optional[int] = None) -> dict[str, jax.Array]:
    """`{seam.PATH: [P, embed] float32}` (or `[num_prompts, P, embed]`): a fresh prompt,
    without initialising the model.

    The initializer gets what it asks of the frozen model (its embedding table, vocabulary).
    """
    init = prompt_config.initializer({"embedding": lambda: frozen.embedding,
                                      "vocabulary": lambda: frozen.vocabulary})
    module = prompt_config.combiner(init, num_prompts)
    dummy = jnp.zeros((1, 1, frozen.config.emb_dim), jnp.float32)
    ids = None if num_prompts is None else jnp.zeros((1,), jnp.int32)
    variables = module.init(rng, dummy, jnp.ones((1, 1), bool), ids)
    value = variables["params"][seam.PARAM]
    value = value.unbox() if hasattr(value, "unbox") else value
    expected = ((prompt_config.length, frozen.config.emb_dim) if num_prompts is None
                else (num_prompts, prompt_config.length, frozen.config.emb_dim))
    if tuple(value.shape) != expected:
        raise errors.UsageError(f"The prompt initializer gave shape {tuple(value.shape)}, "
                                f"expected {expected} (PROMPT_LENGTH, the model's width).")
    return {seam.PATH: jnp.asarray(value, jnp.float32)}


def check_prompt_width(prompt: np.ndarray, frozen: FrozenModel, source: str) -> None:
    """The prompt must be `[P, d]` (or a table `[n, P, d]`) with the model's width d."""
    if prompt.ndim not in (2, 3) or prompt.shape[-1] != frozen.config.emb_dim:
        raise errors.PromptFileError(
            f"{source}: a prompt of shape {tuple(prompt.shape)} does not fit the model: expected "
            f"[P, {frozen.config.emb_dim}] (the model's embedding width).")


def with_prompt(frozen: FrozenModel, prompt: np.ndarray, source: str = "the prompt"
                ) -> tuple[Transformer, PyTree]:
    """(model, params) that use `prompt`: `[P, embed]` alone, or a table `[n, P, embed]`
    whose rows the batches pick with `prompt_ids`."""
    check_prompt_width(prompt, frozen, source)
    combiner = (Prompt(int(prompt.shape[0])) if prompt.ndim == 2
                else PromptTable(int(prompt.shape[0]), int(prompt.shape[1])))
    return (seam.prompted_model(frozen.config, combiner),
            seam.with_prompt(frozen.params, prompt))


def with_prompts(frozen: FrozenModel, bank: PromptBank, capacity: Optional[int] = None,
                 length: Optional[int] = None) -> tuple[Transformer, PyTree]:
    """(model, params) that serve every prompt of `bank` in one batch: each example picks its
    prompt with `prompt_ids` (`bank.ids(names)`); prompts of different lengths are padded
    (`PaddedPromptTable`). `capacity`, `length`: see `PromptBank.table`."""
    if bank.width != frozen.config.emb_dim:
        raise errors.PromptFileError(f"The prompts are {bank.width} wide; the model's embeddings "
                                     f"are {frozen.config.emb_dim}.")
    values, lengths = bank.table(capacity, length)
    return (seam.prompted_model(frozen.config, PaddedPromptTable(lengths, values.shape[1])),
            seam.with_prompt(frozen.params, values))


def without_prompt(frozen: FrozenModel) -> tuple[Transformer, PyTree]:
    """(model, params) of the frozen model alone."""
    return seam.prompted_model(frozen.config, None), frozen.params
