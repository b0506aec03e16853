"""Prompt transfer: a task starts from another task's saved prompt (`from_file`), with the same,
a shorter or a longer PROMPT_LENGTH; and the whole workflow through the real commands."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from prompt_tuning import errors
from prompt_tuning.prompts import files, initializers

EMBED = 8
FILE_ROWS = 6


def _table(rows: int = 50) -> np.ndarray:
    """[rows, EMBED]: column 0 holds the row index, so any returned row names its source."""
    table = np.random.default_rng(0).normal(size=(rows, EMBED)).astype(np.float32)
    table[:, 0] = np.arange(rows)
    return table


def _unreadable_table():
    raise AssertionError("the embedding table was read, but no row comes from it")


@pytest.fixture
def prompt_file(tmp_path):
    """(path, [FILE_ROWS, EMBED] value) of a saved prompt, as another task's run exports it."""
    value = np.random.default_rng(1).normal(size=(FILE_ROWS, EMBED)).astype(np.float32)
    path = str(tmp_path / "task_a.npy")
    np.save(path, value)
    return path, value


def _init(init, length: int, seed: int = 0) -> np.ndarray:
    return np.asarray(jax.jit(init, static_argnums=1)(jax.random.key(seed), (length, EMBED)))


def test_equal_length_is_the_file_bit_for_bit_and_silent(prompt_file, capsys):
    path, value = prompt_file
    # The embedding is not read: nothing comes from the fallback.
    prompt = _init(initializers.from_file(path, _unreadable_table), FILE_ROWS)
    assert prompt.dtype == np.float32
    assert prompt.tobytes() == value.tobytes()
    assert prompt.tobytes() == _init(initializers.from_array(value), FILE_ROWS).tobytes()
    assert capsys.readouterr().err == ""


def test_shorter_keeps_the_files_first_rows(prompt_file, capsys):
    path, value = prompt_file
    prompt = _init(initializers.from_file(path, _unreadable_table), 4)
    assert prompt.tobytes() == value[:4].tobytes()
    assert capsys.readouterr().err == (
        f"note: prompt file {path} has {FILE_ROWS} rows; PROMPT_LENGTH=4 keeps the first 4.\n")


def test_longer_adds_sampled_vocab_rows_after_the_files(prompt_file, capsys):
    path, value = prompt_file
    table = _table()
    prompt = _init(initializers.from_file(path, table), 10, seed=3)
    assert prompt[:FILE_ROWS].tobytes() == value.tobytes()
    # The added rows are those the fallback alone gives for the same rng and shape...
    alone = _init(initializers.from_sampled_vocab(table), 10, seed=3)
    assert prompt[FILE_ROWS:].tobytes() == alone[FILE_ROWS:].tobytes()
    # ...which are whole rows of the embedding table.
    ids = prompt[FILE_ROWS:, 0].astype(int)
    np.testing.assert_array_equal(prompt[FILE_ROWS:], table[ids])
    assert capsys.readouterr().err == (
        f"note: prompt file {path} has {FILE_ROWS} rows; PROMPT_LENGTH=10 keeps them first and "
        f"adds 4 rows from from_sampled_vocab.\n")


def test_longer_with_another_fallback(prompt_file, capsys):
    path, value = prompt_file
    fallback = initializers.random_uniform(0.5)
    prompt = _init(initializers.from_file(path, _unreadable_table, fallback=fallback), 9, seed=5)
    assert prompt[:FILE_ROWS].tobytes() == value.tobytes()
    alone = _init(fallback, 9, seed=5)
    assert prompt[FILE_ROWS:].tobytes() == alone[FILE_ROWS:].tobytes()
    assert capsys.readouterr().err.endswith("adds 3 rows from random_uniform.\n")


def test_a_peft_adapter_transfers_too(prompt_file, tmp_path):
    _, value = prompt_file
    adapter = files.write_peft(value, str(tmp_path / "peft"))
    np.testing.assert_array_equal(_init(initializers.from_file(adapter, _table()), 8)[:FILE_ROWS],
                                  value)
    np.testing.assert_array_equal(_init(initializers.from_file(adapter, _table()), 2), value[:2])


@pytest.mark.parametrize("length", [4, FILE_ROWS, 10])
def test_a_file_of_another_width_is_one_clear_error(tmp_path, length, capsys):
    path = str(tmp_path / "narrow.npy")
    np.save(path, np.zeros((FILE_ROWS, EMBED // 2), np.float32))
    with pytest.raises(errors.PromptFileError) as error:
        initializers.from_file(path, _unreadable_table)(jax.random.key(0), (length, EMBED))
    assert str(error.value) == (f"{path}: expected a prompt of shape (P, {EMBED}), got "
                                f"({FILE_ROWS}, {EMBED // 2}).")
    assert capsys.readouterr().err == ""  # no note about a prompt that is refused


def test_the_fallback_is_set_from_gin(prompt_file):
    import gin  # pylint: disable=import-outside-toplevel

    from prompt_tuning.cli import gin_config  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training.config import TrainConfig  # pylint: disable=import-outside-toplevel

    path, value = prompt_file
    bindings = ["MIXTURE_OR_TASK_NAME = 'taskless_builtin_topic'",
                "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 4}",
                "INITIAL_CHECKPOINT_PATH = 'builtin:tiny_t5'", "MODEL_DIR = '/runs/x'",
                "TRAIN_STEPS = 10", f"PROMPT_FILE = '{path}'", "PROMPT_LENGTH = 9",
                # What --gin.initializers.from_file.fallback=@initializers.random_uniform() binds.
                "initializers.from_file.fallback = @initializers.random_uniform()"]
    try:
        gin.clear_config(clear_constants=True)
        gin_config.parse(["models/t5_1_1_tiny_prompt.gin", "prompts/from_file.gin",
                          "runs/prompt_finetune.gin"], bindings)
        config = gin_config.build(TrainConfig)
        init = config.prompt.initializer({"embedding": _table, "vocabulary": lambda: None})
        prompt = _init(init, config.prompt.length)
    finally:
        gin.clear_config(clear_constants=True)
    assert prompt[:FILE_ROWS].tobytes() == value.tobytes()
    alone = _init(initializers.random_uniform(), 9)
    assert prompt[FILE_ROWS:].tobytes() == alone[FILE_ROWS:].tobytes()


@pytest.mark.slow
def test_train_a_export_train_b_from_it_with_a_longer_prompt(tmp_path, monkeypatch):
    """Task A trains a 10-row prompt and exports it; task B starts from it with 12 rows."""
    from prompt_tuning import runtime  # pylint: disable=import-outside-toplevel
    from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel
    from tests.launch import tiny_run  # pylint: disable=import-outside-toplevel
    from tests.launch.runner import run_in_process  # pylint: disable=import-outside-toplevel

    no_eval = "--gin.train_config.TrainConfig.evaluation=None"  # only the prompts matter here
    run_a, run_b = str(tmp_path / "a"), str(tmp_path / "b")
    exported = str(tmp_path / "a_prompt.npy")
    result = run_in_process("prompt_tuning.train",
                            *tiny_run.train_flags(run_a, no_eval, train_steps=2))
    assert result.returncode == 0, result.stderr
    result = run_in_process("prompt_tuning.export_prompt", f"--model_dir={run_a}",
                            "--step=latest", f"--output={exported}")
    assert result.returncode == 0, result.stderr
    prompt_a = np.load(exported)
    assert prompt_a.shape == (tiny_run.PROMPT_LENGTH, tiny_run.EMBED_DIM)

    # B's step-0 prompt, as the training loop initialises it (before any step).
    initial = []
    real_init_prompt = runtime.init_prompt

    def recording_init_prompt(prompt_config, frozen, *args, **kwargs):
        # The real initialisation, its result recorded on the way out.
        prompt = real_init_prompt(prompt_config, frozen, *args, **kwargs)
        initial.append((np.asarray(prompt["prompt/prompt"]), frozen.embedding))
        return prompt

    monkeypatch.setattr(runtime, "init_prompt", recording_init_prompt)
    replaced = ("--gin_file=prompts/", "--gin.PROMPT_LENGTH=", "--gin.MIXTURE_OR_TASK_NAME=")
    flags = [flag for flag in tiny_run.train_flags(run_b, no_eval, train_steps=2)
             if not flag.startswith(replaced)]
    result = run_in_process("prompt_tuning.train", *flags, "--gin_file=prompts/from_file.gin",
                            f"--gin.PROMPT_FILE='{exported}'", "--gin.PROMPT_LENGTH=12",
                            "--gin.MIXTURE_OR_TASK_NAME='taskless_builtin_sentiment'")
    assert result.returncode == 0, result.stderr
    note = (f"note: prompt file {exported} has 10 rows; PROMPT_LENGTH=12 keeps them first and "
            "adds 2 rows from from_sampled_vocab.\n")
    assert result.stderr.count(note) == 1, result.stderr

    (prompt_b, embedding), = initial
    assert prompt_b.shape == (12, tiny_run.EMBED_DIM)
    assert prompt_b[:10].tobytes() == prompt_a.tobytes()
    # The two added rows are token embeddings among the first 5,000 (the sampled vocabulary).
    for row in prompt_b[10:]:
        assert (embedding[:initializers.DEFAULT_POPULATION_SIZE] == row).all(axis=1).any()
    # B trained from there: its checkpoint holds a 12-row prompt that has moved.
    trained_b, metadata = prompt_from_run(run_b, "latest")
    assert trained_b.shape == (12, tiny_run.EMBED_DIM) and metadata["step"] == 2
    assert metadata["task"] == "taskless_builtin_sentiment"
    assert not np.array_equal(trained_b, prompt_b)
