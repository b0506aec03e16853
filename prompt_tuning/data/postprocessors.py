"""Postprocessors: decoded model output (or target text) -> the values a task's metrics compare.

seqio calls them as `fn(text, example=..., is_target=...)`, where `text` is the decoded string and
`example` is the task's preprocessed example as numpy values (strings arrive as `bytes`, integer
fields as numpy scalars). Each one matches its T5 counterpart (`t5.data.postprocessors`).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

# The words T5's `wsc_simple` ignores when it compares a predicted referent with the true one.
WSC_DETERMINERS = frozenset({
    "a", "an", "few", "her", "his", "each", "every", "many", "much", "my", "our", "some", "that",
    "the", "their", "these", "this", "those", "which", "whose", "your",
})
MULTIRC_LABELS = ("False", "True")


@dataclasses.dataclass(frozen=True)
class ClassLabel:
    """The index of the text in `label_classes`, or -1 when it is not exactly one of them
    (no stripping or lower-casing, as T5's `string_label_to_class_id`).

    Rank classification reads `label_classes` to know which strings to score.
    """

    label_classes: Sequence[str]

    def __call__(self, text: Union[str, bytes], example: Optional[Any] = None,
                 is_target: bool = False) -> int:
        del example, is_target
        try:
            return list(self.label_classes).index(as_text(text))
        except ValueError:
            return -1


def as_text(value: Union[str, bytes, np.ndarray]) -> str:
    """A str from a str, UTF-8 bytes, or a 0-d numpy array holding either."""
    if isinstance(value, np.ndarray):
        value = value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


def _field(example: Mapping[str, Any], key: str) -> Any:
    """`example["a/b"]`, also accepted nested as `example["a"]["b"]`.

    T5's preprocessors flatten the MultiRC/ReCoRD indices into "idx/question"-style keys; the
    nested form is what an unflattened TFDS example would give.
    """
    if key in example:
        return example[key]
    head, _, rest = key.partition("/")
    if rest and head in example and isinstance(example[head], Mapping):
        return _field(example[head], rest)
    raise KeyError(f"The example has no field {key!r} (fields: {sorted(example)}).")


def _scalar(value: Any) -> Any:
    """A plain Python value from a numpy scalar, so groups print and hash like T5's ints."""
    return value.item() if isinstance(value, (np.generic, np.ndarray)) else value


def string_to_float(text: Union[str, bytes], example: Optional[Any] = None,
                    is_target: bool = False, default: float = -1.0) -> float:
    """The text as a float (STS-B), or `default` when it does not parse."""
    del example, is_target
    try:
        return float(as_text(text))
    except ValueError:
        return default


def multirc(text: Union[str, bytes], example: Optional[Mapping[str, Any]] = None,
            is_target: bool = False) -> dict[str, Any]:
    """`{"value": class id over ("False", "True")}`; a target also carries its question group.

    The group (idx/question) is what `metrics.multirc_exact_match` averages over.
    """
    result: dict[str, Any] = {"value": ClassLabel(MULTIRC_LABELS)(text)}
    if is_target:
        result["group"] = _scalar(_field(example, "idx/question"))
    return result


def record(text: Union[str, bytes], example: Optional[Mapping[str, Any]] = None,
           is_target: bool = False) -> dict[str, Any]:
    """A prediction -> `{"value": text}`; a target -> every gold answer and its (passage, query) group.

    ReCoRD examples are duplicated once per answer, so the target uses the full `answers` list (not
    the one answer in its `targets`) and the group lets `metrics.record_squad` keep one copy.
    """
    if not is_target:
        return {"value": as_text(text)}
    answers = [as_text(a) for a in _field(example, "answers")]
    group = (_scalar(_field(example, "idx/passage")), _scalar(_field(example, "idx/query")))
    return {"value": answers, "group": group}


def _clean_referent(text: Union[str, bytes]) -> str:
    """Lower-cased, stripped, and without determiners (words split on single spaces, as T5)."""
    words = as_text(text).strip().lower().split(" ")
    return " ".join(w for w in words if w not in WSC_DETERMINERS)


def wsc_referent_matches(prediction: str, referent: str) -> bool:
    """Whether a cleaned prediction names the cleaned referent, by T5's rule.

    A possessive on one side only ("the dog's" vs "the dog") is a mismatch; otherwise one word set
    must contain the other, so "cat" matches "the black cat" and vice versa.
    """
    if ("'" in prediction) != ("'" in referent):
        return False
    predicted, true = set(prediction.split(" ")), set(referent.split(" "))
    return predicted.issubset(true) or true.issubset(predicted)


def wsc_simple(text: Union[str, bytes], example: Optional[Mapping[str, Any]] = None,
               is_target: bool = False) -> int:
    """WSC (simple): 1 if the predicted referent is the candidate in `targets_pretokenized`, else 0.

    A target is the example's `label` (whether that candidate is the right referent), so accuracy
    compares "the model named the candidate" with "the candidate is right". A prediction that is
    empty after cleaning gives -1 (wrong either way).
    """
    if is_target:
        return int(_scalar(_field(example, "label")))
    prediction = _clean_referent(text)
    if not prediction:
        return -1
    referent = _clean_referent(_field(example, "targets_pretokenized"))
    return int(wsc_referent_matches(prediction, referent))
