"""What a run is made of: the frozen model (from a checkpoint) and the prompt (from an initializer).

Shared by train, eval, infer and score, so each reads its frozen model and builds its prompt
the same way.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from typing import Any, Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning.model import T5Config, Transformer
from prompt_tuning.prompts import Prompt

PyTree = Any
InitFactory = Callable[..., Callable]


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The frozen model.

    Attributes:
      initial_checkpoint_path: a T5X, orbax (ours) or Hugging Face checkpoint.
      architecture: the expected architecture (from a size gin file); the checkpoint must match
        it. None: take it from the checkpoint.
      vocabulary_path: SentencePiece model; None: the T5 vocabulary shipped with the package.
      dtype: activation dtype ("bfloat16" on accelerators).
      dropout_rate: used while training.
      max_input_length: the longest encoder input accepted, prompt included (T5 was
        pre-trained on 512; relative positions past 128 share one bucket).
    """

    initial_checkpoint_path: str
    architecture: Optional[T5Config] = None
    vocabulary_path: Optional[str] = None
    dtype: str = "float32"
    dropout_rate: float = 0.1
    max_input_length: int = 2048


@dataclasses.dataclass(frozen=True)
class PromptConfig:
    """The soft prompt.

    Attributes:
      length: P.
      init: a factory returning a Flax initializer, e.g. `initializers.from_sampled_vocab`
        (gin: `PromptConfig.init = @initializers.from_sampled_vocab`). Arguments named
        `embedding` or `vocabulary` that the factory accepts and gin left unbound are filled with
        the frozen model's embedding table `[vocab, embed]` and vocabulary. None: U[-0.5, 0.5].
      trainable: regexes over parameter paths that train (default: the prompt only).
    """

    length: int = 100
    init: Optional[InitFactory] = None
    trainable: Sequence[str] = ("prompt/.*",)

    def __post_init__(self):
        if not isinstance(self.length, int) or isinstance(self.length, bool) or self.length <= 0:
            raise ValueError(f"PROMPT_LENGTH must be a positive integer, got {self.length!r}.")


@dataclasses.dataclass
class FrozenModel:
    config: T5Config
    params: PyTree
    vocabulary: Any
    checkpoint_format: str

    @property
    def embedding(self) -> np.ndarray:
        return np.asarray(jax.device_get(self.params["token_embedder"]["embedding"]))


BUILTIN_PREFIX = "builtin:"
ASSETS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "assets")


def resolve_checkpoint_path(path: str) -> str:
    """`builtin:NAME` names a checkpoint shipped in prompt_tuning/assets/ (e.g. `builtin:tiny_t5`)."""
    if isinstance(path, str) and path.startswith(BUILTIN_PREFIX):
        name = path[len(BUILTIN_PREFIX):]
        resolved = os.path.join(ASSETS_DIR, name)
        if not name or not os.path.isdir(resolved):
            shipped = sorted(d for d in os.listdir(ASSETS_DIR)
                             if os.path.isdir(os.path.join(ASSETS_DIR, d)) and d != "vocab")
            raise ValueError(f"No built-in checkpoint {path!r}; shipped: {shipped}.")
        return resolved
    return path


def check_input_length(model_config: ModelConfig, prompt_length: int, inputs_length: int) -> None:
    """The encoder sees P + inputs positions; refuse more than the model accepts."""
    total = prompt_length + inputs_length
    if total > model_config.max_input_length:
        raise ValueError(f"PROMPT_LENGTH {prompt_length} + inputs length {inputs_length} = {total} "
                         "is longer than the model accepts (max_input_length "
                         f"{model_config.max_input_length}).")


def load_frozen_model(model_config: ModelConfig, shardings: Optional[PyTree] = None
                      ) -> FrozenModel:
    """Reads the checkpoint (checked against `architecture`) and the vocabulary."""
    from prompt_tuning import checkpoints  # pylint: disable=import-outside-toplevel
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel

    loaded = checkpoints.load_checkpoint(resolve_checkpoint_path(model_config.initial_checkpoint_path),
                                         config=model_config.architecture, shardings=shardings)
    config = loaded.config.replace(dtype=model_config.dtype,
                                   dropout_rate=model_config.dropout_rate)
    vocabulary = vocab.get_vocabulary(model_config.vocabulary_path)
    vocab.check_vocab_fits(vocabulary, config.vocab_size)
    return FrozenModel(config, loaded.params, vocabulary, loaded.format)


def make_model(frozen: FrozenModel, prompt_config: Optional[PromptConfig]) -> Transformer:
    if prompt_config is None:
        return Transformer(frozen.config)
    return Transformer(frozen.config, prompt=Prompt(prompt_config.length))


def resolve_initializer(factory: Optional[InitFactory], frozen: FrozenModel) -> Callable:
    """Calls the factory, filling `embedding`/`vocabulary` from the frozen model if it takes them."""
    if factory is None:
        from prompt_tuning.prompts import initializers  # pylint: disable=import-outside-toplevel
        factory = initializers.random_uniform
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        parameters = {}
    provided = {"embedding": lambda: frozen.embedding, "vocabulary": lambda: frozen.vocabulary}
    kwargs = {name: make() for name, make in provided.items()
              if name in parameters and parameters[name].default is inspect.Parameter.empty}
    return factory(**kwargs)


def init_prompt(prompt_config: PromptConfig, frozen: FrozenModel, rng: jax.Array
                ) -> dict[str, jax.Array]:
    """{"prompt/prompt": [P, embed] float32}: the prompt alone, without initialising the model."""
    init = resolve_initializer(prompt_config.init, frozen)
    module = Prompt(prompt_config.length, initializer=init)
    dummy = jnp.zeros((1, 1, frozen.config.emb_dim), jnp.float32)
    variables = module.init(rng, dummy, jnp.ones((1, 1), bool))
    value = variables["params"]["prompt"]
    value = value.unbox() if hasattr(value, "unbox") else value
    expected = (prompt_config.length, frozen.config.emb_dim)
    if tuple(value.shape) != expected:
        raise ValueError(f"The prompt initializer gave shape {tuple(value.shape)}, expected {expected}.")
    return {"prompt/prompt": jnp.asarray(value, jnp.float32)}
