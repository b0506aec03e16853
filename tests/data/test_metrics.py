"""Metrics against values worked out by hand (spec superglue.md §5, including its toy checks)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from prompt_tuning.data import metrics

# The spec's binary toy case: one invalid prediction (-1) at the end, whose target is 0.
T_BIN = [0, 1, 1, 0, 1, 0]
P_BIN = [0, 1, 0, 0, 1, -1]


def test_accuracy_counts_invalid_as_wrong():
    # right at positions 0, 1, 3, 4 -> 4/6
    assert metrics.accuracy(T_BIN, P_BIN) == {"accuracy": pytest.approx(66.6667, abs=1e-3)}


def test_f1_with_invalid_toy():
    # -1 (target 0) becomes 1 -> a false positive. TP = {1, 4}, FP = {5}, FN = {2}:
    # P = R = 2/3, F1 = 2/3.
    assert metrics.f1_score_with_invalid(T_BIN, P_BIN) == {"f1": pytest.approx(66.6667, abs=1e-3)}


def test_f1_with_invalid_on_a_positive_target_is_a_false_negative():
    # t=[1,1,0], p=[1,-1,0]: -1 (target 1) becomes 0. TP=1, FN=1, FP=0: P=1, R=1/2, F1=2/3.
    assert metrics.f1_score_with_invalid([1, 1, 0], [1, -1, 0])["f1"] == pytest.approx(200 / 3)
    # Dropping the invalid one instead would give 100: the invalid answer must cost.


def test_f1_with_invalid_leaves_the_callers_predictions_alone():
    predictions = np.array(P_BIN)
    metrics.f1_score_with_invalid(T_BIN, predictions)
    assert predictions.tolist() == P_BIN


# The spec's CB toy case.
T_CB = [0, 1, 2, 2, 0, 1]
P_CB = [0, 2, 2, 2, 0, -1]


def test_mean_3class_f1_toy():
    # class 0: TP 2, FP 0, FN 0 -> F1 1. class 1: TP 0 -> F1 0 (the -1 is no FP anywhere).
    # class 2: TP 2, FP 1 (position 1), FN 0 -> P 2/3, R 1, F1 0.8. mean = 1.8/3 = 0.6.
    fn = metrics.mean_multiclass_f1(3)
    assert fn(T_CB, P_CB) == {"mean_3class_f1": pytest.approx(60.0)}
    assert metrics.accuracy(T_CB, P_CB)["accuracy"] == pytest.approx(66.6667, abs=1e-3)


def test_mean_multiclass_f1_has_the_seqio_signature():
    import inspect
    fn = metrics.mean_multiclass_f1(3)
    assert list(inspect.signature(fn).parameters) == ["targets", "predictions"]
    assert fn.__name__ == "mean_3class_f1"


def test_matthews_corrcoef_with_invalid():
    # t=[0,1,1,0], p=[0,1,0,-1]; -1 is its own class. n=4, correct c=2,
    # true counts (-1,0,1)=(0,2,2), predicted counts=(1,2,1).
    # MCC = (c*n - Σ t_k p_k) / sqrt((n² - Σ p_k²)(n² - Σ t_k²)) = (8 - 6) / sqrt(10 * 8).
    result = metrics.matthews_corrcoef([0, 1, 1, 0], [0, 1, 0, -1])
    assert result == {"matthews_corrcoef": pytest.approx(100 * 2 / math.sqrt(80))}


def test_pearson_and_spearman_with_an_invalid_float():
    # t=[1,2,3], p=[1,2,4]: deviations (-1,0,1) and (-4/3,-1/3,5/3): cov sum 3,
    # Σdt²=2, Σdp²=14/3 -> r = 3 / sqrt(28/3).
    assert metrics.pearson_corrcoef([1.0, 2.0, 3.0], [1.0, 2.0, 4.0]) == {
        "pearson_corrcoef": pytest.approx(100 * 3 / math.sqrt(28 / 3))}
    # p=[2,3,-1] (last one unparsable -> -1.0): ranks (2,3,1) vs (1,2,3): d=(1,1,-2),
    # Σd²=6 -> rho = 1 - 6*6/(3*8) = -0.5.
    assert metrics.spearman_corrcoef([1.0, 2.0, 3.0], [2.0, 3.0, -1.0]) == {
        "spearman_corrcoef": pytest.approx(-50.0)}


# MultiRC: question 7 has three answer options, question 8 has two.
MULTIRC_TARGETS = [{"value": 1, "group": 7}, {"value": 0, "group": 7}, {"value": 1, "group": 7},
                   {"value": 1, "group": 8}, {"value": 0, "group": 8}]
MULTIRC_PREDICTIONS = [{"value": 1}, {"value": 0}, {"value": 1},   # q7 all right
                       {"value": 1}, {"value": -1}]                 # q8: an invalid answer


def test_multirc_f1_over_all_answers():
    # values t=[1,0,1,1,0], p=[1,0,1,1,-1] -> -1 (target 0) becomes 1: TP 3, FP 1, FN 0.
    # P = 3/4, R = 1, F1 = 2*0.75/1.75 = 6/7.
    result = metrics.multirc_f1_over_all_answers(MULTIRC_TARGETS, MULTIRC_PREDICTIONS)
    assert result == {"f1": pytest.approx(600 / 7)}


def test_multirc_exact_match_is_a_mean_over_questions():
    # q7 all match -> 100, q8 has the invalid answer -> 0; mean over 2 questions = 50
    # (a mean over the 5 answers would give 80).
    result = metrics.multirc_exact_match(MULTIRC_TARGETS, MULTIRC_PREDICTIONS)
    assert result == {"exact_match": pytest.approx(50.0)}


def test_multirc_spec_toy_f1_80_em_50():
    # q1: t=[1,0], p=[1,0] (match); q2: t=[1,1], p=[1,0] (no match).
    # TP 2, FN 1, FP 0: P 1, R 2/3, F1 0.8. EM = (100 + 0) / 2.
    targets = [{"value": 1, "group": 1}, {"value": 0, "group": 1},
               {"value": 1, "group": 2}, {"value": 1, "group": 2}]
    predictions = [{"value": 1}, {"value": 0}, {"value": 1}, {"value": 0}]
    assert metrics.multirc_f1_over_all_answers(targets, predictions)["f1"] == pytest.approx(80.0)
    assert metrics.multirc_exact_match(targets, predictions)["exact_match"] == pytest.approx(50.0)


def test_normalize_squad():
    assert metrics.normalize_squad("The  City, of Paris!") == "city of paris"
    assert metrics.normalize_squad("An apple a day") == "apple day"
    assert metrics.normalize_squad("theatre") == "theatre"  # articles only as whole words
    assert metrics.normalize_squad("U.S.") == "us"


def test_record_squad_keeps_the_first_copy_of_each_group():
    answers_a = ["Paris", "the city of Paris"]
    answers_b = ["Barack Obama"]
    # Group (0, 0) appears twice (one copy per answer); only the first copy's prediction counts.
    targets = [{"value": answers_a, "group": (0, 0)}, {"value": answers_a, "group": (0, 0)},
               {"value": answers_b, "group": (0, 1)}]
    predictions = [{"value": "paris."}, {"value": "London"}, {"value": "Obama"}]
    # (0,0): "paris" == "paris" -> EM 1, F1 1.
    # (0,1): "obama" vs "barack obama": EM 0; overlap 1, P 1, R 1/2, F1 2/3.
    # EM = 50, F1 = (1 + 2/3) / 2 = 83.33.  (Without dedup, "London" would count: EM 33.3.)
    result = metrics.record_squad(targets, predictions)
    assert result == {"em": pytest.approx(50.0), "f1": pytest.approx(250 / 3)}


def test_squad_f1_is_the_best_over_answers():
    # "the big red dog" -> "big red dog"; vs "red dog": overlap 2, P 1, R 2/3 -> 0.8;
    # vs "dog": P 1, R 1/3 -> 0.5. Best 0.8. No answer matches exactly.
    result = metrics.squad([["dog", "red dog"]], ["the big red dog"])
    assert result == {"em": 0.0, "f1": pytest.approx(80.0)}


def test_squad_no_overlap_scores_zero():
    assert metrics.squad([["cat"]], ["a dog"]) == {"em": 0.0, "f1": 0.0}


def test_record_squad_with_nothing_to_score_is_an_error():
    with pytest.raises(ValueError, match="No examples to score"):
        metrics.record_squad([], [])
