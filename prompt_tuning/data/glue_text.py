"""The GLUE-style text format T5 gives to (Super)GLUE classification tasks.

`inputs` is the benchmark name followed by `key: value` pairs, all joined with single spaces and
nothing stripped, so values keep their own spacing:

  {"premise": "A cat sat on the mat.", "hypothesis": "An animal is on the mat.", "label": 0}
  -> inputs  "rte hypothesis: An animal is on the mat. premise: A cat sat on the mat."
     targets "entailment"   (label_names[label]; "<unk>" for label -1, i.e. unlabeled test data)

The feature order of each task is in `SUPER_GLUE_FEATURES` / `GLUE_FEATURES`. STS-B (a float
label) has its own formatter; ReCoRD and WSC have their own modules.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from prompt_tuning.data.tensorflow_quiet import tf


Preprocessor = Callable[[tf.data.Dataset], tf.data.Dataset]
UNLABELED = "<unk>"

# TFDS config -> the features in `inputs`, in order. Equal to T5's sorted keys (minus label, idx)
# except for MultiRC and WiC (WiC's start/end offsets are left out on purpose, as in T5).
SUPER_GLUE_FEATURES: Mapping[str, tuple[str, ...]] = {
    "boolq": ("passage", "question"),
    "cb": ("hypothesis", "premise"),
    "copa": ("choice1", "choice2", "premise", "question"),
    "multirc": ("question", "answer", "paragraph"),
    "rte": ("hypothesis", "premise"),
    "wic": ("sentence1", "sentence2", "word"),
    "axb": ("hypothesis", "premise"),  # after `rekey_axb`
    "axg": ("hypothesis", "premise"),
}
GLUE_FEATURES: Mapping[str, tuple[str, ...]] = {
    "cola": ("sentence",),
    "sst2": ("sentence",),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "mnli": ("hypothesis", "premise"),
    "mnli_matched": ("hypothesis", "premise"),
    "mnli_mismatched": ("hypothesis", "premise"),
    "ax": ("hypothesis", "premise"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),  # unlike SuperGLUE's RTE (hypothesis, premise)
    "wnli": ("sentence1", "sentence2"),
}


def label_text(label: tf.Tensor, label_names: Sequence[str]) -> tf.Tensor:
    """The label's name, or `<unk>` for label -1. `label`: int scalar -> string scalar."""
    names = tf.constant(list(label_names))
    # Gather at a clipped index so that -1 never reaches tf.gather (which fails on CPU).
    name = tf.gather(names, tf.maximum(label, 0))
    return tf.where(tf.equal(label, -1), tf.constant(UNLABELED), name)


def format_inputs(example: Mapping[str, tf.Tensor], benchmark_name: str,
                  feature_names: Sequence[str]) -> tf.Tensor:
    """`{benchmark_name} {k1}: {v1} {k2}: {v2} ...` (string scalar), nothing stripped."""
    parts = [benchmark_name]
    for key in feature_names:
        parts += [f"{key}:", example[key]]
    return tf.strings.join(parts, separator=" ")


def clean_multirc_html(text: tf.Tensor) -> tf.Tensor:
    """MultiRC paragraphs carry HTML: `<br>` becomes a space and `<b>`/`</b>` are deleted.

    T5 applies this to the whole joined `inputs` string, so we do too (a `<br>` in a question
    or an answer is cleaned as well)."""
    text = tf.strings.regex_replace(text, "<br>", " ")
    return tf.strings.regex_replace(text, "</?b>", "")


def format_example(example: Mapping[str, tf.Tensor], benchmark_name: str,
                   label_names: Sequence[str], feature_names: Sequence[str]) -> dict:
    """One TFDS example -> {"inputs", "targets", index features}.

    The index passes through for evaluation: `idx` (int scalar), or for MultiRC (whose TFDS `idx`
    is a dict) the flat `idx/paragraph`, `idx/question` and `idx/answer` its metrics group by.
    """
    inputs = format_inputs(example, benchmark_name, feature_names)
    out = {"targets": label_text(example["label"], label_names)}
    if benchmark_name == "multirc":
        out["inputs"] = clean_multirc_html(inputs)
        for part in ("paragraph", "question", "answer"):
            out[f"idx/{part}"] = example["idx"][part]
    else:
        out["inputs"] = inputs
        out["idx"] = example["idx"]
    return out


def glue_text(benchmark_name: str, label_names: Sequence[str],
              feature_names: Sequence[str]) -> Preprocessor:
    """A dataset preprocessor formatting every example with `format_example`.

    Args:
      benchmark_name: the first word of `inputs` (e.g. "rte"; T5 casts axb/axg as "rte" and
        GLUE's ax and mnli_(mis)matched as "mnli").
      label_names: class id -> target text.
      feature_names: the `inputs` keys in order (see `SUPER_GLUE_FEATURES`, `GLUE_FEATURES`).
    """
    feature_names = tuple(feature_names)

    def preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
        return dataset.map(
            lambda ex: format_example(ex, benchmark_name, label_names, feature_names),
            num_parallel_calls=tf.data.experimental.AUTOTUNE)

    preprocess.__name__ = f"glue_text_{benchmark_name}"
    return preprocess


def stsb_target(label: tf.Tensor) -> tf.Tensor:
    """A similarity score (float) rounded to the nearest 0.2 and printed with one decimal:
    3.43 -> "3.4". This makes STS-B a 26-way generation task, as in T5."""
    return tf.strings.as_string(tf.round(label * 5.0) / 5.0, precision=1)


def stsb_text(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """`stsb sentence1: {s1} sentence2: {s2}` -> `stsb_target(label)`, with `idx`."""

    def to_text(ex):
        return {"inputs": format_inputs(ex, "stsb", GLUE_FEATURES["stsb"]),
                "targets": stsb_target(ex["label"]), "idx": ex["idx"]}

    return dataset.map(to_text, num_parallel_calls=tf.data.experimental.AUTOTUNE)


def rekey_axb(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """AX-b names RTE's fields sentence1/sentence2; T5 renames them premise/hypothesis first so
    AX-b reads exactly like an RTE example (`rte hypothesis: {sentence2} premise: {sentence1}`)."""

    def rekey(ex):
        return {"premise": ex["sentence1"], "hypothesis": ex["sentence2"],
                "label": ex["label"], "idx": ex["idx"]}

    return dataset.map(rekey, num_parallel_calls=tf.data.experimental.AUTOTUNE)
