"""GLUE v002 (TFDS `glue/<config>:1.0.0`) as T5 defines it, plus the taskless_/task_index_ variants.

  glue_rte_v002    "rte sentence1: ... sentence2: ..." -> "entailment" | "not_entailment"
                   (SuperGLUE's RTE reads "rte hypothesis: ... premise: ..." instead)
  glue_stsb_v002   "stsb sentence1: ... sentence2: ..." -> the score rounded to 0.2, e.g. "3.4"

Tasks: glue_{cola,sst2,mrpc,qqp,stsb,mnli,mnli_matched,mnli_mismatched,qnli,rte,wnli,ax}_v002,
each also as taskless_glue_* and task_index_glue_*. MNLI's own validation/test splits are
`validation_matched` etc.; the mnli_matched / mnli_mismatched configs hold the same data as plain
`validation`/`test`, which is why they exist as tasks. AX is MNLI's diagnostic (test only).
Mixtures (per variant prefix): glue_v002_proportional (rates = training-set sizes; WNLI left out,
as T5 trains WSC/DPR instead) and glue_mnli_and_dev_v002.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from prompt_tuning.data import glue_text, metrics, postprocessors, vocab
from prompt_tuning.data.text_tasks import TextTask, register_family, task_indices

# TFDS config order; the MNLI evaluation sets and AX are cast as MNLI.
CONFIGS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli_mismatched", "mnli_matched",
           "qnli", "rte", "wnli", "ax")
INDEX = task_indices(CONFIGS, {"ax": "mnli", "mnli_mismatched": "mnli", "mnli_matched": "mnli"})
VERSION = "1.0.0"
ALL_SPLITS = ("train", "validation", "test")
MNLI_SPLITS = ("train", "validation_matched", "validation_mismatched", "test_matched",
               "test_mismatched")
MNLI = ("entailment", "neutral", "contradiction")
NLI = ("entailment", "not_entailment")


def _classification(config: str, label_names: Sequence[str], metric_fns: Sequence[Callable],
                    benchmark_name: Optional[str] = None,
                    splits: Sequence[str] = ALL_SPLITS) -> TextTask:
    """A GLUE task in the generic text format, scored on label ids."""
    return TextTask(
        name=f"glue_{config}_v002", tfds_name=f"glue/{config}:{VERSION}", splits=splits,
        text_preprocessor=glue_text.glue_text(benchmark_name or config, label_names,
                                              glue_text.GLUE_FEATURES[config]),
        postprocess_fn=postprocessors.ClassLabel(tuple(label_names)), metric_fns=metric_fns,
        index=INDEX[config])


TASKS: tuple[TextTask, ...] = (
    _classification("cola", ("unacceptable", "acceptable"), [metrics.matthews_corrcoef]),
    _classification("sst2", ("negative", "positive"), [metrics.accuracy]),
    _classification("mrpc", ("not_equivalent", "equivalent"),
                    [metrics.f1_score_with_invalid, metrics.accuracy]),
    _classification("qqp", ("not_duplicate", "duplicate"),
                    [metrics.f1_score_with_invalid, metrics.accuracy]),
    TextTask(name="glue_stsb_v002", tfds_name=f"glue/stsb:{VERSION}", splits=ALL_SPLITS,
             text_preprocessor=glue_text.stsb_text, postprocess_fn=postprocessors.string_to_float,
             metric_fns=[metrics.pearson_corrcoef, metrics.spearman_corrcoef],
             index=INDEX["stsb"]),
    _classification("mnli", MNLI, [metrics.accuracy], splits=MNLI_SPLITS),
    _classification("mnli_mismatched", MNLI, [metrics.accuracy], benchmark_name="mnli",
                    splits=("validation", "test")),
    _classification("mnli_matched", MNLI, [metrics.accuracy], benchmark_name="mnli",
                    splits=("validation", "test")),
    _classification("qnli", NLI, [metrics.accuracy]),
    _classification("rte", NLI, [metrics.accuracy]),
    _classification("wnli", ("not_entailment", "entailment"), [metrics.accuracy]),
    _classification("ax", MNLI, [], benchmark_name="mnli", splits=("test",)),
)

# Training-set sizes (T5's rates); the evaluation-only tasks take part at rate 0.
PROPORTIONAL_RATES: Mapping[str, float] = {
    "glue_cola_v002": 8_551.0,
    "glue_sst2_v002": 67_349.0,
    "glue_mrpc_v002": 3_668.0,
    "glue_qqp_v002": 363_849.0,
    "glue_stsb_v002": 5_749.0,
    "glue_mnli_v002": 392_702.0,
    "glue_qnli_v002": 104_743.0,
    "glue_rte_v002": 2_490.0,
    "glue_mnli_mismatched_v002": 0.0,
    "glue_mnli_matched_v002": 0.0,
    "glue_ax_v002": 0.0,
}
MNLI_AND_DEV = ("glue_mnli_v002", "glue_mnli_mismatched_v002", "glue_mnli_matched_v002")


def register(vocabulary: Any = None) -> None:
    """Registers the GLUE tasks in every variant and, per variant, their mixtures
    (`{prefix}glue_v002_proportional`, `{prefix}glue_mnli_and_dev_v002`)."""
    register_family(TASKS, vocabulary or vocab.get_vocabulary(),
                    {"glue_v002_proportional": PROPORTIONAL_RATES,
                     "glue_mnli_and_dev_v002": dict.fromkeys(MNLI_AND_DEV, 1.0)})
