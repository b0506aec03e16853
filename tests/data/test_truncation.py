"""TASK_FEATURE_LENGTHS shorter than the data: the examples cut are counted where the tasks cut
them, and train, eval and infer each say so in one `note:` line."""

from __future__ import annotations

import re

import numpy as np
import pytest

from prompt_tuning.data import pipeline, truncation
from prompt_tuning.data.tensorflow_quiet import seqio
from tests.launch import runner, tiny_run

TASK = "taskless_builtin_topic"  # inputs of 14 to 29 tokens (with EOS), targets of 2


def _untrimmed_lengths(split: str) -> np.ndarray:
    """[examples, 2]: each example's inputs and targets length with EOS, nothing cut."""
    task = seqio.get_mixture_or_task(TASK)
    return np.array([(len(e["inputs"]), len(e["targets"])) for e in
                     task.get_dataset(None, split=split, shuffle=False).as_numpy_iterator()])


@pytest.mark.parametrize("lengths", [{"inputs": 17, "targets": 1}, {"inputs": 32, "targets": 4}])
def test_counts_what_is_cut_and_changes_no_example(lengths):
    config = pipeline.DatasetConfig(TASK, lengths, split="validation", batch_size=16,
                                    shuffle=False)
    with truncation.counting(truncation.Truncation()) as cut:
        counted = list(pipeline.get_dataset(config, num_epochs=1).as_numpy_iterator())
    plain = list(pipeline.get_dataset(config, num_epochs=1).as_numpy_iterator())
    assert len(counted) == len(plain)
    for a, b in zip(counted, plain):
        assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    full = _untrimmed_lengths("validation")
    assert cut.counts() == {"examples": len(full),
                            "inputs": int(np.sum(full[:, 0] > lengths["inputs"])),
                            "targets": int(np.sum(full[:, 1] > lengths["targets"]))}
    if lengths["inputs"] == 17:
        assert 0 < cut.counts()["inputs"] < len(full) and cut.counts()["targets"] == len(full)


NOTE = (r"note: TASK_FEATURE_LENGTHS cut the inputs of (\d+) and the targets of 0 of the (\d+) "
        r"{what} examples read \(inputs 16, targets 4 tokens\); raise them to keep whole "
        r"examples\.")
SHORT = "--gin.TASK_FEATURE_LENGTHS={'inputs': 16, 'targets': 4}"


def _noted(stderr: str, what: str) -> tuple[int, int]:
    found = re.findall(NOTE.format(what=re.escape(what)), stderr)
    assert len(found) == 1, stderr  # once per run
    cut, read = map(int, found[0])
    assert 0 < cut <= read, stderr
    return cut, read


@pytest.mark.slow
def test_train_eval_and_infer_each_say_how_many_were_cut(tmp_path):
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, np.zeros((tiny_run.PROMPT_LENGTH, tiny_run.EMBED_DIM), np.float32))
    train = runner.run_in_process("prompt_tuning.train", *tiny_run.train_flags(
        str(tmp_path / "run"), SHORT, train_steps=1))
    assert train.returncode == 0, train.stderr
    _noted(train.stderr, "training")
    _noted(train.stderr, f"{TASK} validation")  # the run's dev-set evaluation

    evaluation = runner.run_in_process("prompt_tuning.eval", *tiny_run.eval_flags(
        str(tmp_path / "eval"), SHORT, f"--gin.PROMPT_FILE='{prompt}'"))
    assert evaluation.returncode == 0, evaluation.stderr
    _noted(evaluation.stderr, f"{TASK} validation")

    infer = runner.run_in_process("prompt_tuning.infer", *tiny_run.infer_flags(
        str(tmp_path / "out.jsonl"), SHORT, f"--gin.PROMPT_FILE='{prompt}'",
        "--gin.SPLIT='test'"))
    assert infer.returncode == 0, infer.stderr
    full = _untrimmed_lengths("test")
    assert _noted(infer.stderr, "test") == (int(np.sum(full[:, 0] > 16)), len(full))
