"""A tiny T5 1.1 and its random parameters, shared by the checkpoint tests."""

from __future__ import annotations

from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from prompt_tuning.model import T5Config, init_params

CONFIG = T5Config(vocab_size=128, emb_dim=32, num_heads=2, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=64)
PROMPT_LENGTH = 5


def random_params(config: T5Config = CONFIG, seed: int = 0,
                  bfloat16: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """{'/'-joined path: distinct random values} with the model's paths and shapes.

    Paths containing one of `bfloat16` are stored in bfloat16, the rest in float32.
    """
    shapes = traverse_util.flatten_dict(init_params(config, jax.random.PRNGKey(0)), sep="/")
    rng = np.random.default_rng(seed)
    flat = {}
    for path, value in shapes.items():
        array = rng.normal(size=value.shape).astype(np.float32)
        if any(part in path for part in bfloat16):
            array = array.astype(jnp.bfloat16)
        flat[path] = array
    return flat


def random_prompt(config: T5Config = CONFIG, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, (PROMPT_LENGTH, config.emb_dim)
                                               ).astype(np.float32)


def flat(params: Any) -> dict[str, Any]:
    return traverse_util.flatten_dict(dict(params), sep="/")


def nested(flat_dict: Mapping[str, Any]) -> dict[str, Any]:
    return traverse_util.unflatten_dict(dict(flat_dict), sep="/")


def assert_params_equal(params: Any, expected: Mapping[str, np.ndarray]) -> None:
    """Same paths, dtypes and bit-identical values."""
    got = flat(params)
    assert sorted(got) == sorted(expected)
    for path, value in expected.items():
        assert isinstance(got[path], jax.Array), path
        assert got[path].dtype == value.dtype, (path, got[path].dtype, value.dtype)
        np.testing.assert_array_equal(np.asarray(got[path]), value, err_msg=path)
