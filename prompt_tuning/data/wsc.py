"""WSC and DPR cast as referent generation ("simple"), as T5 does.

The model reads the text with the pronoun marked and writes the noun phrase it refers to:

  WSC {text: "Mitchell asked Tom if he could lend some money .", span1_text: "Tom",
       span2_text: "he", span2_index: 4, label: 1}
  -> inputs "wsc: Mitchell asked Tom if *he* could lend some money ."   targets "Tom"

WSC labels say whether span1 is the pronoun's referent, so training keeps only label == 1
(`correct_referent_only`) and evaluation keeps everything, passing `label` and `idx` through for
the `wsc_simple` postprocessor. DPR (definite pronoun resolution) gives the referent directly:
targets = candidates[label].
"""

from __future__ import annotations

from typing import Callable, Mapping

from prompt_tuning.data.tensorflow_quiet import tf


Preprocessor = Callable[[tf.data.Dataset], tf.data.Dataset]
PREFIX = "wsc:"
PLACEHOLDER = "X"

# Two WSC texts where span2_index does not point at the pronoun (a comma is glued to it, or the
# index names the wrong word); T5 marks them by hand. Text -> text with the pronoun as "X".
SPECIAL_CASES: Mapping[str, str] = {
    'The boy continued to whip the pony , and eventually the pony threw him over. John laughed '
    'out quite loud. "Good for him," he said. ':
        'The boy continued to whip the pony , and eventually the pony threw him over. John '
        'laughed out quite loud. "Good for X ," he said.',
    'When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the magic '
    'pebble in an iron safe . Some day they might want to use it , but really for now, what more '
    'could they wish for?':
        'When they had eventually calmed down a bit , and had gotten home, Mr. Farley put the '
        'magic pebble in an iron safe . Some day they might want to use X , but really for now, '
        'what more could they wish for?',
}


def replace_pronoun(text: tf.Tensor, index: tf.Tensor, pronoun: tf.Tensor) -> tf.Tensor:
    """`text` with its `index`-th word (words split on single spaces) replaced by "X".

    Fails (InvalidArgumentError) unless 0 < index < #words and that word is `pronoun`: the
    marking below needs a word on each side, and a mismatch means the span data is wrong."""
    words = tf.strings.split(text, sep=" ")
    checks = [
        tf.debugging.assert_greater(index, tf.cast(0, index.dtype),
                                    message="WSC pronoun must not be the first word"),
        tf.debugging.assert_less(index, tf.cast(tf.size(words), index.dtype),
                                 message="WSC span2_index is past the end of the text"),
    ]
    with tf.control_dependencies(checks):
        word = tf.gather(words, index)
    with tf.control_dependencies([tf.debugging.assert_equal(
            word, pronoun, message="WSC word at span2_index is not span2_text")]):
        before = tf.strings.reduce_join(words[:index], separator=" ")
        after = tf.strings.reduce_join(words[index + 1:], separator=" ")
        return tf.strings.join([before, PLACEHOLDER, after], separator=" ")


def _with_placeholder(example: Mapping[str, tf.Tensor]) -> tf.Tensor:
    """The text with "X" at the pronoun, taking the hand-made version for the special cases."""
    text = example["text"]
    branches = [(tf.equal(text, special), lambda fixed=fixed: tf.constant(fixed))
                for special, fixed in SPECIAL_CASES.items()]
    return tf.case(branches, exclusive=True, default=lambda: replace_pronoun(
        text, example["span2_index"], example["span2_text"]))


def format_wsc(example: Mapping[str, tf.Tensor]) -> dict:
    """One WSC example -> {inputs, targets, label, idx}; the pronoun is wrapped as `*pronoun*`.

    Like T5, every " X " (not only the pronoun's) is replaced, so a text that itself contains
    the word "X" between spaces gets marked there too."""
    marked = tf.strings.regex_replace(_with_placeholder(example), f" {PLACEHOLDER} ",
                                      tf.strings.join([" *", example["span2_text"], "* "]))
    return {"inputs": tf.strings.join([PREFIX, marked], separator=" "),
            "targets": tf.reshape(example["span1_text"], []),
            "label": example.get("label", tf.constant(0, tf.int64)),
            "idx": example["idx"]}


def wsc_simple(correct_referent_only: bool) -> Preprocessor:
    """The WSC preprocessor; `correct_referent_only` (train) keeps only label == 1 examples,
    since the target is span1 whether or not it is the referent."""

    def preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
        if correct_referent_only:
            dataset = dataset.filter(lambda ex: tf.equal(ex["label"], 1))
        return dataset.map(format_wsc, num_parallel_calls=tf.data.experimental.AUTOTUNE)

    preprocess.__name__ = "wsc_simple_train" if correct_referent_only else "wsc_simple_eval"
    return preprocess


def format_dpr(example: Mapping[str, tf.Tensor]) -> dict:
    """One DPR example -> {inputs, targets}: the first " {pronoun}" followed by a space, "." or ","
    becomes " *{pronoun}*" (T5 puts the pronoun into the pattern unescaped; DPR pronouns are
    plain words), and targets = candidates[label]."""
    pattern = tf.strings.join([" (", example["pronoun"], r")( |\.|,)"])
    marked = tf.strings.regex_replace(example["sentence"], pattern, r" *\1*\2",
                                      replace_global=False)
    return {"inputs": tf.strings.join([PREFIX, marked], separator=" "),
            "targets": tf.gather(example["candidates"], example["label"])}


def dpr_simple(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """The `dpr_v001_simple` text preprocessor."""
    return dataset.map(format_dpr, num_parallel_calls=tf.data.experimental.AUTOTUNE)
