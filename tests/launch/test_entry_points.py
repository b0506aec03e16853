"""The real entry points, called as a user calls them, on the tiny built-in model (issue 6).

One training run of `python -m prompt_tuning.train` (tests/launch/tiny_run.py) is shared: its
MODEL_DIR, operative config and TensorBoard events are checked, then `eval`, `infer` and
`export_prompt` run on it in-process (the same `main` and error handling as the command line,
without paying TensorFlow's and JAX's imports again).
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np
import pytest

from tests.launch import runner, tiny_run
from tests.launch.tiny_run import EMBED_DIM, EVAL_PERIOD, PROMPT_LENGTH, TASK, TRAIN_STEPS

LABELS = {"food", "music", "sports", "travel"}
ACCURACY = f"{TASK}/accuracy"


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tiny_run.SharedRun:
    return tiny_run.shared_run(tmp_path_factory)


def read_events(directory: str) -> dict[str, dict[int, float]]:
    """{tag: {step: value}} of every TensorBoard event file in `directory`."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from tensorflow.core.util import event_pb2  # pylint: disable=import-outside-toplevel

    found: dict[str, dict[int, float]] = {}
    for path in glob.glob(os.path.join(directory, "events.out.tfevents.*")):
        for record in tf.data.TFRecordDataset(path):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                number = (float(tf.make_ndarray(value.tensor)) if value.HasField("tensor")
                          else value.simple_value)
                found.setdefault(value.tag, {})[event.step] = number
    return found


def run_ok(module: str, *args: str) -> runner.Result:
    result = runner.run_in_process(module, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def evaluate(output_dir: str, *flags: str) -> dict:
    run_ok("prompt_tuning.eval", *tiny_run.eval_flags(output_dir, *flags))
    with open(os.path.join(output_dir, "eval_results.json")) as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_train_writes_a_complete_run(run):
    files = set(os.listdir(run.model_dir))
    assert {"config.gin", "run.json", "checkpoints", "best", "train", "validation"} <= files
    steps = sorted(int(s) for s in os.listdir(os.path.join(run.model_dir, "checkpoints")))
    period = tiny_run.CHECKPOINT_PERIOD
    assert steps == list(range(TRAIN_STEPS - (tiny_run.KEEP - 1) * period, TRAIN_STEPS + 1, period))
    assert len(os.listdir(os.path.join(run.model_dir, "best"))) == 1
    assert "best dev score" in run.result.stdout
    assert "Traceback" not in run.result.stderr


@pytest.mark.slow
def test_operative_config_has_every_way_of_setting_values(run):
    with open(os.path.join(run.model_dir, "config.gin")) as f:
        config = f.read()
    assert f"EVAL_PERIOD = {EVAL_PERIOD}" in config           # user file via --gin_search_paths
    assert f"eval_config.EvalConfig.num_examples = {tiny_run.EVAL_EXAMPLES}" in config
    assert f"BATCH_SIZE = {tiny_run.BATCH_SIZE}" in config     # --gin_bindings
    assert f"TRAIN_STEPS = {TRAIN_STEPS}" in config            # --gin.NAME=VALUE
    assert f"PROMPT_LENGTH = {PROMPT_LENGTH}" in config
    assert "PromptConfig.init = @initializers.from_sampled_vocab" in config  # shipped configs/
    assert "model_config.t5_1_1.size = 'tiny'" in config     # the size file
    assert f"optim.AdafactorConfig.learning_rate = {tiny_run.LEARNING_RATE}" in config


@pytest.mark.slow
def test_tensorboard_has_training_and_every_eval_metric(run):
    train = read_events(os.path.join(run.model_dir, "train"))
    for tag in ("loss", "learning_rate", "steps_per_sec", "loss_per_token", "grad_norm"):
        assert set(train[tag]) == {10, 20}, tag
    assert all(v == pytest.approx(tiny_run.LEARNING_RATE) for v in train["learning_rate"].values())
    assert all(np.isfinite(v) and v > 0 for v in train["loss"].values())
    assert all(v > 0 for v in train["steps_per_sec"].values())

    validation = read_events(os.path.join(run.model_dir, "validation"))
    eval_steps = set(range(0, TRAIN_STEPS + 1, EVAL_PERIOD))
    assert set(validation[ACCURACY]) == eval_steps
    assert validation["selection_score"] == validation[ACCURACY]
    # The best prompt is the first step with the highest dev score, and best/ records it.
    accuracy = validation[ACCURACY]
    best_step = min(s for s in accuracy if accuracy[s] == max(accuracy.values()))
    best = run.best_info()
    assert best["step"] == best_step
    assert best["score"] == pytest.approx(accuracy[best_step])
    assert best["metrics"][TASK]["accuracy"] == pytest.approx(accuracy[best_step])


# --------------------------------------------------------------------------------------------
# eval, from a run and from an exported prompt
# --------------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("checkpoint_step", ["best", "latest", str(TRAIN_STEPS - 10)])
def test_eval_from_run_equals_what_training_recorded(run, tmp_path, checkpoint_step):
    result = evaluate(str(tmp_path), f"--gin.MODEL_DIR='{run.model_dir}'",
                      f"--gin.CHECKPOINT_STEP='{checkpoint_step}'")
    step = {"best": run.best_info()["step"], "latest": TRAIN_STEPS}.get(
        checkpoint_step, int(checkpoint_step) if checkpoint_step.isdigit() else None)
    recorded = read_events(os.path.join(run.model_dir, "validation"))[ACCURACY][step]
    assert result["prompt"] == f"{run.model_dir} step {step}"
    assert result["mode"] == "generate, greedy" and result["split"] == "validation"
    assert result["metrics"][TASK]["accuracy"] == pytest.approx(recorded)


@pytest.fixture(scope="module")
def exports(run, tmp_path_factory) -> dict[str, str]:
    """The shared run's prompt exported every way `export_prompt` offers."""
    out = tmp_path_factory.mktemp("exports")
    paths = {"best": str(out / "best.npy"), "latest": str(out / "latest.npy"),
             "15": str(out / "step15.npy"), "peft": str(out / "best_peft")}
    for step in ("best", "latest", "15"):
        run_ok("prompt_tuning.export_prompt", f"--model_dir={run.model_dir}", f"--step={step}",
               "--format=npy", f"--output={paths[step]}")
    run_ok("prompt_tuning.export_prompt", f"--model_dir={run.model_dir}", "--format=peft",
           f"--output={paths['peft']}")
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("source", ["best", "peft"])
def test_eval_from_exported_prompt_alone(run, exports, tmp_path, source):
    result = evaluate(str(tmp_path), f"--gin.PROMPT_FILE='{exports[source]}'")
    assert result["prompt"] == exports[source]
    assert result["metrics"][TASK]["accuracy"] == pytest.approx(run.best_info()["score"])


@pytest.mark.slow
@pytest.mark.parametrize("flags, mode", [(("--gin.DECODING='beam'",),
                                          "generate, beam search (4 beams, alpha 0.6)"),
                                         (("--gin.EVAL_MODE='rank'",), "rank")])
def test_eval_beam_search_and_rank_classification(exports, tmp_path, flags, mode):
    result = evaluate(str(tmp_path), f"--gin.PROMPT_FILE='{exports['best']}'", *flags)
    assert result["mode"] == mode
    accuracy = result["metrics"][TASK]["accuracy"]
    # The trained prompt solves the task (the untrained one scores ~25% on 4 classes).
    assert 50.0 <= accuracy <= 100.0


# --------------------------------------------------------------------------------------------
# infer
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", ["model_dir", "prompt_file"])
def test_infer_writes_jsonl_predictions(run, exports, tmp_path, source):
    output = tmp_path / "predictions" / "test.jsonl"
    prompt = (f"--gin.MODEL_DIR='{run.model_dir}'" if source == "model_dir"
              else f"--gin.PROMPT_FILE='{exports['best']}'")
    result = run_ok("prompt_tuning.infer", *tiny_run.infer_flags(
        str(output), "--gin.NUM_EXAMPLES=12", "--gin.INFER_BATCH_SIZE=8", prompt))
    assert f"wrote 12 predictions to {output} (greedy)" in result.stdout
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert len(lines) == 12
    for line in lines:
        assert set(line) == {"inputs", "prediction", "targets"}
        assert line["inputs"].startswith("sentence:") and line["targets"] in LABELS
    # Decoding is the same whether the prompt comes from the run or its export.
    assert sum(line["prediction"] == line["targets"] for line in lines) >= 6


# --------------------------------------------------------------------------------------------
# export_prompt
# --------------------------------------------------------------------------------------------

def _metadata(npy_path: str) -> dict:
    with open(npy_path[:-len(".npy")] + ".json") as f:
        return json.load(f)


@pytest.mark.slow
def test_export_npy_with_metadata(run, exports):
    best = run.best_info()
    for step, expected_step in (("best", best["step"]), ("latest", TRAIN_STEPS), ("15", 15)):
        prompt = np.load(exports[step])
        assert prompt.shape == (PROMPT_LENGTH, EMBED_DIM) and prompt.dtype == np.float32
        metadata = _metadata(exports[step])
        assert metadata["step"] == expected_step
        assert metadata["model"] == "builtin:tiny_t5" and metadata["task"] == TASK
        assert (metadata["prompt_length"], metadata["embed_dim"]) == (PROMPT_LENGTH, EMBED_DIM)
        assert metadata["dtype"] == "float32" and metadata["init"] == "from_sampled_vocab"
    assert _metadata(exports["best"])["dev_metric"] == pytest.approx(best["score"])
    # Training moved the prompt between steps 15 and 20; best is one of the saved steps' prompts.
    assert not np.array_equal(np.load(exports["15"]), np.load(exports["latest"]))


@pytest.mark.slow
def test_peft_export_loads_in_hugging_face_peft(exports, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # everything is local: nothing may be fetched
    import peft  # pylint: disable=import-outside-toplevel
    import transformers  # pylint: disable=import-outside-toplevel

    base = transformers.T5ForConditionalGeneration.from_pretrained(tiny_run.TINY_T5_DIR)
    model = peft.PeftModel.from_pretrained(base, exports["peft"])
    loaded = model.prompt_encoder["default"].embedding.weight.detach().numpy()
    np.testing.assert_array_equal(loaded, np.load(exports["best"]))
    assert model.peft_config["default"].num_virtual_tokens == PROMPT_LENGTH


def test_convert_npy_to_peft_and_back(exports, tmp_path):
    peft_dir, back = str(tmp_path / "converted_peft"), str(tmp_path / "back.npy")
    run_ok("prompt_tuning.export_prompt", f"--prompt={exports['best']}", "--format=peft",
           f"--output={peft_dir}")
    run_ok("prompt_tuning.export_prompt", f"--prompt={peft_dir}", "--format=npy",
           f"--output={back}")
    np.testing.assert_array_equal(np.load(back), np.load(exports["best"]))
    original, converted = _metadata(exports["best"]), _metadata(back)
    for key in ("model", "task", "step", "dev_metric", "init"):
        assert converted[key] == original[key], key


def test_export_prompt_cli_subprocess(run, tmp_path):
    """One true command line: exit 0, the summary line, the file."""
    output = str(tmp_path / "cli.npy")
    result = runner.run_subprocess("prompt_tuning.export_prompt", f"--model_dir={run.model_dir}",
                                   "--step=latest", "--format=npy", f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"exported prompt [{PROMPT_LENGTH}, {EMBED_DIM}] (step {TRAIN_STEPS}" in result.stdout
    assert np.load(output).shape == (PROMPT_LENGTH, EMBED_DIM)


# --------------------------------------------------------------------------------------------
# The include-order trap: a prompt file before or after the model file means the same thing
# --------------------------------------------------------------------------------------------

REQUIRED_BINDINGS = ["INITIAL_CHECKPOINT_PATH = 'builtin:tiny_t5'", "MODEL_DIR = '/unused'",
                     "TRAIN_STEPS = 1", f"MIXTURE_OR_TASK_NAME = '{TASK}'",
                     "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 4}",
                     f"PROMPT_LENGTH = {PROMPT_LENGTH}"]
CLASS_LABELS = ["food", "music"]


@pytest.fixture(scope="module")
def frozen():
    from prompt_tuning import runtime  # pylint: disable=import-outside-toplevel

    return runtime.load_frozen_model(runtime.ModelConfig("builtin:tiny_t5"))


def _operative_prompt(gin_files: list[str], bindings: list[str], frozen) -> tuple[str, np.ndarray]:
    """(gin's config text, the initial prompt) after parsing the files as `train` does."""
    import gin  # pylint: disable=import-outside-toplevel
    import jax  # pylint: disable=import-outside-toplevel

    from prompt_tuning import runtime  # pylint: disable=import-outside-toplevel
    from prompt_tuning.cli import gin_config  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import seam  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training.config import TrainConfig  # pylint: disable=import-outside-toplevel

    gin.clear_config(clear_constants=True)
    try:
        gin_config.parse(gin_files, REQUIRED_BINDINGS + bindings)
        prompt_config = gin_config.build(TrainConfig).prompt
        params = runtime.init_prompt(prompt_config, frozen, jax.random.PRNGKey(0))
        return gin.config_str(), np.asarray(params[seam.PATH])
    finally:
        gin.clear_config(clear_constants=True)


@pytest.mark.parametrize("prompt_gin, bindings", [
    ("prompts/from_class_labels.gin", [f"CLASS_LABELS = {CLASS_LABELS}"]),
    ("prompts/random_uniform.gin", []),
])
def test_prompt_file_order_does_not_change_the_initializer(frozen, monkeypatch, tmp_path,
                                                           prompt_gin, bindings):
    monkeypatch.chdir(tmp_path)  # configs/ is found from anywhere, not only the repository
    model_gin, run_gin = "models/t5_1_1_tiny_prompt.gin", "runs/prompt_finetune.gin"
    first = _operative_prompt([model_gin, prompt_gin, run_gin], bindings, frozen)
    second = _operative_prompt([prompt_gin, run_gin, model_gin], bindings, frozen)
    assert first[0] == second[0]
    np.testing.assert_array_equal(first[1], second[1])
    name = os.path.basename(prompt_gin)[:-len(".gin")]
    assert f"PromptConfig.init = @initializers.{name}" in first[0]
    prompt = first[1]
    if name == "from_class_labels":  # row i: the mean embedding of label i's pieces
        for row, label in enumerate(CLASS_LABELS):
            ids = list(frozen.vocabulary.encode(label))
            np.testing.assert_allclose(prompt[row], frozen.embedding[ids].mean(axis=0), rtol=1e-6)
    else:  # U[-0.5, 0.5], unlike any embedding row
        assert np.abs(prompt).max() <= 0.5 and prompt.min() < 0 < prompt.max()


# --------------------------------------------------------------------------------------------
# trainable-parameter regexes
# --------------------------------------------------------------------------------------------

def test_trainable_regexes_add_frozen_parameters(tmp_path):
    """PromptConfig.trainable decides what trains; the rest stays equal to the checkpoint."""
    from prompt_tuning import checkpoints, run_dir

    model_dir = str(tmp_path / "run")
    norm = "encoder/encoder_norm/scale"
    run_ok("prompt_tuning.train", *tiny_run.train_flags(
        model_dir, "--gin.PromptConfig.trainable=['prompt/.*', 'encoder/encoder_norm/.*']",
        train_steps=5))
    runs = run_dir.RunCheckpoints(model_dir)
    try:
        state, _ = runs.state_tree("latest")
    finally:
        runs.close()
    assert sorted(state["params"]) == [norm, "prompt/prompt"]
    original = checkpoints.load_checkpoint(tiny_run.TINY_T5_DIR).params
    before = np.asarray(original["encoder"]["encoder_norm"]["scale"], np.float32)
    assert not np.array_equal(np.asarray(state["params"][norm], np.float32), before)


def test_trainable_regexes_must_keep_the_prompt(tmp_path):
    model_dir = str(tmp_path / "new" / "run")
    result = runner.run_in_process("prompt_tuning.train", *tiny_run.train_flags(
        model_dir, "--gin.PromptConfig.trainable=['encoder/encoder_norm/.*']"))
    assert result.returncode == 2
    assert "leaves the prompt frozen" in result.stderr.strip().splitlines()[-1]
    assert not os.path.exists(os.path.dirname(model_dir))


def test_exported_files_are_readable_by_everyone(exports):
    peft_dir = exports["peft"]
    paths = [exports["best"], exports["best"][:-len(".npy")] + ".json",
             *(os.path.join(peft_dir, name) for name in os.listdir(peft_dir))]
    assert len(paths) == 5  # npy + json, and the adapter's weights, config and metadata
    for path in paths:
        assert os.stat(path).st_mode & 0o777 == 0o644, path


# --------------------------------------------------------------------------------------------
# A resumed run: TensorBoard shows every step once; each step exports its own dev metric
# --------------------------------------------------------------------------------------------

def _tensorboard_steps(directory: str, tag: str) -> dict[int, float]:
    """{step: value} of the events TensorBoard reads (every event file, in order)."""
    from tensorboard.backend.event_processing import (  # pylint: disable=import-outside-toplevel
        plugin_event_accumulator as event_accumulator)
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    # Size 0: every event (the default keeps a random sample per tag); no purging of our own,
    # so that only what the files hold is counted.
    accumulator = event_accumulator.EventAccumulator(
        directory, size_guidance={event_accumulator.TENSORS: 0}, purge_orphaned_data=False)
    accumulator.Reload()
    events = accumulator.Tensors(tag)
    steps = [event.step for event in events]
    assert len(steps) == len(set(steps)), f"{tag}: steps shown twice: {sorted(steps)}"
    return {event.step: float(tf.make_ndarray(event.tensor_proto)) for event in events}


@pytest.mark.slow
def test_resumed_run_logs_each_step_once_and_exports_each_steps_own_metric(tmp_path):
    import shutil  # pylint: disable=import-outside-toplevel

    model_dir = str(tmp_path / "run")
    flags = tiny_run.train_flags(model_dir, "--gin.EVAL_PERIOD=10", "--gin.CHECKPOINT_PERIOD=5",
                                 "--gin.train_config.TrainConfig.log_period=1", train_steps=10)
    run_ok("prompt_tuning.train", *flags)
    before = _tensorboard_steps(os.path.join(model_dir, "train"), "loss")
    # As if killed after logging steps 6-10 but before checkpoint 10 was committed.
    shutil.rmtree(os.path.join(model_dir, "checkpoints", "10"))
    result = run_ok("prompt_tuning.train", *flags)
    assert f"note: resumed {model_dir} at step 5 of 10." in result.stderr
    after = _tensorboard_steps(os.path.join(model_dir, "train"), "loss")
    assert sorted(after) == list(range(1, 11))
    assert after == pytest.approx(before)  # resume is exact: the redone steps are the same
    accuracy = _tensorboard_steps(os.path.join(model_dir, "validation"), ACCURACY)
    assert sorted(accuracy) == [0, 10]

    for step, expected in (("5", None), ("10", accuracy[10]), ("latest", accuracy[10])):
        output = str(tmp_path / f"step_{step}.npy")
        printed = run_ok("prompt_tuning.export_prompt", f"--model_dir={model_dir}",
                         f"--step={step}", f"--output={output}").stdout
        metadata = _metadata(output)
        if expected is None:  # step 5 was checkpointed but never evaluated
            assert metadata["dev_metric"] is None and metadata["dev_metrics"] is None
            assert "dev metric not evaluated" in printed
        else:
            assert metadata["dev_metric"] == pytest.approx(expected)
            assert metadata["dev_metrics"][TASK]["accuracy"] == pytest.approx(expected)
