"""The `_examples` task variant (the reference's): predictions carry their example's text.

`glue_sst2_v200_examples` reads and scores exactly as `glue_sst2_v200`, but each postprocessed
prediction is a dict that also holds the decoded text and the example's input and target text,
and the metrics include a text metric: a few examples, and a few the model got wrong, as
"input / target / prediction". Evaluation writes those samples to TensorBoard (training) and to
eval_results.json (eval), so one can read what the prompt makes the model say.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Any, Callable, Mapping, Optional, Sequence

from prompt_tuning.data.postprocessors import as_text

PREDICTION = "prediction"
PREDICTION_TEXT = "prediction_pretokenized"
INPUT_TEXT = "inputs_pretokenized"
TARGET_TEXT = "targets_pretokenized"
SUFFIX = "_examples"


@dataclasses.dataclass(frozen=True)
class WithExample:
    """A postprocessor whose predictions also carry the decoded text and the example's text;
    targets are postprocessed as by the wrapped function alone."""

    postprocess_fn: Optional[Callable]

    def __call__(self, output: Any, example: Optional[Mapping[str, Any]] = None,
                 is_target: bool = False) -> Any:
        value = (output if self.postprocess_fn is None
                 else self.postprocess_fn(output, example=example, is_target=is_target))
        if is_target:
            return value
        example = example or {}
        return {PREDICTION: value, PREDICTION_TEXT: as_text(output),
                INPUT_TEXT: as_text(example.get(INPUT_TEXT, b"")),
                TARGET_TEXT: as_text(example.get(TARGET_TEXT, b""))}

    @property
    def label_classes(self) -> Optional[Sequence[str]]:
        """The wrapped postprocessor's labels (rank classification scores these)."""
        return getattr(self.postprocess_fn, "label_classes", None)


@dataclasses.dataclass(frozen=True)
class OnPredictions:
    """A metric `fn(targets, predictions)` applied to the `prediction` of `WithExample`'s dicts."""

    metric_fn: Callable

    def __call__(self, targets: Sequence, predictions: Sequence[Mapping]) -> dict:
        return self.metric_fn(targets, [p[PREDICTION] for p in predictions])


@dataclasses.dataclass(frozen=True)
class TextSamples:
    """A text metric: `num` examples, and `num` of those predicted wrong, with their text."""

    num: int = 8
    seed: int = 0

    def __call__(self, targets: Sequence, predictions: Sequence[Mapping]) -> dict:
        from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

        rng = random.Random(self.seed)
        wrong = [p for p, t in zip(predictions, targets) if p[PREDICTION] != t]
        return {"samples": seqio.metrics.Text(_format(_sample(rng, predictions, self.num))),
                "wrong samples": seqio.metrics.Text(_format(_sample(rng, wrong, self.num)))}


def _sample(rng: random.Random, items: Sequence, num: int) -> list:
    return rng.sample(list(items), min(num, len(items)))


def _format(predictions: Sequence[Mapping]) -> str:
    return "\n\n".join(f"input: {p[INPUT_TEXT]}\ntarget: {p[TARGET_TEXT]}\n"
                       f"prediction: {p[PREDICTION_TEXT]}" for p in predictions)


def with_examples(postprocess_fn: Optional[Callable], metric_fns: Sequence[Callable]
                  ) -> tuple[WithExample, list[Callable]]:
    """The `_examples` variant's postprocessor and metrics (the scores plus the text samples);
    a task without metrics (test-only, train-only) gets no samples either."""
    metrics = [OnPredictions(fn) for fn in metric_fns]
    return WithExample(postprocess_fn), (metrics + [TextSamples()] if metrics else [])
