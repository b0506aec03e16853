"""The task variants of Lester et al.: `taskless_` (no task name) and `task_index_` (a sentinel id).

Each variant is a function from a task's preprocessors to the variant's preprocessors, so a new
variant is a new small function and every task family registers its variants the same way.
"""

from __future__ import annotations

from typing import Callable, Sequence

from prompt_tuning.data.tensorflow_quiet import seqio, tf

Preprocessor = Callable


@seqio.map_over_dataset
def drop_task_name(example: dict) -> dict:
    """Removes the first word of `inputs` (the task name), as the reference's taskless tasks:
    the regex `^[^ ]* ` is replaced by "" once."""
    return {**example, "inputs": tf.strings.regex_replace(example["inputs"], r"^[^ ]* ", "",
                                                          replace_global=False)}


def prepend_token(token_id_fn: Callable[[int], int]) -> Preprocessor:
    """Prepends one token id (a function of the vocabulary size) to the tokenized `inputs`."""

    def preprocess(dataset, output_features):
        token = token_id_fn(output_features["inputs"].vocabulary.vocab_size)

        def prepend(example):
            first = tf.constant([token], dtype=example["inputs"].dtype)
            return {**example, "inputs": tf.concat([first, example["inputs"]], axis=0)}

        return dataset.map(prepend, num_parallel_calls=tf.data.experimental.AUTOTUNE)

    return preprocess


def _insert_after(preprocessors: Sequence[Preprocessor], anchor: Preprocessor,
                  new: Preprocessor) -> list[Preprocessor]:
    preprocessors = list(preprocessors)
    if anchor not in preprocessors:
        raise ValueError(f"{anchor} is not among the task's preprocessors; cannot add {new}.")
    at = preprocessors.index(anchor) + 1
    return preprocessors[:at] + [new] + preprocessors[at:]


def taskless(preprocessors: Sequence[Preprocessor], text_preprocessor: Preprocessor
             ) -> list[Preprocessor]:
    """The paper's setting: the task name is dropped right after the text preprocessor."""
    return _insert_after(preprocessors, text_preprocessor, drop_task_name)


def task_index(preprocessors: Sequence[Preprocessor], index: int) -> list[Preprocessor]:
    """`<extra_id_{index}>` (id `vocab_size - (index + 1)`) prepended after tokenization."""
    return _insert_after(preprocessors, seqio.preprocessors.tokenize,
                         prepend_token(lambda vocab_size: vocab_size - (index + 1)))
