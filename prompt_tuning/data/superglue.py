"""SuperGLUE v102 (TFDS `super_glue/<config>:1.0.2`) as T5 defines it, and Lester et al.'s variants.

Every task comes in three forms (the prefixes of `VARIANTS`):

  super_glue_rte_v102             "rte hypothesis: ... premise: ..." -> entailment | not_entailment
  taskless_super_glue_rte_v102    "hypothesis: ... premise: ..."     (the paper's setting)
  task_index_super_glue_rte_v102  [<extra_id_5>] + tokens("hypothesis: ... premise: ...")

Tasks: super_glue_{boolq,cb,copa,multirc,record,rte,wic,axb,axg}_v102,
super_glue_wsc_v102_simple_{train,eval} (WSC as referent generation) and dpr_v001_simple.
Mixtures (per variant prefix): super_glue_v102_proportional (rates = training-set sizes) and
super_glue_wsc_and_dev_v102_simple (WSC train + eval).

Tasks are data: a `TextTask` per task (`text_tasks.py`); `register()` turns each into its
variants.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Optional, Sequence

from prompt_tuning.data import glue_text, metrics, postprocessors, record, vocab, wsc
from prompt_tuning.data.text_tasks import (Preprocessor, TextTask, register_family,
                                           task_indices)

# ------------------------------------------------------------------ the SuperGLUE tasks
# TFDS config order; T5 uses wsc.fixed (not wsc) and casts the diagnostics AX-b/AX-g as RTE.
CONFIGS = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "wsc", "wsc.fixed", "axb",
           "axg")
INDEX = task_indices(CONFIGS, {"wsc.fixed": "wsc", "axb": "rte", "axg": "rte"})
VERSION = "1.0.2"
ALL_SPLITS = ("train", "validation", "test")
BOOL = ("False", "True")
RTE = ("entailment", "not_entailment")


def _classification(config: str, label_names: Sequence[str], metric_fns: Sequence[Callable],
                    benchmark_name: Optional[str] = None, splits: Sequence[str] = ALL_SPLITS,
                    before_text: Sequence[Preprocessor] = ()) -> TextTask:
    """A SuperGLUE task in the generic GLUE text format, scored on label ids."""
    return TextTask(
        name=f"super_glue_{config}_v102", tfds_name=f"super_glue/{config}:{VERSION}",
        splits=splits,
        text_preprocessor=glue_text.glue_text(benchmark_name or config, label_names,
                                              glue_text.SUPER_GLUE_FEATURES[config]),
        postprocess_fn=postprocessors.ClassLabel(tuple(label_names)), metric_fns=metric_fns,
        index=INDEX[config], before_text=before_text)


TASKS: tuple[TextTask, ...] = (
    _classification("boolq", BOOL, [metrics.accuracy]),
    _classification("cb", ("entailment", "contradiction", "neutral"),
                    [metrics.mean_multiclass_f1(num_classes=3), metrics.accuracy]),
    _classification("copa", ("choice1", "choice2"), [metrics.accuracy]),
    dataclasses.replace(  # MultiRC scores answer options grouped by question, not label ids.
        _classification("multirc", BOOL, []), postprocess_fn=postprocessors.multirc,
        metric_fns=[metrics.multirc_f1_over_all_answers, metrics.multirc_exact_match]),
    TextTask(name="super_glue_record_v102", tfds_name=f"super_glue/record:{VERSION}",
             splits=ALL_SPLITS, text_preprocessor=record.record_text,
             postprocess_fn=postprocessors.record, metric_fns=[metrics.record_squad],
             index=INDEX["record"]),
    _classification("rte", RTE, [metrics.accuracy]),
    _classification("wic", BOOL, [metrics.accuracy]),
    # The diagnostics have only a test split (unlabeled), hence no metrics.
    _classification("axb", RTE, [], benchmark_name="rte", splits=("test",),
                    before_text=(glue_text.rekey_axb,)),
    _classification("axg", RTE, [], benchmark_name="rte", splits=("test",)),
    # WSC as referent generation: train on correct referents only, never scored; eval on all.
    TextTask(name="super_glue_wsc_v102_simple_train", tfds_name=f"super_glue/wsc.fixed:{VERSION}",
             splits=("train",), text_preprocessor=wsc.wsc_simple(correct_referent_only=True),
             postprocess_fn=None, metric_fns=[], index=INDEX["wsc.fixed"]),
    TextTask(name="super_glue_wsc_v102_simple_eval", tfds_name=f"super_glue/wsc.fixed:{VERSION}",
             splits=("validation", "test"),
             text_preprocessor=wsc.wsc_simple(correct_referent_only=False),
             postprocess_fn=postprocessors.wsc_simple, metric_fns=[metrics.accuracy],
             index=INDEX["wsc.fixed"]),
    # Definite pronoun resolution, WSC-like extra training data (scored on the referent text).
    TextTask(name="dpr_v001_simple", tfds_name="definite_pronoun_resolution:1.1.0",
             splits=("train", "test"), text_preprocessor=wsc.dpr_simple, postprocess_fn=None,
             metric_fns=[metrics.accuracy], index=INDEX["wsc"]),
)

# Training-set sizes (T5's rates); the test-only and eval-only tasks take part at rate 0.
PROPORTIONAL_RATES: Mapping[str, float] = {
    "dpr_v001_simple": 1_322.0,
    "super_glue_wsc_v102_simple_train": 259.0,
    "super_glue_wsc_v102_simple_eval": 0.0,
    "super_glue_boolq_v102": 9_427.0,
    "super_glue_cb_v102": 250.0,
    "super_glue_copa_v102": 400.0,
    "super_glue_multirc_v102": 27_243.0,
    "super_glue_record_v102": 138_854.0,
    "super_glue_rte_v102": 2_490.0,
    "super_glue_wic_v102": 5_428.0,
    "super_glue_axb_v102": 0.0,
    "super_glue_axg_v102": 0.0,
}
WSC_AND_DEV = ("super_glue_wsc_v102_simple_train", "super_glue_wsc_v102_simple_eval")


def register(vocabulary: Any = None) -> None:
    """Registers the SuperGLUE tasks in every variant and, per variant, their mixtures
    (`{prefix}super_glue_v102_proportional`, `{prefix}super_glue_wsc_and_dev_v102_simple`)."""
    register_family(TASKS, vocabulary or vocab.get_seqio_vocabulary(),
                    {"super_glue_v102_proportional": PROPORTIONAL_RATES,
                     "super_glue_wsc_and_dev_v102_simple": dict.fromkeys(WSC_AND_DEV, 1.0)})
