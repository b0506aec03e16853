"""Issue 11's user mistakes: each ends in exactly one `error:` line (asserted whole), the exit code
says whose mistake it is (2: the command line itself, 1: files, data or MODEL_DIR), and MODEL_DIR
and the outputs are byte-for-byte what they were (or still absent)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.launch import tiny_run
from tests.launch.runner import (REPO, Result, run_in_process, run_subprocess, snapshot,
                                 truncate_checkpoint)
from tests.launch.tiny_run import EMBED_DIM, PROMPT_LENGTH, TRAIN_STEPS

TRAIN, EVAL, INFER = "prompt_tuning.train", "prompt_tuning.eval", "prompt_tuning.infer"
EXPORT, SCORE, DEMO = "prompt_tuning.export_prompt", "prompt_tuning.score", "prompt_tuning.demo"
ALL_COMMANDS = [TRAIN, EVAL, INFER, EXPORT, SCORE, DEMO, "prompt_tuning.convert_checkpoint",
                "prompt_tuning.show_tasks", "prompt_tuning.prepare_data",
                "prompt_tuning.inspect_prompt"]


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tiny_run.SharedRun:
    return tiny_run.shared_run(tmp_path_factory)


def assert_one_error(result: Result, code: int, line: str) -> None:
    """stderr is exactly `error: <line>`; the exit code is `code`; no traceback."""
    assert result.stderr == f"error: {line}\n", result.stderr[-3000:]
    assert result.returncode == code


def refused(module: str, args: list[str], code: int, line: str, *watched: str) -> None:
    """`module args` fails as `code` with `line`, and every watched path is unchanged."""
    before = {path: (os.path.exists(path), snapshot(path)) for path in watched}
    assert_one_error(run_in_process(module, *args), code, line)
    for path, (existed, tree) in before.items():
        assert os.path.exists(path) == existed, path
        assert snapshot(path) == tree, path


def _copy_run(run, tmp_path) -> str:
    copy = str(tmp_path / "run")
    shutil.copytree(run.model_dir, copy)
    return copy


def _nan_prompt(tmp_path) -> str:
    prompt = np.zeros((PROMPT_LENGTH, EMBED_DIM), np.float32)
    prompt[2, 5] = np.nan
    path = str(tmp_path / "nan.npy")
    np.save(path, prompt)
    return path


# --------------------------------------------------------------------------------------------
# Config values: refused before MODEL_DIR is touched (exit 2)
# --------------------------------------------------------------------------------------------

CONFIG_MISTAKES = {
    "EVAL_PERIOD=0": ("EVAL_PERIOD must be a positive integer, got 0."),
    "CHECKPOINT_PERIOD=0": ("CHECKPOINT_PERIOD must be an integer >= 1, got 0."),
    "CHECKPOINTS_TO_KEEP=0": ("CHECKPOINTS_TO_KEEP must be an integer >= 1, got 0."),
    "EVAL_BATCH_SIZE=0": ("the evaluation batch size must be a positive integer "
                          "(EVAL_BATCH_SIZE), got 0."),
    "BATCH_SIZE=0": "batch_size must be a positive integer, got 0.",
    "TRAIN_STEP=10": ("gin macro TRAIN_STEP is set but nothing in this command's config uses it. "
                      "Did you mean TRAIN_STEPS?"),
    "DROPOUT_RATE=1.5": "DROPOUT_RATE must be in [0, 1), got 1.5.",
    "ACTIVATION_DTYPE='float64'": ("ACTIVATION_DTYPE must be one of ('float32', 'bfloat16', "
                                   "'float16'), got 'float64'."),
}


@pytest.mark.parametrize("binding", sorted(CONFIG_MISTAKES))
def test_config_value_mistakes(tmp_path, binding):
    model_dir = tmp_path / "new" / "run"
    refused(TRAIN, tiny_run.train_flags(str(model_dir), f"--gin.{binding}"), 2,
            CONFIG_MISTAKES[binding], str(tmp_path / "new"))


def test_no_arguments_at_all():
    assert_one_error(run_in_process(TRAIN), 2, "no config for TrainConfig: give the command's gin "
                     "files, e.g. --gin_file=runs/prompt_finetune.gin (--help shows an example).")
    assert_one_error(run_in_process(EVAL), 2, "no config for EvalJobConfig: give the command's "
                     "gin files, e.g. --gin_file=runs/prompt_eval.gin (--help shows an example).")


@pytest.mark.parametrize("module", ALL_COMMANDS)
def test_unknown_flag(module):
    assert_one_error(run_in_process(module, "--verbos"), 2,
                     "Unknown command line flag 'verbos'. Did you mean --verbose? (--help lists "
                     "the flags)")


@pytest.mark.parametrize("module", ALL_COMMANDS)
def test_help_prints_usage_and_exits_0(module):
    import importlib  # pylint: disable=import-outside-toplevel

    result = run_in_process(module, "--help")
    assert result.returncode == 0 and result.stderr == ""
    doc = importlib.import_module(module).__doc__
    assert result.stdout.startswith(doc.strip().splitlines()[0])
    assert "flags:" in result.stdout and "--[no]verbose" in result.stdout


def test_export_format_that_does_not_exist(tmp_path):
    output = str(tmp_path / "p.onnx")
    refused(EXPORT, ["--prompt=x.npy", f"--output={output}", "--format=onnx"], 2,
            "flag --format=onnx: value should be one of <npy|peft>. (--help lists the flags)",
            output)


def test_demo_with_zero_train_steps(tmp_path):
    model_dir = str(tmp_path / "demo")
    refused(DEMO, [f"--model_dir={model_dir}", "--train_steps=0"], 2,
            "--train_steps must be a positive integer, got 0.", model_dir)


@pytest.mark.parametrize("module", [EVAL, INFER])
def test_a_split_the_task_does_not_have(run, tmp_path, module):
    output = str(tmp_path / "out")
    flags = (tiny_run.eval_flags(output, f"--gin.MODEL_DIR='{run.model_dir}'")
             if module == EVAL else tiny_run.infer_flags(
                 os.path.join(output, "p.jsonl"), f"--gin.MODEL_DIR='{run.model_dir}'"))
    refused(module, flags + ["--gin.SPLIT='dev'"], 2,
            f"Task '{tiny_run.TASK}' has no split 'dev' (SPLIT); it has ['train', 'validation', "
            "'test'].", output, run.model_dir)


def test_zero_examples_to_infer(run, tmp_path):
    output = str(tmp_path / "p.jsonl")
    refused(INFER, tiny_run.infer_flags(output, f"--gin.MODEL_DIR='{run.model_dir}'",
                                        "--gin.NUM_EXAMPLES=0"), 2,
            "NUM_EXAMPLES must be a positive integer or None, got 0.", output)


# --------------------------------------------------------------------------------------------
# What the command met: data, MODEL_DIR, files (exit 1)
# --------------------------------------------------------------------------------------------

def test_a_superglue_task_whose_data_is_not_prepared(tmp_path):
    data_dir = tmp_path / "tfds"
    data_dir.mkdir()
    model_dir = tmp_path / "new" / "run"
    args = [a for a in tiny_run.train_flags(str(model_dir)) if "MIXTURE_OR_TASK_NAME" not in a]
    refused(TRAIN, args + ["--gin.MIXTURE_OR_TASK_NAME='taskless_super_glue_rte_v102'",
                           f"--tfds_data_dir={data_dir}"], 1,
            "TFDS dataset super_glue/rte:1.0.2 (task taskless_super_glue_rte_v102) is not prepared "
            f"in {data_dir}/super_glue/rte/1.0.2: prepare it (`python -m prompt_tuning.prepare_data "
            "--tasks=taskless_super_glue_rte_v102 --tfds_data_dir=DIR`) or point --tfds_data_dir "
            "at where it is.", str(tmp_path / "new"), str(data_dir))


def test_train_steps_below_the_latest_checkpoint(run, tmp_path):
    model_dir = _copy_run(run, tmp_path)
    refused(TRAIN, tiny_run.train_flags(model_dir, train_steps=10), 1,
            f"MODEL_DIR {model_dir} is already at step {TRAIN_STEPS}, past TRAIN_STEPS=10: nothing "
            "to train. Raise TRAIN_STEPS to continue the run, or export or evaluate it as it is.",
            model_dir)


@pytest.mark.parametrize("flags, difference", [
    (["--gin.DROPOUT_RATE=0.2"], "model.dropout_rate was 0.1, now 0.2"),
    (["--gin_file=prompts/random_uniform.gin"],
     "prompt.init.function was 'prompt_tuning.prompts.initializers.from_sampled_vocab', now "
     "'prompt_tuning.prompts.initializers.random_uniform'"),
    (["--gin.SEED=3"], "seed was 0, now 3"),
])
def test_resuming_with_another_config_names_the_differences(run, tmp_path, flags, difference):
    model_dir = _copy_run(run, tmp_path)
    args = [a for a in tiny_run.train_flags(model_dir, train_steps=TRAIN_STEPS + 5)
            if not (a.startswith("--gin_file=prompts/") and flags[0].startswith("--gin_file"))]
    before = snapshot(model_dir)
    result = run_in_process(TRAIN, *args, *flags)
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith(f"error: MODEL_DIR {model_dir} holds a different run (")
    assert difference in result.stderr
    assert result.stderr.endswith("resume it with the same config (only TRAIN_STEPS, the periods, "
                                  "CHECKPOINTS_TO_KEEP and the partitioning may change) or "
                                  "choose a new MODEL_DIR.\n")
    assert snapshot(model_dir) == before


def test_what_may_change_on_resume(run, tmp_path):
    """More steps, other periods and keep-N: the run continues."""
    model_dir = _copy_run(run, tmp_path)
    args = [a for a in tiny_run.train_flags(model_dir, train_steps=TRAIN_STEPS + 2)
            if "PERIOD" not in a and "KEEP" not in a]
    result = run_in_process(TRAIN, *args, "--gin.EVAL_PERIOD=7", "--gin.CHECKPOINT_PERIOD=3",
                            "--gin.CHECKPOINTS_TO_KEEP=1")
    assert result.returncode == 0, result.stderr
    assert f"note: resumed {model_dir} at step {TRAIN_STEPS} of {TRAIN_STEPS + 2}." in result.stderr
    assert os.listdir(os.path.join(model_dir, "checkpoints")) == [str(TRAIN_STEPS + 2)]


@pytest.mark.parametrize("module", [TRAIN, EVAL, EXPORT, SCORE])
def test_a_prompt_file_holding_nan(run, tmp_path, module):
    path = _nan_prompt(tmp_path)
    out = tmp_path / "out"
    args = {
        TRAIN: [a for a in tiny_run.train_flags(str(out / "run")) if "prompts/" not in a]
        + ["--gin_file=prompts/from_file.gin", f"--gin.PROMPT_FILE='{path}'"],
        EVAL: tiny_run.eval_flags(str(out), f"--gin.PROMPT_FILE='{path}'"),
        EXPORT: [f"--prompt={path}", f"--output={out / 'p.npy'}"],
        SCORE: ["--checkpoint=builtin:tiny_t5", f"--prompt={path}", f"--output={out / 's.jsonl'}",
                f"--inputs={_score_inputs(tmp_path)}"],
    }[module]
    refused(module, args, 1, f"{path}: the prompt holds 1 non-finite values (NaN or infinity), "
            "the first in row 2; it cannot be used.", str(out))


def _score_inputs(tmp_path) -> str:
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"inputs": "a sentence", "targets": "food"}) + "\n")
    return str(path)


def test_infer_output_file_that_is_a_directory(run, tmp_path):
    directory = tmp_path / "predictions"
    directory.mkdir()
    refused(INFER, tiny_run.infer_flags(str(directory), f"--gin.MODEL_DIR='{run.model_dir}'"), 1,
            f"INFER_OUTPUT_FILE {directory} is a directory; give a file path.", str(directory))


@pytest.mark.parametrize("module", [EXPORT, SCORE, INFER])
def test_an_output_below_a_regular_file(run, tmp_path, module):
    blocking = tmp_path / "notes.txt"
    blocking.write_text("mine")
    output = blocking / "out.npy"
    args = {EXPORT: [f"--model_dir={run.model_dir}", f"--output={output}"],
            SCORE: ["--checkpoint=builtin:tiny_t5", f"--inputs={_score_inputs(tmp_path)}",
                    f"--output={output}"],
            INFER: tiny_run.infer_flags(str(output), f"--gin.MODEL_DIR='{run.model_dir}'")}
    what = "INFER_OUTPUT_FILE" if module == INFER else "--output"
    refused(module, args[module], 1,
            f"{what} {output} cannot be created: {blocking} is a file, not a directory.",
            str(tmp_path / "notes.txt"), run.model_dir)


@pytest.mark.parametrize("below", [False, True])
def test_model_dir_that_is_a_dangling_symbolic_link(tmp_path, below):
    link = tmp_path / "runs"
    os.symlink(tmp_path / "gone", link)  # e.g. a mount point that is not mounted
    model_dir = link / "run" if below else link
    where = f": {link}" if below else ""
    refused(TRAIN, tiny_run.train_flags(str(model_dir)), 1,
            f"MODEL_DIR {model_dir}{where} is a dangling symbolic link to {tmp_path / 'gone'}; "
            "create that or remove the link.")
    assert os.listdir(tmp_path) == ["runs"] and os.readlink(link) == str(tmp_path / "gone")


def test_demo_model_dir_that_is_a_dangling_symbolic_link(tmp_path):
    link = tmp_path / "demo"
    os.symlink("gone", link)  # relative to the link's directory
    refused(DEMO, [f"--model_dir={link}"], 1, f"--model_dir {link} is a dangling symbolic link "
            f"to {tmp_path / 'gone'}; create that or remove the link.")


def test_model_dir_in_a_directory_without_write_permission(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    model_dir = locked / "run"
    try:
        result = run_in_process(TRAIN, *tiny_run.train_flags(str(model_dir), train_steps=1))
    finally:
        locked.chmod(0o755)
    if os.geteuid() == 0:  # root writes anyway; the run says what it checked
        assert result.returncode == 0, result.stderr
        assert (f"note: {locked} has no write permission bits, but this process runs as root "
                "and could create a file there (checked), so MODEL_DIR is used.") in result.stderr
    else:
        assert_one_error(result, 1, f"MODEL_DIR {model_dir} is not writable (no write access to "
                                    f"{locked}).")
        assert not model_dir.exists()


@pytest.mark.slow
def test_a_truncated_checkpoint_is_one_line_every_time(run, tmp_path):
    """In a real process: orbax's threads print nothing after the error, run after run."""
    model_dir = _copy_run(run, tmp_path)
    truncate_checkpoint(model_dir, TRAIN_STEPS)
    before = snapshot(model_dir)
    for _ in range(3):
        result = run_subprocess(TRAIN, *tiny_run.train_flags(model_dir,
                                                             train_steps=TRAIN_STEPS + 5))
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1, result.stderr[-3000:]
        assert result.stderr.startswith(f"error: checkpoint {model_dir}/checkpoints/{TRAIN_STEPS} "
                                        "cannot be read (corrupt or truncated?)")
    assert snapshot(model_dir) == before


# --------------------------------------------------------------------------------------------
# Quiet start: nothing on stderr but what the command says
# --------------------------------------------------------------------------------------------

def test_tensorflow_prints_nothing_at_start():
    """show_tasks imports TensorFlow, seqio and TFDS; stderr stays empty (no C++ INFO lines,
    no 'Could not find cuda drivers', no 'failed call to cuInit')."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    result = subprocess.run([sys.executable, "-m", "prompt_tuning.show_tasks"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0
    assert result.stderr == ""
    assert "taskless_builtin_topic" in result.stdout


@pytest.mark.parametrize("flags, line", [
    (["--process_count=2"], "--coordinator_address, --process_index missing: a multi-host run "
                            "needs --coordinator_address, --process_count and --process_index on "
                            "every host."),
    (["--coordinator_address=127.0.0.1:1234", "--process_count=2", "--process_index=2"],
     "--process_index 2 must be in [0, --process_count 2)."),
    (["--coordinator_address=nohost", "--process_count=2", "--process_index=0"],
     "--coordinator_address must be HOST:PORT, got 'nohost'."),
])
@pytest.mark.parametrize("module", [TRAIN, EVAL, INFER, SCORE])
def test_multi_host_flag_mistakes(tmp_path, module, flags, line):
    refused(module, flags, 2, line, str(tmp_path))


def test_use_cached_tasks_without_a_seqio_cache(tmp_path):
    # T5X's USE_CACHED_TASKS=True reads the tasks' offline seqio cache; there is none here.
    cache = tmp_path / "cache"
    cache.mkdir()
    model_dir = tmp_path / "new" / "run"
    refused(TRAIN, tiny_run.train_flags(str(model_dir)) + [
        "--gin.USE_CACHED_TASKS=True", f"--seqio_additional_cache_dirs={cache}"], 1,
        f"Task 'taskless_builtin_topic' has no seqio cache (USE_CACHED_TASKS=True) in "
        f"['{cache}']: build one with seqio's cache_tasks_main and name its directory with "
        "--seqio_additional_cache_dirs, or set USE_CACHED_TASKS=False.", str(tmp_path / "new"))
