"""Our greedy decoding against Hugging Face `generate` on the same (random) T5 weights."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
import torch

from prompt_tuning.checkpoints import huggingface
from prompt_tuning.decoding import greedy_decode, make_cached_step, make_tokens_to_logits
from prompt_tuning.model import T5Config, Transformer
from tests import oracles


CONFIG = T5Config(vocab_size=32, emb_dim=32, num_heads=2, num_encoder_layers=2,
                  num_decoder_layers=2, head_dim=16, mlp_dim=64, relpos_num_buckets=16,
                  relpos_max_distance=20)
LENGTH = 10


@pytest.mark.parametrize("cached, length", [(False, LENGTH), (True, LENGTH), (True, 64)])
def test_greedy_matches_hugging_face_generate(cached, length):
    hf_model = oracles.build_hf_t5(CONFIG, seed=1)
    flat = huggingface.hf_to_flat(oracles.hf_state_numpy(hf_model), CONFIG)
    params = traverse_util.unflatten_dict({tuple(k.split("/")): jnp.asarray(v)
                                           for k, v in flat.items()})
    rng = np.random.default_rng(0)
    inputs = rng.integers(2, CONFIG.vocab_size, size=(8, 12))
    for row, n in enumerate([12, 12, 9, 7, 5, 12, 3, 10]):
        inputs[row, n:] = 0
    model = Transformer(CONFIG)

    @jax.jit
    def decode(params, inputs):
        encoded, mask = model.apply({"params": params}, inputs, method=Transformer.encode)
        if cached:
            fn, cache = make_cached_step(model, params, encoded, mask, length)
        else:
            fn, cache = make_tokens_to_logits(model, params, encoded, mask), None
        return greedy_decode(fn, 8, length, cache=cache)

    ours, log_probs = map(np.asarray, decode(params, jnp.asarray(inputs, jnp.int32)))
    with torch.no_grad():
        out = hf_model.generate(input_ids=torch.tensor(inputs),
                                attention_mask=torch.tensor(inputs > 0), num_beams=1,
                                do_sample=False, max_new_tokens=length, decoder_start_token_id=0,
                                eos_token_id=1, pad_token_id=0, output_scores=True,
                                return_dict_in_generate=True)
        theirs = out.sequences[:, 1:].numpy()  # drop the start token
        step_log_probs = hf_model.compute_transition_scores(out.sequences, out.scores,
                                                            normalize_logits=True).numpy()
    # HF stops when every row has ended; the rest is padding.
    theirs = np.pad(theirs, ((0, 0), (0, length - theirs.shape[1])))
    np.testing.assert_array_equal(ours, theirs)
    ended = (ours == 1).any(1)
    if length == LENGTH:
        assert ended.any() and not ended.all()  # rows with and without EOS
    else:
        assert (ours != 0).sum(1).max() > LENGTH  # long outputs, not only early EOS
    # Positions up to and including the first EOS (a 0 before EOS is a real token).
    generated = theirs[:, :step_log_probs.shape[1]]
    upto_eos = np.cumsum(generated == 1, axis=1) - (generated == 1) == 0
    their_log_probs = np.where(upto_eos, step_log_probs, 0).sum(1)
    np.testing.assert_allclose(log_probs, their_log_probs, rtol=1e-4, atol=1e-4)
