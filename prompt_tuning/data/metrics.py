"""Metrics equal to T5's (`t5.evaluation.metrics`), as percentages.

Each is `fn(targets, predictions) -> {name: value}`, the seqio metric signature (seqio reads the
positional argument names, so returned closures keep them). Key names are T5's, so scores compare
with published T5 / prompt-tuning numbers. Invalid predictions (-1 from a postprocessor) are
always counted as wrong, never dropped.
"""

from __future__ import annotations

import collections
import re
import string
from typing import Any, Callable, Hashable, Sequence

import numpy as np
import scipy.stats
import sklearn.metrics

_PUNCTUATION = frozenset(string.punctuation)
MetricFn = Callable[[Sequence[Any], Sequence[Any]], dict[str, float]]


def accuracy(targets: Sequence, predictions: Sequence) -> dict[str, float]:
    """Exact-match accuracy of class ids; an invalid prediction (-1) counts as wrong."""
    return {"accuracy": 100.0 * float(sklearn.metrics.accuracy_score(targets, predictions))}


def f1_score_with_invalid(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Binary F1 (positive class 1) where a prediction outside {0, 1} is made wrong on purpose.

    Replacing it with `1 - target` turns an invalid answer into a false negative or false positive,
    as T5 does (MRPC, QQP, MultiRC's F1a).
    """
    targets = np.asarray(targets)
    # A copy: T5 edits its array in place, which would change the caller's predictions.
    predictions = np.array(predictions)
    invalid = (predictions != 0) & (predictions != 1)
    predictions[invalid] = 1 - targets[invalid]
    return {"f1": 100.0 * float(sklearn.metrics.f1_score(targets, predictions, zero_division=0))}


def mean_multiclass_f1(num_classes: int) -> MetricFn:
    """Macro F1 over classes 0..num_classes-1 (CB: `mean_3class_f1`).

    Restricting `labels` means an invalid -1 costs its true class recall but is no false positive
    of any class, exactly as T5's `fbeta_score(beta=1, labels=range(n), average="macro")`.
    """
    key = f"mean_{num_classes}class_f1"

    def mean_f1(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
        score = sklearn.metrics.fbeta_score(targets, predictions, beta=1,
                                            labels=list(range(num_classes)), average="macro",
                                            zero_division=0)
        return {key: 100.0 * float(score)}

    mean_f1.__name__ = key
    return mean_f1


def matthews_corrcoef(targets: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Matthews correlation (CoLA); -1 is treated as one more class, as in sklearn/T5."""
    return {"matthews_corrcoef":
            100.0 * float(sklearn.metrics.matthews_corrcoef(targets, predictions))}


def pearson_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Pearson correlation (STS-B); NaN when either side is constant, as scipy gives T5."""
    return {"pearson_corrcoef": 100.0 * float(scipy.stats.pearsonr(targets, predictions)[0])}


def spearman_corrcoef(targets: Sequence[float], predictions: Sequence[float]) -> dict[str, float]:
    """Spearman rank correlation (STS-B)."""
    return {"spearman_corrcoef": 100.0 * float(scipy.stats.spearmanr(targets, predictions)[0])}


# ---------------------------------------------------------------- MultiRC
def multirc_f1_over_all_answers(targets: Sequence[dict], predictions: Sequence[dict]
                                ) -> dict[str, float]:
    """MultiRC F1a: `f1_score_with_invalid` over every answer option (key `f1`)."""
    return f1_score_with_invalid([t["value"] for t in targets], [p["value"] for p in predictions])


def all_match(targets: Sequence, predictions: Sequence) -> dict[str, float]:
    """100 if the lists are equal element by element, else 0."""
    return {"exact_match": 100.0 * float(np.array_equal(targets, predictions))}


def mean_group_metric(metric_fn: MetricFn, group_key: str = "group",
                      value_key: str = "value") -> MetricFn:
    """`metric_fn` applied within each target group, then averaged over groups (T5's)."""

    def group_metric(targets: Sequence[dict], predictions: Sequence[dict]) -> dict[str, float]:
        groups: dict[Hashable, tuple[list, list]] = collections.defaultdict(lambda: ([], []))
        for target, prediction in zip(targets, predictions):
            group = groups[target[group_key]]
            group[0].append(target[value_key])
            group[1].append(prediction[value_key])
        scores = collections.defaultdict(list)
        for group_targets, group_predictions in groups.values():
            for name, value in metric_fn(group_targets, group_predictions).items():
                scores[name].append(value)
        return {name: float(np.mean(values)) for name, values in scores.items()}

    return group_metric


def multirc_exact_match(targets: Sequence[dict], predictions: Sequence[dict]) -> dict[str, float]:
    """MultiRC EM: the share of questions whose every answer option is right (key `exact_match`)."""
    return mean_group_metric(all_match)(targets, predictions)


# ---------------------------------------------------------------- ReCoRD / SQuAD
def deduplicate_metric(metric_fn: MetricFn, group_key: str = "group",
                       value_key: str = "value") -> MetricFn:
    """`metric_fn` on the first example of each group only (T5's).

    ReCoRD repeats an example once per gold answer; each copy has the same full answer list, and
    only the first copy's prediction is scored.
    """

    def deduplicated(targets: Sequence[dict], predictions: Sequence[dict]) -> dict[str, float]:
        first: dict[Hashable, tuple[Any, Any]] = {}
        for target, prediction in zip(targets, predictions):
            first.setdefault(target[group_key], (target[value_key], prediction[value_key]))
        if not first:
            raise ValueError("No examples to score.")
        kept_targets, kept_predictions = zip(*first.values())
        return metric_fn(list(kept_targets), list(kept_predictions))

    return deduplicated


def normalize_squad(text: str) -> str:
    """SQuAD normalization: lower-case, drop punctuation, articles -> space, collapse spaces."""
    text = text.lower()
    text = "".join(c for c in text if c not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())



def _token_f1(target: str, prediction: str) -> float:
    """Bag-of-words F1 of two normalized strings."""
    target_tokens, prediction_tokens = target.split(), prediction.split()
    overlap = collections.Counter(target_tokens) & collections.Counter(prediction_tokens)
    num_same = sum(overlap.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(target_tokens)
    return 2 * precision * recall / (precision + recall)


def squad(targets: Sequence[Sequence[str]], predictions: Sequence[str]) -> dict[str, float]:
    """SQuAD EM and F1: per example the best over its gold answers, averaged, as percentages."""
    if len(targets) != len(predictions):
        raise ValueError(f"{len(targets)} targets but {len(predictions)} predictions.")
    answers = [[normalize_squad(a) for a in answer_list] for answer_list in targets]
    guesses = [normalize_squad(p) for p in predictions]
    em = [max(float(a == g) for a in answer_list) for answer_list, g in zip(answers, guesses)]
    f1 = [max(_token_f1(a, g) for a in answer_list) for answer_list, g in zip(answers, guesses)]
    return {"em": 100.0 * float(np.mean(em)), "f1": 100.0 * float(np.mean(f1))}


def record_squad(targets: Sequence[dict], predictions: Sequence[dict]) -> dict[str, float]:
    """ReCoRD: SQuAD EM/F1 on the first copy of each (passage, query) (keys `em`, `f1`)."""
    return deduplicate_metric(squad)(targets, predictions)
