"""A batch that mixes prompts of different lengths gives every example what its own prompt gives
it alone, unpadded: scores and generated tokens, prefix and suffix placements.

Tolerance: 2e-5 on log-likelihoods (float32; the padded program sums attention over more,
masked, keys, so the reductions differ in order only), exact on greedy tokens.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest

from prompt_tuning import decoding, errors, runtime
from prompt_tuning.prompts import PaddedPromptTable, Prompt, PromptBank, placements, seam
from prompt_tuning.scoring.batches import make_batch
from prompt_tuning.scoring.examples import Example

LENGTHS = {"short": 3, "mid": 7, "long": 12}


@pytest.fixture(scope="module")
def frozen():
    return runtime.load_frozen_model(runtime.ModelConfig("builtin:tiny_t5"))


def _bank(frozen) -> PromptBank:
    bank = PromptBank(frozen.config.emb_dim)
    rng = np.random.default_rng(0)
    for name, length in LENGTHS.items():
        # Rows near real token embeddings, so the prompts steer the tiny model somewhere.
        rows = frozen.embedding[rng.integers(3, 3000, size=length)]
        bank.add(name, rows + rng.normal(0, 0.1, rows.shape).astype(np.float32))
    return bank


def _examples(frozen):
    vocabulary = frozen.vocabulary
    texts = ["sentence: the soup was cold", "sentence: a long flight home",
             "sentence: the band played all night and we loved it", "sentence: ok",
             "sentence: rain again on the hiking trip", "sentence: the striker scored twice"]
    targets = ["negative", "travel", "music", "positive", "travel", "sports"]
    return [Example(list(vocabulary.encode(t)) + [1], list(vocabulary.encode(y)) + [1], i)
            for i, (t, y) in enumerate(zip(texts, targets))]


NAMES = ["long", "short", "mid", "short", "long", "mid"]


def _single(frozen, prompt, placement):
    return (seam.prompted_model(frozen.config, Prompt(prompt.shape[0], placement=placement)),
            seam.with_prompt(frozen.params, prompt))


@pytest.mark.parametrize("placement", [placements.prefix, placements.suffix])
def test_mixed_batch_scores_equal_each_prompt_alone(frozen, placement):
    bank, examples = _bank(frozen), _examples(frozen)
    values, lengths = bank.table(capacity=4, length=16)  # padded beyond the longest, too
    model = seam.prompted_model(frozen.config, PaddedPromptTable(lengths, values.shape[1], placement=placement))
    params = seam.with_prompt(frozen.params, values)
    batch = {**make_batch(examples, len(examples)), "prompt_ids": bank.ids(NAMES)}
    mixed = jax.jit(runtime.make_score_step(model))(params, batch)
    for i, (example, name) in enumerate(zip(examples, NAMES)):
        alone_model, alone_params = _single(frozen, bank.get(name), placement)
        # The same row, padded as in the mixed batch (a suffix prompt sits after the padding).
        row = {k: v[i:i + 1] for k, v in batch.items() if k != "prompt_ids"}
        alone = jax.jit(runtime.make_score_step(alone_model))(alone_params, row)
        np.testing.assert_allclose(mixed["log_likelihood"][i], alone["log_likelihood"][0],
                                   atol=2e-5, rtol=0)
        n = len(example.targets)
        np.testing.assert_allclose(mixed["token_log_probs"][i][:n],
                                   alone["token_log_probs"][0][:n], atol=2e-5, rtol=0)
    # The prompts matter: the same example scores differently under two prompts.
    assert not np.allclose(mixed["log_likelihood"][1], mixed["log_likelihood"][0])


def test_mixed_batch_generates_what_each_prompt_generates_alone(frozen):
    bank, examples = _bank(frozen), _examples(frozen)
    model, params = runtime.with_prompts(frozen, bank)
    greedy = decoding.DecodingConfig("greedy")
    generate = jax.jit(functools.partial(decoding.generate, decoding=greedy, max_decode_length=6,
                                         eos_id=1), static_argnums=0)
    tokens = make_batch(examples, len(examples))["encoder_input_tokens"]
    mixed = np.asarray(generate(model, params, tokens, prompt_ids=bank.ids(NAMES)))
    outputs = set()
    for i, name in enumerate(NAMES):
        alone_model, alone_params = _single(frozen, bank.get(name), placements.prefix)
        alone = np.asarray(generate(alone_model, alone_params, tokens[i:i + 1]))
        np.testing.assert_array_equal(mixed[i], alone[0])
        outputs.add(tuple(alone[0]))
    assert len(outputs) > 1


def test_bank_mistakes_are_one_line(frozen):
    bank = _bank(frozen)
    with pytest.raises(errors.UsageError, match=r"^Unknown prompt 'shortt'; registered: "
                                                r"\['short', 'mid', 'long'\]\. Did you mean "
                                                r"'short'\?$"):
        bank.ids(["shortt"])
    with pytest.raises(errors.PromptFileError, match=r"a prompt of shape \[4, 32\] does not fit "
                                                     r"the model: expected \[P, 64\]"):
        bank.add("narrow", np.zeros((4, 32), np.float32), "narrow.npy")
    with pytest.raises(errors.UsageError, match="A prompt name must be non-empty"):
        bank.add(" ", np.zeros((4, 64), np.float32))
    with pytest.raises(errors.UsageError, match="No prompt is registered"):
        PromptBank(64).table()
