"""`python -m prompt_tuning.show_tasks` on the built-in tasks (no download), and its user errors."""

from __future__ import annotations

import csv
import os

import pytest

from prompt_tuning.data import builtin
from tests.launch.runner import run_in_process, run_subprocess, snapshot

MODULE = "prompt_tuning.show_tasks"


def _first_rows(split: str, n: int) -> list[dict]:
    with open(os.path.join(builtin.DATA_DIR, f"{split}.tsv")) as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return rows[:n]


def test_lists_tasks_and_mixtures():
    result = run_in_process(MODULE)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name in ("builtin_sentiment", "builtin_topic", "taskless_builtin_sentiment"):
        assert f"  {name}" in lines
    assert "  builtin_pretrain: builtin_sentiment 1, builtin_topic 1" in lines


def test_prints_first_examples_with_token_ids():
    from prompt_tuning.data import vocab

    result = run_in_process(MODULE, "--task=builtin_sentiment", "--split=validation",
                            "--num_examples=2")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("builtin_sentiment (validation): first 2 example(s)")
    assert "[1]" in out and "[2]" not in out
    # The expected text and ids come from the data file and the vocabulary, not from the task.
    vocabulary = vocab.get_vocabulary()
    for row in _first_rows("validation", 2):
        text = f"sentiment sentence: {row['sentence']}"
        ids = vocabulary.encode(text) + [1]  # + EOS
        assert f"  inputs: {text!r}" in out
        assert f"  inputs ids ({len(ids)}): {ids}" in out
    first_label = _first_rows("validation", 1)[0]["sentiment"]
    assert f"  targets: {first_label!r}" in out
    assert f"  targets ids (2): {vocabulary.encode(first_label) + [1]}" in out


def test_a_mixture_lists_its_tasks():
    result = run_in_process(MODULE, "--task=builtin_pretrain")
    assert result.returncode == 0, result.stderr
    assert "Mixture builtin_pretrain: builtin_sentiment 1, builtin_topic 1" in result.stdout


@pytest.mark.parametrize("args, message", [
    (("--task=builtin_sentimen",), "error: Unknown task or mixture 'builtin_sentimen'"),
    (("--task=builtin_sentiment", "--split=dev"), "has no split 'dev'"),
    (("--task=builtin_sentiment", "--num_examples=0"), "--num_examples must be at least 1"),
    (("--tfds_data_dir=/no/such/dir",), "--tfds_data_dir /no/such/dir is not a directory"),
    (("--no_such_flag=1",), "error: Unknown command line flag 'no_such_flag'"),
])
def test_user_errors_are_one_line(args, message):
    result = run_in_process(MODULE, *args)
    assert result.returncode == 2  # each is a mistake of the command line
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


@pytest.fixture
def unprepared_tfds_task(tmp_path):
    import seqio

    name = "test_show_tasks_unprepared_rte"
    features = seqio.get_mixture_or_task("builtin_sentiment").output_features
    seqio.TaskRegistry.add(name, source=seqio.TfdsDataSource("super_glue/rte:1.0.2"),
                           output_features=features)
    yield name, tmp_path
    seqio.TaskRegistry.remove(name)
    seqio.set_tfds_data_dir_override(None)


def test_unprepared_tfds_data_is_a_clear_error_and_downloads_nothing(unprepared_tfds_task):
    name, data_dir = unprepared_tfds_task
    result = run_in_process(MODULE, f"--task={name}", f"--tfds_data_dir={data_dir}")
    assert result.returncode == 1
    assert "TFDS dataset super_glue/rte:1.0.2" in result.stderr
    assert "is not prepared" in result.stderr
    assert not any(f.endswith((".tfrecord", ".zip")) or "downloads" in f
                   for f in snapshot(str(data_dir)))


def test_command_line_unknown_task_exits_non_zero_without_traceback():
    result = run_subprocess(MODULE, "--task=no_such_task", timeout=300)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: Unknown task or mixture 'no_such_task'")
