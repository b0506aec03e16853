"""MULTI_TASK: one prompt per task of a mixture, trained together on mixed batches.

The mixture `taskless_builtin_mixture` asks the sentiment and the topic of the same taskless
sentences, so one prompt cannot serve both: only a run whose examples reach their own task's
prompt gets both right. Each prompt then exports on its own and evaluates on its task as the run
recorded, and each is wrong for the other task.
"""

from __future__ import annotations

import json

import pytest

from tests.launch import runner, tiny_run

MIXTURE = "taskless_builtin_mixture"
TASKS = ("taskless_builtin_sentiment", "taskless_builtin_topic")


def _train(model_dir: str, *extra: str) -> runner.Result:
    flags = [f for f in tiny_run.train_flags(model_dir, train_steps=60)
             if "MIXTURE_OR_TASK_NAME" not in f and "EVAL_PERIOD" not in f]
    return runner.run_in_process("prompt_tuning.train", *flags,
                                 f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
                                 "--gin.EVAL_PERIOD=30", *extra)


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> str:
    model_dir = str(tmp_path_factory.mktemp("multitask") / "run")
    result = _train(model_dir, "--gin.MULTI_TASK=True")
    assert result.returncode == 0, result.stderr
    return model_dir




def test_each_task_learns_its_own_prompt(run, tmp_path):
    exported = {}
    for task in TASKS:
        path = str(tmp_path / f"{task}.npy")
        result = runner.run_in_process("prompt_tuning.export_prompt", f"--model_dir={run}",
                                       f"--task={task}", f"--output={path}")
        assert result.returncode == 0, result.stderr
        with open(path[:-4] + ".json") as f:
            metadata = json.load(f)
        assert metadata["task"] == task and metadata["prompt_length"] == tiny_run.PROMPT_LENGTH
        recorded = metadata["dev_metrics"][task]["accuracy"]
        assert recorded >= 90.0  # both tasks right on the same inputs: the prompts route
        exported[task] = (path, recorded)
    for task, (path, recorded) in exported.items():
        for asked in TASKS:
            accuracy = _evaluate(tmp_path / f"eval_{task}_{asked}", asked,
                                 f"--gin.PROMPT_FILE='{path}'")[asked]["accuracy"]
            if asked == task:  # the exported prompt alone scores what the run recorded
                assert accuracy == pytest.approx(recorded)
            else:  # and is no prompt for the other task
                assert accuracy < 50.0


def _evaluate(output, task: str, prompt_flag: str) -> dict:
    """`eval` of `task` (a task or mixture) with the prompt `prompt_flag` names: its metrics."""
    flags = [f for f in tiny_run.eval_flags(str(output)) if "MIXTURE_OR_TASK" not in f]
    result = runner.run_in_process("prompt_tuning.eval", *flags,
                                   f"--gin.MIXTURE_OR_TASK_NAME='{task}'", prompt_flag)
    assert result.returncode == 0, result.stderr
    with open(output / "eval_results.json") as f:
        return json.load(f)["metrics"]


def test_a_multi_task_run_exports_one_named_prompt_at_a_time(run, tmp_path):
    result = runner.run_in_process("prompt_tuning.export_prompt", f"--model_dir={run}",
                                   f"--output={tmp_path / 'p.npy'}")
    assert result.returncode == 1
    assert result.stderr == (f"error: {run} trained 2 prompts, one per task "
                             f"({list(TASKS)}): choose one (export_prompt --task=NAME).\n")
    result = runner.run_in_process("prompt_tuning.export_prompt", f"--model_dir={run}",
                                   "--task=taskless_builtin_sentimen",
                                   f"--output={tmp_path / 'p.npy'}")
    assert "'taskless_builtin_sentimen' is not one of them" in result.stderr
    assert not (tmp_path / "p.npy").exists()


def test_multi_task_needs_a_mixture_of_several_tasks(tmp_path):
    flags = tiny_run.train_flags(str(tmp_path / "run"), train_steps=2)
    result = runner.run_in_process("prompt_tuning.train", *flags, "--gin.MULTI_TASK=True")
    assert result.returncode == 2
    assert result.stderr.endswith("error: MULTI_TASK trains one prompt per task of a mixture; "
                                  "'taskless_builtin_topic' has 1 task(s) with a 'train' "
                                  "split.\n")
    assert not (tmp_path / "run").exists()


def test_each_task_keeps_the_prompt_of_its_own_best_evaluation():
    import numpy as np

    from prompt_tuning.evaluation.evaluator import selection_score
    from prompt_tuning.training import selection

    tasks = ["a", "b"]
    record: dict = {}
    first = np.stack([np.full((2, 3), 1.0), np.full((2, 3), 2.0)]).astype(np.float32)
    best, info = selection.update_per_task(record, tasks, {"a": {"acc": 50.0}, "b": {"acc": 10.0}},
                                           5, first, None, selection_score)
    np.testing.assert_array_equal(best, first)
    # At step 10 only b improves: row b comes from step 10, row a stays from step 5.
    second = first + 10.0
    best, info = selection.update_per_task(record, tasks, {"a": {"acc": 40.0}, "b": {"acc": 30.0}},
                                           10, second, best, selection_score)
    np.testing.assert_array_equal(best[0], first[0])
    np.testing.assert_array_equal(best[1], second[1])
    assert info == {"score": 40.0, "metrics": {"a": {"acc": 50.0}, "b": {"acc": 30.0}},
                    "steps": {"a": 5, "b": 10}}
    assert (record["best_score"], record["best_step"]) == (40.0, 10)
    # Nothing improves: nothing to save.
    assert selection.update_per_task(record, tasks, {"a": {"acc": 1.0}, "b": {"acc": 1.0}}, 15,
                                     second, best, selection_score) is None


def test_eval_and_infer_from_the_run_use_each_tasks_prompt(run, tmp_path):
    metrics = _evaluate(tmp_path / "eval", MIXTURE, f"--gin.MODEL_DIR='{run}'")
    assert set(metrics) == set(TASKS) and all(m["accuracy"] >= 90.0 for m in metrics.values())

    predictions = tmp_path / "predictions.jsonl"
    flags = [f for f in tiny_run.infer_flags(str(predictions)) if "MIXTURE_OR_TASK" not in f]
    result = runner.run_in_process("prompt_tuning.infer", *flags,
                                   f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
                                   f"--gin.MODEL_DIR='{run}'", "--gin.SPLIT='validation'",
                                   "--gin.NUM_EXAMPLES=32")
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in predictions.read_text().splitlines()]
    # The same taskless sentences are asked for their sentiment and for their topic; each gets
    # its own task's answer.
    right = [r["prediction"] == r["targets"] for r in rows]
    assert len(rows) == 32 and sum(right) >= 28
    assert {r["targets"] for r in rows} & {"positive", "negative"}
    assert {r["targets"] for r in rows} & {"food", "music", "sports", "travel"}


def test_task_prompt_files_serve_a_mixture_as_the_run_does(run, tmp_path):
    files = {}
    for task in reversed(TASKS):  # another order than the mixture's
        files[task] = str(tmp_path / f"{task}.npy")
        assert runner.run_in_process("prompt_tuning.export_prompt", f"--model_dir={run}",
                                     f"--task={task}", f"--output={files[task]}"
                                     ).returncode == 0
    outputs = {}
    for name, source in (("run", f"--gin.MODEL_DIR='{run}'"),
                         ("files", f"--gin.TASK_PROMPT_FILES={files!r}")):
        outputs[name] = tmp_path / f"{name}.jsonl"
        flags = [f for f in tiny_run.infer_flags(str(outputs[name]))
                 if "MIXTURE_OR_TASK" not in f]
        result = runner.run_in_process("prompt_tuning.infer", *flags, source,
                                       f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'",
                                       "--gin.SPLIT='validation'", "--gin.NUM_EXAMPLES=16")
        assert result.returncode == 0, result.stderr
    assert outputs["run"].read_text() == outputs["files"].read_text()

    one = {TASKS[0]: files[TASKS[0]]}
    flags = [f for f in tiny_run.infer_flags(str(tmp_path / "x.jsonl"))
             if "MIXTURE_OR_TASK" not in f]
    result = runner.run_in_process("prompt_tuning.infer", *flags,
                                   f"--gin.TASK_PROMPT_FILES={one!r}",
                                   f"--gin.MIXTURE_OR_TASK_NAME='{MIXTURE}'")
    assert (result.returncode, result.stderr) == (
        2, f"error: TASK_PROMPT_FILES has no prompt for task '{TASKS[1]}' of '{MIXTURE}'; it "
           f"names ['{TASKS[0]}'].\n")
