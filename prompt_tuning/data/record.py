"""ReCoRD as T5 formats it: one example per answer, with the highlights joined into the passage.

A TFDS example {passage, query, entities: [E], answers: [A], idx: {passage, query}} becomes
max(A, 1) examples, each

  inputs       "record query: {query} entities: {entities joined by ', '} passage: {passage}"
  targets      one answer (the a-th copy gets answers[a]); "<unk>" when there is no answer (test)
  answers      all answers, [A] strings (the ReCoRD metric scores a prediction against any of them)
  idx/passage, idx/query   int scalars (the metric keeps one prediction per passage/query group)

Entities are neither deduplicated nor sorted, as in T5.
"""

from __future__ import annotations

from typing import Mapping

from prompt_tuning.data.tensorflow_quiet import tf


UNLABELED = "<unk>"
HIGHLIGHT = r"\n@highlight\n"


def join_highlights(passage: tf.Tensor) -> tf.Tensor:
    """CNN/Daily Mail passages end with `\\n@highlight\\n`-separated bullet points; they become
    sentences. After sentence-final punctuation (. ? ! " ') the marker becomes one space (the
    punctuation stays), otherwise it becomes ". ". String scalar -> string scalar."""
    passage = tf.strings.regex_replace(passage, r"([.?!\"'])" + HIGHLIGHT, r"\1 ")
    return tf.strings.regex_replace(passage, HIGHLIGHT, ". ")


def format_inputs(example: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The `inputs` string (scalar) of one ReCoRD example."""
    return tf.strings.join(
        ["record query:", example["query"],
         "entities:", tf.strings.reduce_join(example["entities"], separator=", "),
         "passage:", join_highlights(example["passage"])], separator=" ")


def _answer_targets(answers: tf.Tensor) -> tf.Tensor:
    """[A] answers -> the targets of the copies: the answers, or ["<unk>"] when A == 0."""
    return tf.cond(tf.size(answers) > 0, lambda: answers, lambda: tf.constant([UNLABELED]))


def _format(example: Mapping[str, tf.Tensor]) -> dict:
    return {"inputs": format_inputs(example), "answers": example["answers"],
            "idx/passage": example["idx"]["passage"], "idx/query": example["idx"]["query"]}


def _one_per_answer(example: Mapping[str, tf.Tensor]) -> tf.data.Dataset:
    targets = tf.data.Dataset.from_tensor_slices(_answer_targets(example["answers"]))
    return targets.map(lambda target: {**example, "targets": target})


def record_text(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The ReCoRD text preprocessor (dataset level, since it changes the number of examples)."""
    dataset = dataset.map(_format, num_parallel_calls=tf.data.experimental.AUTOTUNE)
    return dataset.flat_map(_one_per_answer)
