"""SuperGLUE text formats, character for character, on hand-made examples.

Each example goes through the text preprocessing of the registered task description
(`superglue.TASKS`: AX-b's rekey, then the text preprocessor), so the tests check the wiring
(benchmark names, label names, feature orders) as well as the formatters.
"""

import functools

import numpy as np
import pytest
import tensorflow as tf

from prompt_tuning.data import record, superglue, wsc

STRING_LISTS = ("entities", "answers", "candidates")


def _tensor(key, value):
    if key in STRING_LISTS:
        return tf.constant(value, tf.string)  # an empty list must still be strings
    if key == "label" and isinstance(value, int):
        return tf.constant(value, tf.int64)  # TFDS ClassLabel dtype
    return tf.nest.map_structure(tf.constant, value)  # idx: int32, as in TFDS


def _py(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_py(v) for v in value.tolist()]
    if isinstance(value, dict):
        return {k: _py(v) for k, v in value.items()}
    return value.item() if isinstance(value, np.generic) else value


def run(preprocessors, *examples):
    """Applies the preprocessors to the examples (dicts of Python values) -> list of dicts."""
    datasets = [tf.data.Dataset.from_tensors({k: _tensor(k, v) for k, v in ex.items()})
                for ex in examples]
    dataset = functools.reduce(lambda a, b: a.concatenate(b), datasets)
    for preprocess in preprocessors:
        dataset = preprocess(dataset)
    return [_py(ex) for ex in dataset.as_numpy_iterator()]


def task_text(name, *examples):
    """The registered task's text preprocessing (before tokenization) of the examples."""
    task = next(t for t in superglue.TASKS if t.name == name)
    return run([*task.before_text, task.text_preprocessor], *examples)


def test_boolq():
    out = task_text("super_glue_boolq_v102", {
        "passage": "The sky is blue on a clear day.", "question": "is the sky blue",
        "label": 1, "idx": 7})
    assert out == [{"inputs": "boolq passage: The sky is blue on a clear day. "
                              "question: is the sky blue", "targets": "True", "idx": 7}]


def test_rte_keeps_values_verbatim():
    out = task_text("super_glue_rte_v102", {
        "premise": "A cat sat on the mat.", "hypothesis": "An animal is on the mat.",
        "label": 0, "idx": 0},
        {"premise": " two  spaces ", "hypothesis": "x", "label": 1, "idx": 1})
    assert [o["inputs"] for o in out] == [
        "rte hypothesis: An animal is on the mat. premise: A cat sat on the mat.",
        "rte hypothesis: x premise:  two  spaces "]  # no stripping, no whitespace collapsing
    assert [o["targets"] for o in out] == ["entailment", "not_entailment"]


def test_cb_labels_and_unlabeled():
    examples = [{"premise": "p", "hypothesis": "h", "label": label, "idx": i}
                for i, label in enumerate((0, 1, 2, -1))]
    out = task_text("super_glue_cb_v102", *examples)
    assert out[0]["inputs"] == "cb hypothesis: h premise: p"
    assert [o["targets"] for o in out] == ["entailment", "contradiction", "neutral", "<unk>"]


def test_copa():
    out = task_text("super_glue_copa_v102", {
        "premise": "The man broke his toe.", "choice1": "He dropped a hammer on his foot.",
        "choice2": "He got a hole in his sock.", "question": "cause", "label": 0, "idx": 3})
    assert out == [{"inputs": "copa choice1: He dropped a hammer on his foot. choice2: He got a "
                              "hole in his sock. premise: The man broke his toe. question: cause",
                    "targets": "choice1", "idx": 3}]


def test_wic_ignores_offsets():
    out = task_text("super_glue_wic_v102", {
        "word": "bank", "sentence1": "He sat on the bank.", "sentence2": "She went to the bank.",
        "start1": 15, "end1": 19, "start2": 16, "end2": 20, "label": 0, "idx": 2})
    assert out == [{"inputs": "wic sentence1: He sat on the bank. sentence2: She went to the "
                              "bank. word: bank", "targets": "False", "idx": 2}]


def test_multirc_cleans_html_on_the_whole_string():
    out = task_text("super_glue_multirc_v102", {
        "paragraph": "<b>Sent 1: </b>Tom ran.<br><b>Sent 2: </b>He won.<br>",
        "question": "Who <b>won</b>?", "answer": "Tom<br>", "label": 1,
        "idx": {"paragraph": 4, "question": 5, "answer": 6}})
    assert out == [{"inputs": "multirc question: Who won? answer: Tom  paragraph: Sent 1: Tom ran. "
                              "Sent 2: He won. ",  # every <br> -> one space, even a trailing one
                    "targets": "True", "idx/paragraph": 4, "idx/question": 5, "idx/answer": 6}]


def test_multirc_unlabeled():
    out = task_text("super_glue_multirc_v102", {
        "paragraph": "p", "question": "q", "answer": "a", "label": -1,
        "idx": {"paragraph": 0, "question": 0, "answer": 0}})
    assert out[0]["targets"] == "<unk>"


def test_axb_is_rekeyed_to_rte():
    out = task_text("super_glue_axb_v102", {
        "sentence1": "The cat sat.", "sentence2": "A cat sat.", "label": -1, "idx": 9})
    assert out == [{"inputs": "rte hypothesis: A cat sat. premise: The cat sat.",
                    "targets": "<unk>", "idx": 9}]


def test_axg_reads_as_rte():
    out = task_text("super_glue_axg_v102", {
        "premise": "The nurse said she was late.", "hypothesis": "The nurse was late.",
        "label": 0, "idx": 1})
    assert out == [{"inputs": "rte hypothesis: The nurse was late. premise: The nurse said she "
                              "was late.", "targets": "entailment", "idx": 1}]


# ------------------------------------------------------------------ ReCoRD
def _record(passage="P.", answers=("Rome",), entities=("Rome", "Paris"), query="Q @placeholder"):
    return {"passage": passage, "query": query, "entities": list(entities),
            "answers": list(answers), "idx": {"passage": 1, "query": 2}}


def test_record_highlights():
    passage = "Tom met Anna in Paris.\n@highlight\nThey went to Rome\n@highlight\nIt was fun"
    assert _py(record.join_highlights(tf.constant(passage)).numpy()) == (
        "Tom met Anna in Paris. They went to Rome. It was fun")
    for mark in ('.', '?', '!', '"', "'"):
        assert _py(record.join_highlights(tf.constant(f"A{mark}\n@highlight\nB")).numpy()) == (
            f"A{mark} B")


def test_record_one_example_per_answer():
    out = task_text("super_glue_record_v102",
                    _record(answers=("Rome", "Roma"), entities=("Rome", "Paris", "Rome")))
    inputs = "record query: Q @placeholder entities: Rome, Paris, Rome passage: P."
    common = {"inputs": inputs, "answers": ["Rome", "Roma"], "idx/passage": 1, "idx/query": 2}
    assert out == [{**common, "targets": "Rome"}, {**common, "targets": "Roma"}]


def test_record_without_answers_gives_one_unk():
    out = task_text("super_glue_record_v102", _record(answers=()), _record(answers=("A",)))
    assert [(o["targets"], o["answers"]) for o in out] == [("<unk>", []), ("A", ["A"])]


# ------------------------------------------------------------------ WSC / DPR
def _wsc(text, span2_index, span2_text, span1_text="Tom", label=1, idx=0):
    return {"text": text, "span1_index": 2, "span1_text": span1_text, "span2_index": span2_index,
            "span2_text": span2_text, "label": label, "idx": idx}


MITCHELL = _wsc("Mitchell asked Tom if he could lend some money .", 4, "he")


def test_wsc_simple_marks_the_pronoun():
    out = task_text("super_glue_wsc_v102_simple_eval", MITCHELL)
    assert out == [{"inputs": "wsc: Mitchell asked Tom if *he* could lend some money .",
                    "targets": "Tom", "label": 1, "idx": 0}]


def test_wsc_simple_train_keeps_correct_referents_only():
    wrong = _wsc("Mitchell asked Tom if he could lend some money .", 4, "he", "Mitchell", 0, 1)
    train = task_text("super_glue_wsc_v102_simple_train", MITCHELL, wrong)
    evaluation = task_text("super_glue_wsc_v102_simple_eval", MITCHELL, wrong)
    assert [o["targets"] for o in train] == ["Tom"]
    assert [(o["targets"], o["label"]) for o in evaluation] == [("Tom", 1), ("Mitchell", 0)]


def test_wsc_simple_special_cases():
    texts = list(wsc.SPECIAL_CASES)
    out = task_text("super_glue_wsc_v102_simple_eval",
                    _wsc(texts[0], 20, "him"), _wsc(texts[1], 28, "it"))
    assert [o["inputs"] for o in out] == [
        'wsc: The boy continued to whip the pony , and eventually the pony threw him over. John '
        'laughed out quite loud. "Good for *him* ," he said.',
        "wsc: When they had eventually calmed down a bit , and had gotten home, Mr. Farley put "
        "the magic pebble in an iron safe . Some day they might want to use *it* , but really "
        "for now, what more could they wish for?"]


def test_wsc_simple_last_word_pronoun_keeps_a_trailing_space():
    # T5 joins [before, "X", after] with spaces, so an empty `after` leaves a space behind.
    out = task_text("super_glue_wsc_v102_simple_eval", _wsc("Tom saw him", 2, "him"))
    assert out[0]["inputs"] == "wsc: Tom saw *him* "


@pytest.mark.parametrize("example", [
    _wsc("he asked Tom for money .", 0, "he"),  # the first word cannot be marked
    _wsc("Mitchell asked Tom if he could", 9, "he"),  # past the end
    _wsc("Mitchell asked Tom if he could", 3, "he"),  # the word there is "if"
], ids=["first-word", "past-end", "wrong-word"])
def test_wsc_simple_rejects_inconsistent_spans(example):
    with pytest.raises(tf.errors.InvalidArgumentError):
        task_text("super_glue_wsc_v102_simple_eval", example)


def _dpr(sentence, pronoun, label=1):
    return {"sentence": sentence, "pronoun": pronoun, "candidates": ["Bob", "Tom"], "label": label}


def test_dpr_marks_the_first_standalone_pronoun():
    out = task_text("dpr_v001_simple",
                    _dpr("Bob asked Tom if he can lend some money.", "he"),
                    _dpr("He said he would go and he did.", "he", 0),
                    _dpr("The hero met him.", "him"),
                    _dpr("The hero met Tom, he said.", "he"))
    assert out == [
        {"inputs": "wsc: Bob asked Tom if *he* can lend some money.", "targets": "Tom"},
        {"inputs": "wsc: He said *he* would go and he did.", "targets": "Bob"},
        {"inputs": "wsc: The hero met *him*.", "targets": "Tom"},
        {"inputs": "wsc: The hero met Tom, *he* said.", "targets": "Tom"}]
