"""Built-in tasks that need no download: review-like sentences with a sentiment and a topic.

The data ships in `assets/builtin/{train,validation,test}.tsv` (columns idx, sentence,
sentiment, topic; made by scripts/make_builtin_data.py). Tasks are formatted like GLUE's single-sentence
tasks (`sst2 sentence: ...`):

  builtin_sentiment           `sentiment sentence: {sentence}` -> `negative` | `positive`
  builtin_topic               `topic sentence: {sentence}`     -> `food` | `music` | `sports` | `travel`
  taskless_builtin_sentiment  `sentence: {sentence}`           -> `negative` | `positive`
  taskless_builtin_topic      `sentence: {sentence}`           -> `food` | ...
  builtin_pretrain            mixture of builtin_sentiment and builtin_topic (equal rates)
  taskless_builtin_mixture    mixture of the two taskless tasks (multi-task prompt tuning)

Every sentence carries both labels, so without its task name the input does not say which label
is asked for: the taskless tasks are what a prompt has to learn. The tiny built-in T5
(`assets/tiny_t5`) was pre-trained on `builtin_pretrain`.
"""

from __future__ import annotations

import os

from prompt_tuning import paths
from prompt_tuning.data import metrics, postprocessors, truncation, variants, vocab
from prompt_tuning.data.tensorflow_quiet import seqio, tf

DATA_DIR = os.path.join(paths.ASSETS_DIR, "builtin")
SPLITS = ("train", "validation", "test")
COLUMNS = ("idx", "sentence", "sentiment", "topic")
LABELS = {"sentiment": ("negative", "positive"), "topic": ("food", "music", "sports", "travel")}


def _num_examples(split: str) -> int:
    with open(os.path.join(DATA_DIR, f"{split}.tsv")) as f:
        return sum(1 for _ in f) - 1  # the header


def source() -> seqio.DataSource:
    return seqio.TextLineDataSource(
        {split: os.path.join(DATA_DIR, f"{split}.tsv") for split in SPLITS},
        skip_header_lines=1,
        num_input_examples={split: _num_examples(split) for split in SPLITS})


def _parse_tsv(dataset: tf.data.Dataset) -> tf.data.Dataset:
    """TextLineDataSource gives one line per example; its tab-separated columns become features."""

    def parse(line):
        fields = tf.strings.split(line, "\t")
        example = {c: fields[i] for i, c in enumerate(COLUMNS)}
        return {**example, "idx": tf.strings.to_number(example["idx"], tf.int32)}

    return dataset.map(parse, num_parallel_calls=tf.data.experimental.AUTOTUNE)


def text_preprocessor(label_name: str):
    """`{label_name} sentence: {sentence}` -> the label string, with `label` as a class id."""
    classes = tf.constant(LABELS[label_name])

    def preprocess(dataset: tf.data.Dataset) -> tf.data.Dataset:
        def to_text(example):
            label = tf.argmax(tf.cast(tf.equal(classes, example[label_name]), tf.int32),
                              output_type=tf.int32)
            return {"inputs": tf.strings.join([label_name, "sentence:", example["sentence"]], " "),
                    "targets": example[label_name], "label": label, "idx": example["idx"]}

        return _parse_tsv(dataset).map(to_text, num_parallel_calls=tf.data.experimental.AUTOTUNE)

    preprocess.__name__ = f"builtin_{label_name}_text"
    return preprocess


def register(vocabulary=None) -> None:
    """Registers the built-in tasks and `builtin_pretrain` with seqio."""
    vocabulary = vocabulary or vocab.get_seqio_vocabulary()
    features = {"inputs": seqio.Feature(vocabulary, add_eos=True),
                "targets": seqio.Feature(vocabulary, add_eos=True)}
    for label_name in LABELS:
        text = text_preprocessor(label_name)
        steps = [text, seqio.preprocessors.tokenize, seqio.CacheDatasetPlaceholder(),
                 truncation.append_eos_after_trim]
        for name, preprocessors in ((f"builtin_{label_name}", steps),
                                    (f"taskless_builtin_{label_name}",
                                     variants.taskless(steps, text))):
            seqio.TaskRegistry.add(
                name, source=source(), preprocessors=preprocessors, output_features=features,
                postprocess_fn=postprocessors.ClassLabel(LABELS[label_name]),
                metric_fns=[metrics.accuracy])
    seqio.MixtureRegistry.add("builtin_pretrain",
                              [(f"builtin_{label_name}", 1.0) for label_name in LABELS])
    # Multi-task prompt tuning's demo: the same taskless sentences, and only the prompt (one per
    # task, MULTI_TASK=True) says whether the sentiment or the topic is asked for.
    seqio.MixtureRegistry.add("taskless_builtin_mixture",
                              [(f"taskless_builtin_{label_name}", 1.0) for label_name in LABELS])
