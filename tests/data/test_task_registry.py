"""The registered SuperGLUE/GLUE tasks, variants and mixtures.

Every task runs end to end (TFDS -> text -> tokens -> EncDecFeatureConverter) on
`tfds.testing.mock_data`, with sockets refused so nothing can be downloaded. Mock text is random
letters, so these check plumbing; the formats are checked in test_*_formats.py. WSC simple
asserts on its (random) spans under mock data, so it runs on hand-made examples instead.
"""

import functools
import socket

import numpy as np
import pytest
import seqio
import tensorflow as tf
import tensorflow_datasets as tfds

from prompt_tuning.data import glue_text, postprocessors, tasks, truncation  # tasks registers all

SG = ("boolq", "cb", "copa", "multirc", "record", "rte", "wic", "axb", "axg")
SUPER_GLUE = tuple(f"super_glue_{c}_v102" for c in SG) + (
    "super_glue_wsc_v102_simple_train", "super_glue_wsc_v102_simple_eval", "dpr_v001_simple")
GLUE = tuple(f"glue_{c}_v002" for c in ("cola", "sst2", "mrpc", "qqp", "stsb", "mnli",
                                         "mnli_matched", "mnli_mismatched", "qnli", "rte", "wnli",
                                         "ax"))
PREFIXES = ("", "taskless_", "task_index_")
MOCKABLE = tuple(n for n in SUPER_GLUE + GLUE if "wsc" not in n)
EXTRA_ID_0 = 32099  # the T5 vocabulary's highest id
LENGTHS = {"inputs": 64, "targets": 16}
ACC, F1_ACC = {"accuracy"}, {"f1", "accuracy"}
METRIC_KEYS = {  # what each task reports (T5's SUPERGLUE_METRICS / GLUE_METRICS)
    "super_glue_boolq_v102": ACC, "super_glue_cb_v102": {"mean_3class_f1", "accuracy"},
    "super_glue_copa_v102": ACC, "super_glue_multirc_v102": {"f1", "exact_match"},
    "super_glue_record_v102": {"em", "f1"}, "super_glue_rte_v102": ACC,
    "super_glue_wic_v102": ACC, "super_glue_axb_v102": set(), "super_glue_axg_v102": set(),
    "dpr_v001_simple": ACC, "glue_cola_v002": {"matthews_corrcoef"}, "glue_sst2_v002": ACC,
    "glue_mrpc_v002": F1_ACC, "glue_qqp_v002": F1_ACC,
    "glue_stsb_v002": {"pearson_corrcoef", "spearman_corrcoef"}, "glue_mnli_v002": ACC,
    "glue_mnli_matched_v002": ACC, "glue_mnli_mismatched_v002": ACC, "glue_qnli_v002": ACC,
    "glue_rte_v002": ACC, "glue_wnli_v002": ACC, "glue_ax_v002": set(),
}


def test_every_task_variant_and_mixture_is_registered():
    names = set(seqio.TaskRegistry.names())
    missing = [p + n for p in PREFIXES for n in SUPER_GLUE + GLUE if p + n not in names]
    assert not missing
    mixtures = set(seqio.MixtureRegistry.names())
    for prefix in PREFIXES:
        assert {f"{prefix}super_glue_v102_proportional", f"{prefix}glue_v002_proportional",
                f"{prefix}super_glue_wsc_and_dev_v102_simple",
                f"{prefix}glue_mnli_and_dev_v002"} <= mixtures


def _rates(name):
    mixture = seqio.get_mixture_or_task(name)
    return {task.name: mixture.get_rate(task) for task in mixture.tasks}


@pytest.mark.parametrize("prefix", PREFIXES)
def test_proportional_mixture_rates_are_training_sizes(prefix):
    sizes = {"dpr_v001_simple": 1322, "super_glue_boolq_v102": 9427, "super_glue_cb_v102": 250,
             "super_glue_copa_v102": 400, "super_glue_multirc_v102": 27243,
             "super_glue_record_v102": 138854, "super_glue_rte_v102": 2490,
             "super_glue_wic_v102": 5428, "super_glue_wsc_v102_simple_train": 259,
             "super_glue_axb_v102": 0, "super_glue_axg_v102": 0,
             "super_glue_wsc_v102_simple_eval": 0}
    assert _rates(f"{prefix}super_glue_v102_proportional") == {
        prefix + k: v for k, v in sizes.items()}
    glue_sizes = {"glue_cola_v002": 8551, "glue_sst2_v002": 67349, "glue_mrpc_v002": 3668,
                  "glue_qqp_v002": 363849, "glue_stsb_v002": 5749, "glue_mnli_v002": 392702,
                  "glue_qnli_v002": 104743, "glue_rte_v002": 2490, "glue_mnli_matched_v002": 0,
                  "glue_mnli_mismatched_v002": 0, "glue_ax_v002": 0}  # no WNLI, as T5
    assert _rates(f"{prefix}glue_v002_proportional") == {
        prefix + k: v for k, v in glue_sizes.items()}


def test_configs_match_tfds():
    from prompt_tuning.data import glue, superglue  # pylint: disable=import-outside-toplevel
    from tensorflow_datasets.text import glue as tfds_glue, super_glue as tfds_super_glue

    sg_configs = {c.name: c for c in tfds_super_glue.SuperGlue.BUILDER_CONFIGS}
    glue_configs = {c.name: c for c in tfds_glue.Glue.BUILDER_CONFIGS}
    assert superglue.CONFIGS == tuple(sg_configs) and glue.CONFIGS == tuple(glue_configs)
    assert superglue.INDEX == {"boolq": 0, "cb": 1, "copa": 2, "multirc": 3, "record": 4, "rte": 5,
                               "wic": 6, "wsc": 7, "wsc.fixed": 7, "axb": 5, "axg": 5}
    # The explicit feature orders are T5's rule: sorted keys, except MultiRC and WiC.
    expected = {c: sorted(sg_configs[c].features) for c in SG if c != "record"}
    expected.update(axb=["hypothesis", "premise"], multirc=["question", "answer", "paragraph"],
                    wic=["sentence1", "sentence2", "word"])
    assert {k: list(v) for k, v in glue_text.SUPER_GLUE_FEATURES.items()} == expected
    assert {k: list(v) for k, v in glue_text.GLUE_FEATURES.items()} == {
        name: sorted(c.text_features) for name, c in glue_configs.items()}
    # The label names are TFDS'.
    for task in superglue.TASKS + glue.TASKS:
        if isinstance(task.postprocess_fn, postprocessors.ClassLabel):
            benchmark, config = task.tfds_name.split(":")[0].split("/")
            configs = sg_configs if benchmark == "super_glue" else glue_configs
            assert list(task.postprocess_fn.label_classes) == list(configs[config].label_classes)


def test_task_definitions():
    for name in SUPER_GLUE + GLUE:
        task = seqio.get_mixture_or_task(name)
        # [axb: rekey] -> text -> tokenize -> cache placeholder -> EOS after trim
        *before, text, tokenize, cache, eos = task.preprocessors
        assert before == ([glue_text.rekey_axb] if name == "super_glue_axb_v102" else [])
        assert callable(text) and tokenize is seqio.preprocessors.tokenize
        assert isinstance(cache, seqio.CacheDatasetPlaceholder)
        assert eos is truncation.append_eos_after_trim  # seqio's, counting what it cuts
        for feature in task.output_features.values():
            assert feature.add_eos and feature.vocabulary.vocab_size == 32100
    assert tasks.get_label_classes("super_glue_cb_v102") == (
        "entailment", "contradiction", "neutral")
    assert tasks.get_label_classes("taskless_super_glue_copa_v102") == ("choice1", "choice2")
    assert tasks.get_label_classes("glue_wnli_v002") == ("not_entailment", "entailment")
    assert tasks.get_label_classes("super_glue_record_v102") is None
    assert seqio.get_mixture_or_task("super_glue_axb_v102").metric_fns == []


# ------------------------------------------------------------------ mock TFDS
@pytest.fixture(scope="module")
def mock_tfds():
    """TFDS mock data; any socket connection fails, so a download attempt is an error."""

    def refuse(*args, **kwargs):
        raise OSError("network access in a test")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", refuse)
        with tfds.testing.mock_data(num_examples=3):
            yield


def _py(example):
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in example.items()}


@functools.lru_cache(maxsize=None)
def load(name, lengths=None):
    """The task's examples (tokens and *_pretokenized) on mock data and the dataset they came
    from; the split is the task's second (validation) where it has several, else its only one."""
    task = seqio.get_mixture_or_task(name)
    split = task.splits[1] if len(task.splits) > 1 else task.splits[0]
    # try_in_mem_cache=False: mock data has no split sizes, which the cache check needs.
    dataset = task.get_dataset(dict(lengths) if lengths else None, split=split, shuffle=False,
                               try_in_mem_cache=False)
    return [_py(ex) for ex in dataset.as_numpy_iterator()], dataset


@pytest.mark.parametrize("name", MOCKABLE + ("task_index_super_glue_multirc_v102",
                                             "taskless_glue_qqp_v002"))
def test_task_runs_and_scores_perfectly_on_its_targets(mock_tfds, name):
    """Tokens go through the feature converter; predicting each target exactly gives valid
    label ids and perfect accuracy/EM."""
    task = seqio.get_mixture_or_task(name)
    examples, dataset = load(name, tuple(LENGTHS.items()))
    batch = next(seqio.EncDecFeatureConverter(pack=False)(dataset, LENGTHS).batch(2)
                 .as_numpy_iterator())
    assert batch["encoder_input_tokens"].shape == (2, LENGTHS["inputs"])
    assert batch["decoder_target_tokens"].shape == (2, LENGTHS["targets"])
    assert batch["encoder_input_tokens"][:, 0].min() > 0  # not empty

    targets = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=True)
               for ex in examples]
    predictions = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=False)
                   for ex in examples]
    if isinstance(task.postprocess_fn, postprocessors.ClassLabel):
        assert -1 not in targets  # every target text is one of the label names
    scores = {k: v for m in task.metric_fns for k, v in m(targets, predictions).items()}
    assert set(scores) == METRIC_KEYS[name.replace("task_index_", "").replace("taskless_", "")]
    assert all(isinstance(v, float) for v in scores.values())
    for key in ("accuracy", "em", "exact_match"):  # the others can be NaN/0 on 3 random labels
        assert scores.get(key, 100.0) == pytest.approx(100.0), (name, scores)


@pytest.mark.parametrize("name, task_name, index", [
    ("super_glue_record_v102", "record", 4), ("super_glue_axb_v102", "rte", 5),
    ("super_glue_boolq_v102", "boolq", 0), ("dpr_v001_simple", "wsc:", 7),
    ("glue_ax_v002", "mnli", 1), ("glue_stsb_v002", "stsb", 7)])
def test_variants(mock_tfds, name, task_name, index):
    base, taskless, indexed = (load(p + name)[0] for p in PREFIXES)
    assert len(base) == len(taskless) == len(indexed)
    for b, t, i in zip(base, taskless, indexed):
        first_word, rest = b["inputs_pretokenized"].split(" ", 1)
        assert first_word == task_name
        assert t["inputs_pretokenized"] == rest  # exactly the first word dropped
        assert i["inputs_pretokenized"] == rest  # task_index replaces the name by a sentinel
        assert t["targets_pretokenized"] == b["targets_pretokenized"]
        assert i["inputs"][0] == EXTRA_ID_0 - index  # <extra_id_{index}>
        np.testing.assert_array_equal(i["inputs"][1:], t["inputs"])
        assert t["inputs"][-1] == 1  # EOS


# ------------------------------------------------------------------ WSC on hand-made data
WSC_EXAMPLES = {"text": ["Mitchell asked Tom if he could lend some money .",
                         "The trophy would not fit in the suitcase because it was too big ."],
                "span1_index": [2, 1], "span1_text": ["Tom", "suitcase"], "span2_index": [4, 9],
                "span2_text": ["he", "it"], "label": tf.constant([1, 0], tf.int64),
                "idx": [0, 1]}


def _run_task(name, raw):
    task = seqio.get_mixture_or_task(name)
    dataset = task.preprocess_postcache(task.preprocess_precache(raw), sequence_length=LENGTHS)
    return task, [_py(ex) for ex in dataset.as_numpy_iterator()]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_wsc_simple_tasks_end_to_end(prefix):
    raw = tf.data.Dataset.from_tensor_slices(WSC_EXAMPLES)
    vocabulary = seqio.get_mixture_or_task("super_glue_wsc_v102_simple_eval").output_features[
        "inputs"].vocabulary
    _, train = _run_task(f"{prefix}super_glue_wsc_v102_simple_train", raw)
    task, evaluation = _run_task(f"{prefix}super_glue_wsc_v102_simple_eval", raw)
    assert len(train) == 1 and len(evaluation) == 2  # train keeps correct referents only
    text = "Mitchell asked Tom if *he* could lend some money ."
    expected = {"": "wsc: " + text, "taskless_": text, "task_index_": text}[prefix]
    assert train[0]["inputs_pretokenized"] == expected
    tokens = list(train[0]["inputs"])
    assert tokens[-1] == 1
    if prefix == "task_index_":
        assert tokens[0] == EXTRA_ID_0 - 7  # WSC's index
        tokens = tokens[1:]
    assert vocabulary.decode(tokens[:-1]) == expected
    assert vocabulary.decode(list(train[0]["targets"][:-1])) == "Tom"
    # Eval: the target is the label; naming the candidate is "it is the referent".
    labels = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=True)
              for ex in evaluation]
    named = [task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=False)
             for ex in evaluation]
    assert labels == [1, 0] and named == [1, 1]
    assert [m(labels, named) for m in task.metric_fns] == [{"accuracy": 50.0}]
    converted = seqio.EncDecFeatureConverter(pack=False)(tf.data.Dataset.from_tensor_slices(
        {k: [ex[k] for ex in train] for k in ("inputs", "targets")}), LENGTHS)
    assert next(converted.as_numpy_iterator())["encoder_input_tokens"].shape == (64,)
