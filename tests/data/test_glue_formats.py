"""GLUE v002 text formats, character for character, on hand-made examples.

Each example goes through the text preprocessor of the registered task description
(`glue.TASKS`), so benchmark names, label names and feature orders are checked too.
"""

import numpy as np
import pytest
import tensorflow as tf

from prompt_tuning.data import glue, glue_text


def _py(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return value.item() if isinstance(value, np.generic) else value


def task_text(config, **example):
    """The registered `glue_{config}_v002` text preprocessing of one example."""
    task = next(t for t in glue.TASKS if t.name == f"glue_{config}_v002")
    tensors = {k: tf.constant(v, tf.int64) if k == "label" and isinstance(v, int)
               else tf.constant(v) for k, v in {"idx": 0, **example}.items()}
    (out,) = task.text_preprocessor(tf.data.Dataset.from_tensors(tensors)).as_numpy_iterator()
    return {k: _py(v) for k, v in out.items()}


@pytest.mark.parametrize("config, example, inputs, target", [
    ("cola", {"sentence": "The book was read.", "label": 1},
     "cola sentence: The book was read.", "acceptable"),
    ("sst2", {"sentence": "a dull film ", "label": 0}, "sst2 sentence: a dull film ", "negative"),
    ("mrpc", {"sentence1": "He left.", "sentence2": "He went away.", "label": 1},
     "mrpc sentence1: He left. sentence2: He went away.", "equivalent"),
    ("qqp", {"question1": "Why?", "question2": "How?", "label": 0},
     "qqp question1: Why? question2: How?", "not_duplicate"),
    ("mnli", {"premise": "A man sleeps.", "hypothesis": "A man is awake.", "label": 2},
     "mnli hypothesis: A man is awake. premise: A man sleeps.", "contradiction"),
    ("mnli_matched", {"premise": "p", "hypothesis": "h", "label": 1},
     "mnli hypothesis: h premise: p", "neutral"),
    ("mnli_mismatched", {"premise": "p", "hypothesis": "h", "label": 0},
     "mnli hypothesis: h premise: p", "entailment"),
    ("ax", {"premise": "p", "hypothesis": "h", "label": -1}, "mnli hypothesis: h premise: p",
     "<unk>"),
    ("qnli", {"question": "Where?", "sentence": "In Paris.", "label": 0},
     "qnli question: Where? sentence: In Paris.", "entailment"),
    # GLUE's RTE keeps TFDS' sentence1/sentence2; SuperGLUE's reads "rte hypothesis: ... premise:".
    ("rte", {"sentence1": "A cat sat on the mat.", "sentence2": "An animal is on the mat.",
             "label": 1},
     "rte sentence1: A cat sat on the mat. sentence2: An animal is on the mat.", "not_entailment"),
    ("wnli", {"sentence1": "s1", "sentence2": "s2", "label": 1}, "wnli sentence1: s1 sentence2: s2",
     "entailment"),  # WNLI's label order is reversed: 0 not_entailment, 1 entailment
    ("sst2", {"sentence": "unlabeled test", "label": -1}, "sst2 sentence: unlabeled test", "<unk>"),
])
def test_formats(config, example, inputs, target):
    out = task_text(config, idx=5, **example)
    assert out == {"inputs": inputs, "targets": target, "idx": 5}


@pytest.mark.parametrize("label, target", [
    (3.43, "3.4"), (0.0, "0.0"), (5.0, "5.0"), (4.99, "5.0"), (1.09, "1.0"), (2.31, "2.4"),
    (2.5, "2.4"),  # 12.5 rounds half to even (tf.round), as in T5
    (-1.0, "-1.0"),  # unlabeled test examples
])
def test_stsb_rounds_to_a_fifth(label, target):
    out = task_text("stsb", sentence1="A dog runs.", sentence2="A dog is running.", label=label)
    assert out == {"inputs": "stsb sentence1: A dog runs. sentence2: A dog is running.",
                   "targets": target, "idx": 0}


def test_label_text_unlabeled():
    names = ("no", "yes")
    labels = tf.constant([-1, 0, 1], tf.int64)
    assert [_py(glue_text.label_text(l, names).numpy()) for l in labels] == ["<unk>", "no", "yes"]
