"""The task evaluator scores predictions of different lengths (as a real model's are) with the
task's own postprocessor and metric: seqio stacks a task's predictions into one array."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning.data import tasks, vocab
from prompt_tuning.data.tensorflow_quiet import seqio
from prompt_tuning.evaluation.evaluator import TaskEvaluator
from prompt_tuning.runtime import EvalConfig

TASK = "taskless_builtin_topic"
LENGTHS = {"inputs": 32, "targets": 8}
NUM = 12


def _row(vocabulary, text: str) -> np.ndarray:
    ids = list(vocabulary.encode(text)) + [vocabulary.eos_id]
    return np.array(ids + [0] * (LENGTHS["targets"] - len(ids)), np.int32)


def test_predictions_of_different_lengths_are_scored():
    vocabulary = vocab.get_vocabulary()
    # One token ("food") or several ("not a topic at all"), by the parity of the input ids' sum.
    food, other = _row(vocabulary, "food"), _row(vocabulary, "not a topic at all")
    assert (food != 0).sum() != (other != 0).sum()

    def make_predictor(task):
        def predict(params, batch):
            even = (batch["encoder_input_tokens"].sum(axis=1, keepdims=True) % 2) == 0
            return jnp.where(even, jnp.asarray(food)[None], jnp.asarray(other)[None])
        return predict

    config = EvalConfig(mixture_or_task_name=TASK, batch_size=5, num_examples=NUM)
    evaluator = TaskEvaluator(config, LENGTHS, make_predictor, vocabulary)
    metrics = evaluator.evaluate({})

    # By hand: the first NUM dev examples; "food" is right where it is the target.
    dataset = tasks.get_task_or_mixture(TASK).get_dataset(LENGTHS, split="validation",
                                                          shuffle=False)
    examples = list(dataset.take(NUM).as_numpy_iterator())
    even = [int(ex["inputs"].sum()) % 2 == 0 for ex in examples]
    assert 0 < sum(even) < NUM  # both lengths occur
    hits = [e and ex["targets_pretokenized"] == b"food" for e, ex in zip(even, examples)]
    assert metrics == {TASK: {"accuracy": pytest.approx(100.0 * sum(hits) / NUM)}}
    assert evaluator.samples == {}  # no `_examples` task, no text samples
    assert seqio.get_mixture_or_task(TASK)  # the registry was used, not a stand-in
