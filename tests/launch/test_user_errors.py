"""User mistakes with the real entry points: one `error: ...` line, exit 1, MODEL_DIR untouched.

Each mistake is made the way a user makes it (a flag, a file, a directory), in-process through
the command line's own error handling (tests/launch/runner.py); two run as real subprocesses.
"Untouched" means: an existing MODEL_DIR has the same files, sizes and times before and after,
and a MODEL_DIR that did not exist still does not (nor does any parent the run would create).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.launch import tiny_run
from tests.launch.runner import (Result, run_in_process, run_subprocess, snapshot,
                                 truncate_checkpoint)
from tests.launch.tiny_run import EMBED_DIM, PROMPT_LENGTH, TRAIN_STEPS


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tiny_run.SharedRun:
    return tiny_run.shared_run(tmp_path_factory)


def assert_user_error(result: Result, *fragments: str, code: int = 1) -> str:
    """The last stderr line is the only `error: ` line, with every fragment; exit code `code`
    (2 for a mistake of the command line itself, 1 for one about files, data or MODEL_DIR)."""
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert result.returncode == code, result.stderr[-3000:]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def fails_untouched(module: str, args: list[str], watched: str, *fragments: str,
                    code: int = 1) -> str:
    """Runs `module` and checks the error and that `watched` (a directory) did not change."""
    before, existed = snapshot(watched), os.path.exists(watched)
    message = assert_user_error(run_in_process(module, *args), *fragments, code=code)
    assert os.path.exists(watched) == existed
    assert snapshot(watched) == before
    return message


def train_fails(model_dir: str, flags: list[str], *fragments: str, drop: tuple = (),
                code: int = 1) -> str:
    args = [a for a in tiny_run.train_flags(model_dir) if not a.startswith(drop or "\0")] + flags
    # Watch the parent too: a failed run must not leave a fresh MODEL_DIR (or parent) behind.
    watched = os.path.dirname(os.path.dirname(model_dir))
    return fails_untouched("prompt_tuning.train", args, watched, *fragments, code=code)


# --------------------------------------------------------------------------------------------
# Flags and config files
# --------------------------------------------------------------------------------------------

TRAIN_MISTAKES = {
    "missing MODEL_DIR": ([], ["required macro MODEL_DIR is not set"], ("--gin.MODEL_DIR",)),
    "missing TRAIN_STEPS": ([], ["required macro TRAIN_STEPS is not set"], ("--gin.TRAIN_STEPS",)),
    "unknown task": (["--gin.MIXTURE_OR_TASK_NAME='taskless_builtin_topik'"],
                     ["Unknown task or mixture", "Did you mean taskless_builtin_topic"], ()),
    "unknown gin file": (["--gin_file=runs/prompt_finetuning.gin"],
                         ["Unknown gin file 'runs/prompt_finetuning.gin'"], ()),
    "--gin. without a value": (["--gin.TRAIN_STEPS"], ["Bad gin override '--gin.TRAIN_STEPS'"], ()),
    "unbalanced --gin. value": (["--gin.TASK_FEATURE_LENGTHS={'inputs': 32"], ["unbalanced"], ()),
    "unknown parameter": (["--gin.train_config.TrainConfig.num_steps=5"],
                          ["doesn't have a parameter named 'num_steps'"], ()),
    "missing checkpoint": (["--gin.INITIAL_CHECKPOINT_PATH='/nonexistent/checkpoint_1000'"],
                           ["/nonexistent/checkpoint_1000 does not exist"], ()),
    "checkpoint of another size": (["--gin_file=models/t5_1_1_small_prompt.gin"],
                                   ["does not match the chosen model size"],
                                   ("--gin_file=models/t5_1_1_tiny_prompt.gin",)),
    "inputs + prompt too long": (["--gin.TASK_FEATURE_LENGTHS={'inputs': 2040, 'targets': 4}"],
                                 ["is longer than the model accepts"], ()),
    "unknown EVAL_MODE": (["--gin.EVAL_MODE='ranking'"], ["EvalConfig.mode must be"], ()),
    "unknown DECODING": (["--gin.DECODING='sampling'"], ["decoding method must be"], ()),
    "PROMPT_LENGTH 0": (["--gin.PROMPT_LENGTH=0"],
                        ["PROMPT_LENGTH must be a positive integer"], ()),
    "TRAIN_STEPS 0": (["--gin.TRAIN_STEPS=0"], ["TRAIN_STEPS must be a positive integer"], ()),
    "packing": (["--gin.pipeline.DatasetConfig.pack=True"], ["does not pack examples"], ()),
    "two prompt files": (["--gin_file=runs/embedded_default.gin",
                          "--gin_file=prompts/random_uniform.gin"],
                         ["More than one prompt initializer file",
                          "included by runs/embedded_default.gin"],
                         ("--gin_file=prompts/",)),
    "vocabulary that is no SentencePiece model": (
        [f"--gin.VOCABULARY_PATH='{os.path.join(tiny_run.TINY_T5_DIR, 'config.json')}'"],
        ["is not a SentencePiece model"], ()),
    "missing vocabulary": (["--gin.VOCABULARY_PATH='/nonexistent/spiece.model'"],
                           ["No SentencePiece vocabulary"], ()),
}


# Mistakes about files rather than the command line itself: exit code 1, the others 2.
FILE_MISTAKES = {"missing checkpoint", "checkpoint of another size",
                 "vocabulary that is no SentencePiece model", "missing vocabulary"}


@pytest.mark.parametrize("mistake", list(TRAIN_MISTAKES))
def test_train_mistake(tmp_path, mistake):
    flags, fragments, drop = TRAIN_MISTAKES[mistake]
    train_fails(str(tmp_path / "new" / "run"), flags, *fragments, drop=drop,
                code=1 if mistake in FILE_MISTAKES else 2)


# --------------------------------------------------------------------------------------------
# Vocabulary and prompt files that do not fit the model
# --------------------------------------------------------------------------------------------

def _sentencepiece(directory, name: str, num_words: int, vocab_size: int) -> str:
    """A word-level SentencePiece model of `vocab_size` pieces over made-up words."""
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)
    words = {"".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), 7)) for _ in range(num_words)}
    words = sorted(words)
    text = directory / f"{name}.txt"
    text.write_text("\n".join(" ".join(words[i:i + 20]) for i in range(0, len(words), 20)))
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(directory / name),
                                   vocab_size=vocab_size, model_type="word", minloglevel=2)
    return str(directory / f"{name}.model")


def test_vocabulary_with_more_ids_than_the_model(tmp_path):
    # 32,100 pieces + 100 extra ids > the tiny T5's 32,128 embedding rows.
    path = _sentencepiece(tmp_path, "big", 33000, 32100)
    train_fails(str(tmp_path / "new" / "run"), [f"--gin.VOCABULARY_PATH='{path}'"],
                "32200 ids", "32128 embedding rows")


def test_vocabulary_that_is_not_the_tasks(tmp_path):
    # Fits in the embedding table, but the task's token ids come from the T5 vocabulary.
    path = _sentencepiece(tmp_path, "small", 1000, 300)
    train_fails(str(tmp_path / "new" / "run"), [f"--gin.VOCABULARY_PATH='{path}'"],
                "tokenizes 'inputs' with another vocabulary")


@pytest.mark.parametrize("shape", [(PROMPT_LENGTH, 32), (PROMPT_LENGTH + 3, 32)])
def test_train_from_prompt_file_of_the_wrong_width(tmp_path, shape):
    # Another length is transfer (rows kept or added, tests/prompts/test_transfer.py); another
    # width cannot fit the model.
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, np.zeros(shape, np.float32))
    flags = ["--gin_file=prompts/from_file.gin", f"--gin.PROMPT_FILE='{prompt}'"]
    train_fails(str(tmp_path / "new" / "run"), flags, f"got {shape}",
                drop=("--gin_file=prompts/",))


def test_eval_with_prompt_file_of_another_width(tmp_path):
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, np.zeros((PROMPT_LENGTH, 32), np.float32))
    output = str(tmp_path / "eval")
    args = tiny_run.eval_flags(output, f"--gin.PROMPT_FILE='{prompt}'")
    fails_untouched("prompt_tuning.eval", args, output, "does not fit the model: expected [P, 64]")


@pytest.mark.parametrize("module", ["prompt_tuning.eval", "prompt_tuning.infer"])
def test_eval_and_infer_with_a_prompt_too_long_for_the_model(tmp_path, module):
    prompt = tmp_path / "prompt.npy"
    np.save(prompt, np.zeros((2040, EMBED_DIM), np.float32))  # + 32 inputs > 2048
    output = str(tmp_path / "out")
    flags = (tiny_run.eval_flags(output, f"--gin.PROMPT_FILE='{prompt}'")
             if module.endswith("eval") else tiny_run.infer_flags(
                 os.path.join(output, "p.jsonl"), f"--gin.PROMPT_FILE='{prompt}'"))
    fails_untouched(module, flags, output, "2040 + inputs length 32 = 2072 is longer", code=2)


def test_eval_without_a_prompt(tmp_path):
    output = str(tmp_path / "eval")
    fails_untouched("prompt_tuning.eval", tiny_run.eval_flags(output), output, "No prompt",
                    code=2)


def test_eval_from_a_directory_that_is_no_run(tmp_path):
    output, missing = str(tmp_path / "eval"), str(tmp_path / "typo_run")
    args = tiny_run.eval_flags(output, f"--gin.MODEL_DIR='{missing}'")
    fails_untouched("prompt_tuning.eval", args, str(tmp_path),
                    "is not a prompt-tuning run directory")


# --------------------------------------------------------------------------------------------
# MODEL_DIR
# --------------------------------------------------------------------------------------------

def test_model_dir_below_a_file(tmp_path):
    (tmp_path / "a_file").write_text("not a directory")
    train_fails(str(tmp_path / "a_file" / "run"), [], "cannot be created", "is not a directory")


def test_unwritable_model_dir(tmp_path):
    if os.geteuid() == 0:  # permission bits do not stop root; sysfs does
        model_dir = "/sys/prompt_tuning_test/run"
        fails_untouched("prompt_tuning.train", tiny_run.train_flags(model_dir),
                        os.path.dirname(model_dir), "is not writable")
        assert not os.path.exists(os.path.dirname(model_dir))
        return
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        train_fails(str(locked / "run"), [], "is not writable")
    finally:
        locked.chmod(0o755)


def test_foreign_model_dir(tmp_path):
    model_dir = tmp_path / "new" / "mine"
    model_dir.mkdir(parents=True)
    (model_dir / "notes.txt").write_text("my thesis")
    train_fails(str(model_dir), [], "is not a prompt-tuning run directory")


def test_model_dir_of_a_run_with_another_config(run):
    flags = [f"--gin.MODEL_DIR='{run.model_dir}'", "--gin.PROMPT_LENGTH=5"]
    fails_untouched("prompt_tuning.train", tiny_run.train_flags("unused") + flags, run.model_dir,
                    "holds a different run", "prompt.length was 10, now 5")


@pytest.mark.slow
def test_batch_size_not_divisible_by_the_devices(tmp_path):
    model_dir = str(tmp_path / "new" / "run")
    result = run_subprocess("prompt_tuning.train", *tiny_run.train_flags(model_dir),
                            env={"XLA_FLAGS": "--xla_force_host_platform_device_count=3",
                                 "JAX_PLATFORMS": "cpu"})
    assert_user_error(result, "batch size 8 is not divisible by the 3 data-parallel devices",
                      code=2)
    assert not os.path.exists(tmp_path / "new")


def test_missing_macro_on_the_command_line(tmp_path):
    """A true subprocess: nothing but the error line on stderr from our code, exit code 1."""
    result = run_subprocess("prompt_tuning.train", "--gin_file=runs/embedded_default.gin")
    assert_user_error(result, "required macro MODEL_DIR is not set (use --gin.MODEL_DIR=...)",
                      code=2)


# --------------------------------------------------------------------------------------------
# Broken runs: NaN loss, corrupt checkpoints, steps that do not exist
# --------------------------------------------------------------------------------------------

def _copy_run(run, tmp_path) -> str:
    copy = str(tmp_path / "run")
    shutil.copytree(run.model_dir, copy)
    return copy


def _prompt_at(model_dir: str, step: str) -> tuple[int, np.ndarray]:
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel

    prompt, metadata = prompt_from_run(model_dir, step)
    return metadata["step"], prompt


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(run, tmp_path):
    model_dir = _copy_run(run, tmp_path)
    _, before = _prompt_at(model_dir, "latest")
    # A run whose learning rate overflows float32 (a resumed run may not change its learning
    # rate, so the copy's run.json says so too): the first update after the resume is not finite.
    run_file = os.path.join(model_dir, "run.json")
    with open(run_file) as f:
        identity = json.load(f)
    identity["optimizer"]["learning_rate"] = 1e39
    with open(run_file, "w") as f:
        json.dump(identity, f)
    args = tiny_run.train_flags(model_dir, "--gin.optim.AdafactorConfig.learning_rate=1e39",
                                train_steps=TRAIN_STEPS + 5)
    message = assert_user_error(run_in_process("prompt_tuning.train", *args), "non-finite",
                                f"at step {TRAIN_STEPS + 1}",
                                f"last good checkpoint is step {TRAIN_STEPS}")
    assert "learning rate" in message
    step, after = _prompt_at(model_dir, "latest")
    assert step == TRAIN_STEPS and np.isfinite(after).all()
    np.testing.assert_array_equal(after, before)


# orbax's reader threads outlive the failed read and complain about the closed event loop.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_corrupt_checkpoint(run, tmp_path):
    model_dir = _copy_run(run, tmp_path)
    truncate_checkpoint(model_dir, TRAIN_STEPS)
    fragments = (f"checkpoints/{TRAIN_STEPS} cannot be read", "corrupt or truncated")
    args = tiny_run.train_flags(model_dir, train_steps=TRAIN_STEPS + 5)
    fails_untouched("prompt_tuning.train", args, model_dir, *fragments)
    output = str(tmp_path / "exported.npy")
    fails_untouched("prompt_tuning.export_prompt", [f"--model_dir={model_dir}", "--step=latest",
                                                    f"--output={output}"], model_dir, *fragments)
    assert not os.path.exists(output)
    eval_args = tiny_run.eval_flags(str(tmp_path / "eval"), f"--gin.MODEL_DIR='{model_dir}'",
                                    "--gin.CHECKPOINT_STEP='latest'")
    fails_untouched("prompt_tuning.eval", eval_args, model_dir, *fragments)


@pytest.mark.parametrize("step, fragment, code", [("7", "has no checkpoint for step '7'", 1),
                                                  ("soon", "'best', 'latest' or a step number", 2)])
def test_export_of_a_step_that_does_not_exist(run, tmp_path, step, fragment, code):
    output = str(tmp_path / "out.npy")
    args = [f"--model_dir={run.model_dir}", f"--step={step}", f"--output={output}"]
    fails_untouched("prompt_tuning.export_prompt", args, run.model_dir, fragment, code=code)
    assert not os.path.exists(output)


def test_export_mistakes(run, tmp_path):
    existing = tmp_path / "taken.npy"
    existing.write_bytes(b"keep me")
    cases = [([f"--model_dir={run.model_dir}", f"--output={existing}"], "already exists", 1),
             ([f"--model_dir={run.model_dir}", f"--prompt={existing}", "--output=x.npy"],
              "give exactly one of", 2),
             ([f"--model_dir={run.model_dir}"], "--output is required", 2),
             ([f"--model_dir={tmp_path / 'nowhere'}", f"--output={tmp_path / 'o.npy'}"],
              "is not a prompt-tuning run directory", 1)]
    for args, fragment, code in cases:
        fails_untouched("prompt_tuning.export_prompt", args, str(tmp_path), fragment, code=code)
    assert existing.read_bytes() == b"keep me"
