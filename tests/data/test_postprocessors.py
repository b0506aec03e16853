"""Postprocessors against hand-worked cases of T5's rules (spec superglue.md §3)."""

from __future__ import annotations

import numpy as np
import pytest

from prompt_tuning.data import postprocessors as pp

CB = pp.ClassLabel(("entailment", "contradiction", "neutral"))


@pytest.mark.parametrize("text, expected", [
    ("entailment", 0), ("neutral", 2),
    (b"contradiction", 1),            # seqio may hand bytes
    (" entailment", -1),              # no stripping
    ("entailment ", -1),
    ("Entailment", -1),               # no lower-casing
    ("entail", -1), ("", -1),
])
def test_class_label_exact_membership(text, expected):
    assert CB(text) == expected
    assert CB(text, example={"idx": np.int32(3)}, is_target=True) == expected


def test_class_label_keeps_label_classes_for_rank_classification():
    assert tuple(CB.label_classes) == ("entailment", "contradiction", "neutral")


@pytest.mark.parametrize("text, expected", [
    ("3.4", 3.4), (b"0.0", 0.0), ("5", 5.0),
    ("3,4", -1.0), ("", -1.0), ("three", -1.0),
])
def test_string_to_float(text, expected):
    assert pp.string_to_float(text) == expected


def test_string_to_float_custom_default():
    assert pp.string_to_float("x", default=0.5) == 0.5


MULTIRC_EXAMPLE = {"idx/paragraph": np.int32(4), "idx/question": np.int32(7),
                   "idx/answer": np.int32(2), "targets_pretokenized": b"True"}


def test_multirc_prediction_is_a_class_id_without_group():
    assert pp.multirc("True", example=MULTIRC_EXAMPLE) == {"value": 1}
    assert pp.multirc("False", example=MULTIRC_EXAMPLE) == {"value": 0}
    assert pp.multirc("true", example=MULTIRC_EXAMPLE) == {"value": -1}


def test_multirc_target_carries_question_group():
    result = pp.multirc("True", example=MULTIRC_EXAMPLE, is_target=True)
    assert result == {"value": 1, "group": 7}
    assert type(result["group"]) is int  # plain int, hashable and printable like T5's


def test_multirc_accepts_nested_idx():
    nested = {"idx": {"paragraph": np.int32(4), "question": np.int32(9), "answer": np.int32(0)}}
    assert pp.multirc("False", example=nested, is_target=True) == {"value": 0, "group": 9}


def test_multirc_target_without_question_index_is_a_clear_error():
    with pytest.raises(KeyError, match="idx/question"):
        pp.multirc("True", example={"idx": np.int32(1)}, is_target=True)


RECORD_EXAMPLE = {"answers": np.array([b"Paris", b"the city of Paris"], dtype=object),
                  "idx/passage": np.int32(11), "idx/query": np.int32(5),
                  "targets_pretokenized": b"the city of Paris"}


def test_record_prediction_is_the_text():
    assert pp.record("Paris", example=RECORD_EXAMPLE) == {"value": "Paris"}
    assert pp.record(b"Rome", example=RECORD_EXAMPLE) == {"value": "Rome"}


def test_record_target_is_every_answer_and_the_group():
    # The target text is one answer; the metric needs all of them.
    result = pp.record("the city of Paris", example=RECORD_EXAMPLE, is_target=True)
    assert result == {"value": ["Paris", "the city of Paris"], "group": (11, 5)}


def _wsc(candidate: str) -> dict:
    return {"targets_pretokenized": candidate.encode(), "label": np.int64(1), "idx": np.int32(0)}


@pytest.mark.parametrize("prediction, candidate, expected", [
    ("Tom", "Tom", 1),
    (" TOM ", "tom", 1),                       # strip + lower-case
    ("the dog", "dog", 1),                     # determiners are dropped
    ("dog", "The big dog", 1),                 # {dog} is a subset of {big, dog}
    ("The big dog", "dog", 1),                 # and the other way round
    ("the cat", "the dog", 0),                 # {cat} vs {dog}: neither contains the other
    ("big cat", "small dog", 0),
    ("Tom's dog", "Tom", 0),                   # apostrophe on one side only
    ("Tom", "Tom's dog", 0),
    ("Tom's dog", "tom's dog", 1),             # apostrophe on both sides: compare words
    ("his dog", "the dog", 1),                 # both clean to "dog"
    ("", "Tom", -1),                           # empty prediction
    ("the", "Tom", -1),                        # empty after dropping determiners
    ("   ", "Tom", -1),
])
def test_wsc_simple_prediction(prediction, candidate, expected):
    assert pp.wsc_simple(prediction, example=_wsc(candidate)) == expected


def test_wsc_simple_splits_on_single_spaces_like_t5():
    # "the  dog" splits into ["the", "", "dog"] -> " dog" -> words {"", "dog"} ⊇ {"dog"}: match.
    assert pp.wsc_simple("the  dog", example=_wsc("dog")) == 1
    # "the   the" -> ["the", "", "", "the"] -> " " (not empty, so not -1) -> {""}: no match.
    # Splitting on any whitespace would instead give an empty prediction and -1.
    assert pp.wsc_simple("the   the", example=_wsc("Tom")) == 0


def test_wsc_simple_target_is_the_label():
    example = {**_wsc("Tom"), "label": np.int64(0)}
    assert pp.wsc_simple("Tom", example=example, is_target=True) == 0
    assert pp.wsc_simple("Tom", example=_wsc("Tom"), is_target=True) == 1


def test_wsc_referent_matches_is_symmetric_in_subset():
    assert pp.wsc_referent_matches("a b", "b")
    assert pp.wsc_referent_matches("b", "a b")
    assert not pp.wsc_referent_matches("a c", "a b")
