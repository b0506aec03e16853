"""GLUE as T5 defines it, in two data versions, plus the taskless_/task_index_/_examples variants.

  glue_*_v200      TFDS `glue/<config>:2.0.0`, the version today's TFDS builds (the
                   reference's names: `taskless_glue_sst2_v200_examples`, ...)
  glue_*_v002      TFDS `glue/<config>:1.0.0`, T5's original; today's TFDS no longer builds it,
                   so it is for data prepared earlier (`tasks.check_prepared` names v200 when
                   it is missing)

  glue_rte_v002    "rte sentence1: ... sentence2: ..." -> "entailment" | "not_entailment"
                   (SuperGLUE's RTE reads "rte hypothesis: ... premise: ..." instead)
  glue_stsb_v002   "stsb sentence1: ... sentence2: ..." -> the score rounded to 0.2, e.g. "3.4"

Tasks: glue_{cola,sst2,mrpc,qqp,stsb,mnli,mnli_matched,mnli_mismatched,qnli,rte,wnli,ax}_{v002,v200},
each also as taskless_glue_* and task_index_glue_*, and each of those with `_examples`. MNLI's own validation/test splits are
`validation_matched` etc.; the mnli_matched / mnli_mismatched configs hold the same data as plain
`validation`/`test`, which is why they exist as tasks. AX is MNLI's diagnostic (test only).
Mixtures (per variant and version): glue_v002_proportional (rates = training-set sizes; WNLI left
out, as T5 trains WSC/DPR instead) and glue_mnli_and_dev_v002 (v200 alike).
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping, Optional, Sequence

from prompt_tuning.data import glue_text, metrics, postprocessors, vocab
from prompt_tuning.data.text_tasks import TextTask, register_family, task_indices

# TFDS config order; the MNLI evaluation sets and AX are cast as MNLI.
CONFIGS = ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "mnli_mismatched", "mnli_matched",
           "qnli", "rte", "wnli", "ax")
INDEX = task_indices(CONFIGS, {"ax": "mnli", "mnli_mismatched": "mnli", "mnli_matched": "mnli"})
# Task name version -> TFDS version.
VERSIONS: Mapping[str, str] = {"v002": "1.0.0", "v200": "2.0.0"}
ALL_SPLITS = ("train", "validation", "test")
MNLI_SPLITS = ("train", "validation_matched", "validation_mismatched", "test_matched",
               "test_mismatched")
MNLI = ("entailment", "neutral", "contradiction")
NLI = ("entailment", "not_entailment")


def _classification(config: str, label_names: Sequence[str], metric_fns: Sequence[Callable],
                    version: str, benchmark_name: Optional[str] = None,
                    splits: Sequence[str] = ALL_SPLITS) -> TextTask:
    """A GLUE task in the generic text format, scored on label ids."""
    return TextTask(
        name=f"glue_{config}_{version}", tfds_name=f"glue/{config}:{VERSIONS[version]}",
        splits=splits,
        text_preprocessor=glue_text.glue_text(benchmark_name or config, label_names,
                                              glue_text.GLUE_FEATURES[config]),
        postprocess_fn=postprocessors.ClassLabel(tuple(label_names)), metric_fns=metric_fns,
        index=INDEX[config])


def tasks(version: str) -> tuple[TextTask, ...]:
    """The GLUE tasks of one version (`VERSIONS`): the same text, read from its TFDS version."""
    c = functools.partial(_classification, version=version)
    return (
        c("cola", ("unacceptable", "acceptable"), [metrics.matthews_corrcoef]),
        c("sst2", ("negative", "positive"), [metrics.accuracy]),
        c("mrpc", ("not_equivalent", "equivalent"),
          [metrics.f1_score_with_invalid, metrics.accuracy]),
        c("qqp", ("not_duplicate", "duplicate"), [metrics.f1_score_with_invalid, metrics.accuracy]),
        TextTask(name=f"glue_stsb_{version}", tfds_name=f"glue/stsb:{VERSIONS[version]}",
                 splits=ALL_SPLITS, text_preprocessor=glue_text.stsb_text,
                 postprocess_fn=postprocessors.string_to_float,
                 metric_fns=[metrics.pearson_corrcoef, metrics.spearman_corrcoef],
                 index=INDEX["stsb"]),
        c("mnli", MNLI, [metrics.accuracy], splits=MNLI_SPLITS),
        c("mnli_mismatched", MNLI, [metrics.accuracy], benchmark_name="mnli",
          splits=("validation", "test")),
        c("mnli_matched", MNLI, [metrics.accuracy], benchmark_name="mnli",
          splits=("validation", "test")),
        c("qnli", NLI, [metrics.accuracy]),
        c("rte", NLI, [metrics.accuracy]),
        c("wnli", ("not_entailment", "entailment"), [metrics.accuracy]),
        c("ax", MNLI, [], benchmark_name="mnli", splits=("test",)),
    )


TASKS: tuple[TextTask, ...] = tuple(t for version in VERSIONS for t in tasks(version))

# Training-set sizes (T5's rates); the evaluation-only tasks take part at rate 0.
PROPORTIONAL_RATES: Mapping[str, float] = {
    "cola": 8_551.0,
    "sst2": 67_349.0,
    "mrpc": 3_668.0,
    "qqp": 363_849.0,
    "stsb": 5_749.0,
    "mnli": 392_702.0,
    "qnli": 104_743.0,
    "rte": 2_490.0,
    "mnli_mismatched": 0.0,
    "mnli_matched": 0.0,
    "ax": 0.0,
}
MNLI_AND_DEV = ("mnli", "mnli_mismatched", "mnli_matched")


def _mixtures(version: str) -> dict[str, dict[str, float]]:
    def name(config: str) -> str:
        return f"glue_{config}_{version}"

    return {f"glue_{version}_proportional":
            {name(c): rate for c, rate in PROPORTIONAL_RATES.items()},
            f"glue_mnli_and_dev_{version}": dict.fromkeys(map(name, MNLI_AND_DEV), 1.0)}


def register(vocabulary: Any = None) -> None:
    """Registers the GLUE tasks of both versions in every variant and, per variant and version,
    their mixtures (`{prefix}glue_v200_proportional{suffix}`, `{prefix}glue_mnli_and_dev_v200`)."""
    register_family(TASKS, vocabulary or vocab.get_seqio_vocabulary(),
                    {name: rates for version in VERSIONS for name, rates in _mixtures(version).items()})
