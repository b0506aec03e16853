"""`eval` with ENSEMBLE_PROMPT_FILES: each prompt's metrics equal that prompt's own evaluation,
and the ensemble's equal the vote computed by hand from each prompt's own outputs: majority vote
over `infer`'s predictions (generate), the highest mean log-likelihood over the prompts from the
Python API's scores (rank). Its mistakes are one line each."""

from __future__ import annotations

import collections
import json

import numpy as np
import pytest

from prompt_tuning.data import tasks
from tests.launch import runner, tiny_run

NUM = 24
LENGTHS = (10, 6, 14)
LABELS = ("food", "music", "sports", "travel")


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> list[str]:
    from prompt_tuning import runtime
    embedding = runtime.load_frozen_model(runtime.ModelConfig("builtin:tiny_t5")).embedding
    directory = tmp_path_factory.mktemp("prompts")
    out = []
    for seed, length in enumerate(LENGTHS):
        rng = np.random.default_rng(seed)
        rows = embedding[rng.integers(3, 5000, length)] + rng.normal(0, 0.2, (length, 64))
        out.append(str(directory / f"p{seed}.npy"))
        np.save(out[-1], rows.astype(np.float32))
    return out


def _eval(tmp_path, name, *flags) -> dict:
    output = tmp_path / name
    result = runner.run_in_process("prompt_tuning.eval", *tiny_run.eval_flags(str(output)),
                                   f"--gin.eval_config.EvalConfig.num_examples={NUM}", *flags)
    assert result.returncode == 0, result.stderr
    return json.loads((output / "eval_results.json").read_text())


def _ensemble_flag(prompts) -> str:
    return f"--gin.ENSEMBLE_PROMPT_FILES={prompts!r}"


def _targets() -> list[str]:
    dataset = tasks.get_task_or_mixture(tiny_run.TASK).get_dataset(
        {"inputs": 32, "targets": 4}, split="validation", shuffle=False)
    return [ex["targets_pretokenized"].decode() for ex in dataset.take(NUM).as_numpy_iterator()]


def test_generate_ensemble_is_the_majority_vote_of_each_prompts_outputs(tmp_path, prompts):
    result = _eval(tmp_path, "ensemble", _ensemble_flag(prompts))
    outputs = []
    for i, path in enumerate(prompts):
        predictions = tmp_path / f"p{i}.jsonl"
        done = runner.run_in_process("prompt_tuning.infer", *tiny_run.infer_flags(
            str(predictions), f"--gin.PROMPT_FILE='{path}'", "--gin.SPLIT='validation'",
            f"--gin.NUM_EXAMPLES={NUM}"))
        assert done.returncode == 0, done.stderr
        outputs.append([json.loads(line)["prediction"]
                        for line in predictions.read_text().splitlines()])
        alone = _eval(tmp_path, f"alone{i}", f"--gin.PROMPT_FILE='{path}'")
        assert result["members"][path]["metrics"] == alone["metrics"]
    targets = _targets()
    votes = []
    for example in zip(*outputs):
        counts = collections.Counter(example)
        best = max(counts.values())
        votes.append(next(o for o in example if counts[o] == best))  # ties: earliest prompt
    assert any(len(set(example)) > 1 for example in zip(*outputs))  # the prompts disagree
    accuracy = 100.0 * np.mean([v == t for v, t in zip(votes, targets)])
    assert result["metrics"] == {tiny_run.TASK: {"accuracy": pytest.approx(accuracy)}}
    assert result["prompt"] == "ensemble of 3"


def test_rank_ensemble_takes_the_highest_mean_log_likelihood(tmp_path, prompts):
    from prompt_tuning.serving import MultiPromptModel

    result = _eval(tmp_path, "ensemble", _ensemble_flag(prompts), "--gin.EVAL_MODE='rank'")
    engine = MultiPromptModel.load("builtin:tiny_t5")
    for path in prompts:
        engine.register(path, path)
    dataset = tasks.get_task_or_mixture(tiny_run.TASK).get_dataset(
        {"inputs": 32, "targets": 4}, split="validation", shuffle=False)
    examples = list(dataset.take(NUM).as_numpy_iterator())
    requests = [(p, [int(t) for t in ex["inputs"]], label)
                for ex in examples for p in prompts for label in LABELS]
    loglik = np.array([r["log_likelihood"] for r in engine.score(requests)]).reshape(
        NUM, len(prompts), len(LABELS))
    for i, path in enumerate(prompts):
        member = np.mean([LABELS[j] == ex["targets_pretokenized"].decode()
                          for j, ex in zip(loglik[:, i].argmax(-1), examples)])
        assert result["members"][path]["metrics"][tiny_run.TASK]["accuracy"] == \
            pytest.approx(100.0 * member)
    chosen = loglik.mean(axis=1).argmax(-1)
    accuracy = 100.0 * np.mean([LABELS[j] == ex["targets_pretokenized"].decode()
                                for j, ex in zip(chosen, examples)])
    assert result["metrics"][tiny_run.TASK]["accuracy"] == pytest.approx(accuracy)


@pytest.mark.parametrize("flags, message", [
    (["--gin.ENSEMBLE_PROMPT_FILES=[]"], "ENSEMBLE_PROMPT_FILES is empty: give the prompt files "
                                         "to ensemble, e.g. ['a.npy', 'b.npy', 'c.npy']."),
    (["--gin.ENSEMBLE_PROMPT_FILES=['a.npy']", "--gin.PROMPT_FILE='b.npy'"],
     "give ENSEMBLE_PROMPT_FILES, or PROMPT_FILE or MODEL_DIR, not both."),
    (["--gin.ENSEMBLE_PROMPT_FILES='a.npy'"], "ENSEMBLE_PROMPT_FILES must be a list of prompt "
                                              "files, got 'a.npy'."),
])
def test_ensemble_mistakes_are_one_line(tmp_path, flags, message):
    output = tmp_path / "eval"
    result = runner.run_in_process("prompt_tuning.eval", *tiny_run.eval_flags(str(output)),
                                   *flags)
    assert (result.returncode, result.stderr) == (2, f"error: {message}\n")
    assert not output.exists()


def test_an_ensemble_prompt_of_another_width_is_one_line(tmp_path, prompts):
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((4, 32), np.float32))
    output = tmp_path / "eval"
    result = runner.run_in_process("prompt_tuning.eval", *tiny_run.eval_flags(str(output)),
                                   f"--gin.ENSEMBLE_PROMPT_FILES={[prompts[0], str(narrow)]!r}")
    assert result.returncode == 1
    assert result.stderr == (f"error: {narrow}: a prompt of shape [4, 32] does not fit the "
                             "model: expected [P, 64] (the model's embedding width).\n")
