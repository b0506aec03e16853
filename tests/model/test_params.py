"""Describing a model's parameters without allocating them."""

import jax
from flax import traverse_util
from jax.sharding import PartitionSpec as P

from prompt_tuning.model import T5Config, Transformer, abstract_params, init_params
from prompt_tuning.model.params import logical_axes
from prompt_tuning.prompts import Prompt

CONFIG = T5Config(vocab_size=64, emb_dim=16, num_heads=2, num_encoder_layers=1,
                  num_decoder_layers=1, head_dim=8, mlp_dim=32)


def test_abstract_params_match_real_ones_for_a_config_and_a_module():
    real = traverse_util.flatten_dict(init_params(CONFIG, jax.random.PRNGKey(0)), sep="/")
    for source in (CONFIG, Transformer(CONFIG)):
        abstract = traverse_util.flatten_dict(abstract_params(source), sep="/")
        assert {k: (v.shape, v.dtype) for k, v in abstract.items()} == {
            k: (v.shape, v.dtype) for k, v in real.items()}
        assert all(isinstance(v, jax.ShapeDtypeStruct) for v in abstract.values())


def test_logical_axes_of_model_and_prompt():
    axes = traverse_util.flatten_dict(logical_axes(Transformer(CONFIG, prompt=Prompt(3))), sep="/")
    assert axes["token_embedder/embedding"] == P("vocab", "embed")
    assert axes["encoder/layers_0/mlp/wi_0/kernel"] == P("embed", "mlp")
    assert axes["prompt/prompt"] == P("prompt", "prompt_embed")
