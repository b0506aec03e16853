"""Our T5 1.1 against Hugging Face's torch T5 with the same weights, on a padded batch."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
import torch

from prompt_tuning.checkpoints import huggingface
from prompt_tuning.model import T5Config, Transformer
from tests import oracles


CONFIG = T5Config(vocab_size=128, emb_dim=64, num_heads=4, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=96, relpos_num_buckets=32,
                  relpos_max_distance=20)


def _padded_batch(rng):
    enc = rng.integers(2, CONFIG.vocab_size, size=(3, 40))
    dec_targets = rng.integers(2, CONFIG.vocab_size, size=(3, 7))
    for row, (n_in, n_out) in enumerate([(40, 7), (25, 4), (9, 2)]):
        enc[row, n_in:] = 0
        dec_targets[row, n_out:] = 0
    dec_inputs = np.concatenate([np.zeros((3, 1), int), dec_targets[:, :-1]], axis=1)
    return enc, dec_inputs, dec_targets


def test_logits_match_hugging_face_t5_on_padded_batch():
    hf_model = oracles.build_hf_t5(CONFIG, seed=1)
    flat = huggingface.hf_to_flat(oracles.hf_state_numpy(hf_model), CONFIG)
    params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v)
                                           for k, v in flat.items()})
    enc, dec_in, dec_out = _padded_batch(np.random.default_rng(0))

    ours = jax.jit(lambda p: Transformer(CONFIG).apply({"params": p}, enc, dec_in, dec_out))(params)
    with torch.no_grad():
        theirs = hf_model(input_ids=torch.tensor(enc), attention_mask=torch.tensor(enc > 0),
                          decoder_input_ids=torch.tensor(dec_in),
                          decoder_attention_mask=torch.tensor(dec_out > 0)).logits.numpy()
    valid = dec_out > 0
    assert ours.dtype == jnp.float32
    # Distances up to 39 reach the log-spaced buckets (max_distance 20), so bucketing is tested.
    np.testing.assert_allclose(np.asarray(ours)[valid], theirs[valid], atol=1e-4, rtol=0)
    assert np.abs(theirs[valid]).max() > 1.0  # the comparison is not between near-zero numbers


def test_parameter_names_and_shapes_are_t5x():
    flat = traverse_util.flatten_dict(
        jax.eval_shape(lambda: Transformer(CONFIG).init(
            jax.random.PRNGKey(0), jnp.ones((1, 3), jnp.int32), jnp.ones((1, 2), jnp.int32))
        )["params"], sep="/")
    shapes = {k: v.value.shape for k, v in flat.items()}
    assert shapes["token_embedder/embedding"] == (128, 64)
    assert shapes["encoder/layers_0/attention/query/kernel"] == (64, 64)
    assert shapes["encoder/layers_1/mlp/wi_1/kernel"] == (64, 96)
    assert shapes["encoder/relpos_bias/rel_embedding"] == (4, 32)
    assert shapes["decoder/layers_0/encoder_decoder_attention/out/kernel"] == (64, 64)
    assert shapes["decoder/logits_dense/kernel"] == (64, 128)
    assert flat["decoder/logits_dense/kernel"].names == ("embed", "vocab")
    assert flat["encoder/layers_0/mlp/wo/kernel"].names == ("mlp", "embed")
    assert {k for k, _, _ in huggingface.name_map(CONFIG)} == set(shapes)
