"""The built-in tasks: shipped data, GLUE-like formats, taskless variants, labels learnable from text."""

import collections
import csv

import numpy as np
import pytest
import seqio

from prompt_tuning.data import builtin, tasks

LENGTHS = {"inputs": 32, "targets": 4}


def _examples(name, split="validation"):
    task = tasks.get_task_or_mixture(name)
    return list(task.get_dataset(LENGTHS, split=split, shuffle=False).as_numpy_iterator())


def _rows(split):
    with open(f"{builtin.DATA_DIR}/{split}.tsv", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def test_formats_follow_the_shipped_rows():
    rows = _rows("validation")
    sentiment, topic = _examples("builtin_sentiment"), _examples("builtin_topic")
    taskless = _examples("taskless_builtin_sentiment")
    assert len(sentiment) == len(topic) == len(taskless) == len(rows) == 400
    for row, s, t, tl in zip(rows[:20], sentiment, topic, taskless):
        assert s["inputs_pretokenized"].decode() == f"sentiment sentence: {row['sentence']}"
        assert t["inputs_pretokenized"].decode() == f"topic sentence: {row['sentence']}"
        assert tl["inputs_pretokenized"].decode() == f"sentence: {row['sentence']}"
        assert s["targets_pretokenized"].decode() == tl["targets_pretokenized"].decode() == row["sentiment"]
        assert t["targets_pretokenized"].decode() == row["topic"]
        assert builtin.LABELS["sentiment"][s["label"]] == row["sentiment"]
        assert int(s["idx"]) == int(row["idx"])
        assert s["targets"][-1] == 1  # EOS


def test_splits_are_disjoint_and_balanced():
    sentences = {split: {r["sentence"] for r in _rows(split)} for split in builtin.SPLITS}
    assert not sentences["train"] & sentences["validation"]
    assert not sentences["train"] & sentences["test"]
    counts = collections.Counter(r["sentiment"] for r in _rows("train"))
    assert set(counts) == {"negative", "positive"}
    assert min(counts.values()) / sum(counts.values()) > 0.4


def test_pretrain_mixture_and_label_classes():
    mixture = tasks.get_task_or_mixture("builtin_pretrain")
    assert sorted(t.name for t in mixture.tasks) == ["builtin_sentiment", "builtin_topic"]
    assert tasks.get_label_classes("taskless_builtin_sentiment") == ("negative", "positive")
    assert tasks.get_label_classes("builtin_topic") == ("food", "music", "sports", "travel")
    batch = next(seqio.get_dataset("builtin_pretrain", LENGTHS, seqio.EncDecFeatureConverter(pack=False),
                                   dataset_split="train", shuffle=True, seed=0,
                                   batch_size=8).as_numpy_iterator())
    assert batch["encoder_input_tokens"].shape == (8, 32)
    assert np.all(batch["decoder_target_tokens"][:, 1] == 1)  # one label token, then EOS


def test_unknown_task_names_close_matches():
    with pytest.raises(ValueError, match="Unknown task or mixture 'builtin_sentimnt'.*builtin_sentiment"):
        tasks.get_task_or_mixture("builtin_sentimnt")
