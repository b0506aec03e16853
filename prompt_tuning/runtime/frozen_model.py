"""The frozen model of a run: which checkpoint, in which dtype, read onto which devices.

Shared by train, eval, infer and score, so each reads its frozen model the same way.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Optional

import jax
import numpy as np

from prompt_tuning import errors, paths
from prompt_tuning.model import T5Config, compute_params
from prompt_tuning.model.config import DTYPES, REMAT_POLICIES

PyTree = Any


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The frozen model.

    Attributes:
      initial_checkpoint_path: a T5X, orbax (ours) or Hugging Face checkpoint, or a built-in one
        (`builtin:tiny_t5`). A relative path is resolved against the working directory.
      architecture: the expected architecture (from a size gin file); the checkpoint must match
        it. None: take it from the checkpoint.
      vocabulary_path: SentencePiece model; None: the T5 vocabulary shipped with the package.
      dtype: activation dtype ("bfloat16" on accelerators).
      dropout_rate: used while training.
      max_input_length: the longest encoder input accepted, prompt included (T5 was
        pre-trained on 512; relative positions past 128 share one bucket).
      remat_policy: what each layer keeps for the backward pass (`REMAT_POLICY`): "none",
        "minimal" (matmul outputs) or "full" (recompute all); memory against compute, same
        results.
      scan_layers: run the encoder and decoder layers each as one scan over stacked
        parameters (`SCAN_LAYERS`); with remat, the backward pass then keeps one activation
        per layer.
    """

    initial_checkpoint_path: str
    architecture: Optional[T5Config] = None
    vocabulary_path: Optional[str] = None
    dtype: str = "float32"
    dropout_rate: float = 0.1
    max_input_length: int = 2048
    remat_policy: str = "none"
    scan_layers: bool = False

    def __post_init__(self):
        if self.initial_checkpoint_path is None:  # neither macro (nor the field) was set
            raise errors.UsageError("required macro INITIAL_CHECKPOINT_PATH is not set: the "
                                    "frozen model's checkpoint (use "
                                    "--gin.INITIAL_CHECKPOINT_PATH=..., or T5X's "
                                    "--gin.CHECKPOINT_PATH=... for eval and infer)")
        if not isinstance(self.initial_checkpoint_path, str) or not self.initial_checkpoint_path:
            raise errors.UsageError(f"INITIAL_CHECKPOINT_PATH must be a checkpoint path, got "
                                    f"{self.initial_checkpoint_path!r}.")
        if self.architecture is not None and not isinstance(self.architecture, T5Config):
            raise errors.UsageError(f"ModelConfig.architecture must be a T5Config, got "
                                    f"{self.architecture!r}.")
        if self.dtype not in DTYPES:
            raise errors.UsageError(f"ACTIVATION_DTYPE must be one of {DTYPES}, got "
                                    f"{self.dtype!r}.")
        if isinstance(self.dropout_rate, bool) or not isinstance(
                self.dropout_rate, (int, float)) or not 0.0 <= self.dropout_rate < 1.0:
            raise errors.UsageError(f"DROPOUT_RATE must be in [0, 1), got {self.dropout_rate!r}.")
        if self.remat_policy not in REMAT_POLICIES:
            raise errors.UsageError(f"REMAT_POLICY must be one of {REMAT_POLICIES}, got "
                                    f"{self.remat_policy!r}.")
        if not isinstance(self.scan_layers, bool):
            raise errors.UsageError(f"SCAN_LAYERS must be True or False, got "
                                    f"{self.scan_layers!r}.")
        if not isinstance(self.max_input_length, int) or self.max_input_length <= 0:
            raise errors.UsageError(f"max_input_length must be a positive integer, got "
                                    f"{self.max_input_length!r}.")
        if self.vocabulary_path is not None and not isinstance(self.vocabulary_path, str):
            raise errors.UsageError(f"VOCABULARY_PATH must be a path or None, got "
                                    f"{self.vocabulary_path!r}.")
        object.__setattr__(self, "initial_checkpoint_path",
                           paths.resolve(self.initial_checkpoint_path))
        object.__setattr__(self, "vocabulary_path", paths.resolve(self.vocabulary_path))

    def runtime_config(self, architecture: T5Config) -> T5Config:
        """`architecture` with this run's dtype, dropout and rematerialisation."""
        return architecture.replace(dtype=self.dtype, dropout_rate=self.dropout_rate,
                                    remat_policy=self.remat_policy, scan_layers=self.scan_layers)

    def check_input_length(self, prompt_length: int, inputs_length: int) -> None:
        """The encoder sees P + inputs positions; refuses more than the model accepts."""
        total = prompt_length + inputs_length
        if total > self.max_input_length:
            raise errors.UsageError(
                f"PROMPT_LENGTH {prompt_length} + inputs length {inputs_length} = {total} is "
                f"longer than the model accepts (max_input_length {self.max_input_length}).")


@dataclasses.dataclass
class FrozenModel:
    """A loaded frozen model: its architecture (with the run's dtype and dropout), parameters
    (a nested tree with T5X names, on their shardings), vocabulary, and where it came from.
    `stored_prompt` is the `[P, embed]` prompt a prompt-tuning checkpoint carries, if any."""

    config: T5Config
    params: PyTree
    vocabulary: Any
    checkpoint_format: str
    step: Optional[int] = None
    stored_prompt: Optional[np.ndarray] = None

    @property
    def embedding(self) -> np.ndarray:
        """The input embedding table `[vocab, embed]` on the host."""
        return np.asarray(jax.device_get(self.params["token_embedder"]["embedding"]))


def load_frozen_model(model_config: ModelConfig, shardings: Optional[PyTree] = None,
                      check_vocabulary: bool = True, scanned_shardings: Optional[PyTree] = None,
                      compute_copy: bool = True) -> FrozenModel:
    """Reads the checkpoint (checked against `architecture`) and the vocabulary.

    Args:
      model_config: which model.
      shardings: None (default device), or a tree of shardings matching the checkpoint's
        per-layer parameters (read straight onto them).
      check_vocabulary: refuse a vocabulary with more ids than the model has embedding rows
        (False for callers that may never tokenize, e.g. scoring given token ids).
      scanned_shardings: with `scan_layers`, where the stacked parameters go (None: the default
        device).
      compute_copy: keep the matmul kernels in the run's activation dtype (`compute_params`);
        False for a caller that may train some of them (training casts its frozen rest).
    """
    from prompt_tuning import checkpoints  # pylint: disable=import-outside-toplevel
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel

    # The vocabulary is small and read first: a wrong VOCABULARY_PATH fails before a large read.
    vocabulary = vocab.get_vocabulary(model_config.vocabulary_path)
    loaded = checkpoints.load_checkpoint(model_config.initial_checkpoint_path,
                                         config=model_config.architecture, shardings=shardings)
    config = model_config.runtime_config(loaded.config)
    if check_vocabulary:
        vocab.check_vocab_fits(vocabulary, config.vocab_size)
    params = loaded.params
    if config.scan_layers:  # checkpoints hold T5X's per-layer names
        from prompt_tuning.model import scanned_params  # pylint: disable=import-outside-toplevel
        params = (scanned_params.stack_onto(params, config, scanned_shardings)
                  if scanned_shardings is not None
                  else scanned_params.stack_layers(params, config))
    stored_prompt, checkpoint_format, step = loaded.prompt, loaded.format, loaded.step
    del loaded  # so that compute_params frees each float32 kernel as it goes
    if compute_copy:
        params = compute_params(params, config)
    return FrozenModel(config, params, vocabulary, checkpoint_format, step, stored_prompt)
