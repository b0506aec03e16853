"""T5X's gin names carry over: the reference's bindings build our configs per command, T5X's
macros (CHECKPOINT_PATH, RANDOM_SEED, USE_CACHED_TASKS, MIXTURE_OR_TASK_MODULE, ...) mean what they
mean in T5X, and what has no counterpart is refused with one line that names it."""

from __future__ import annotations

import sys
import textwrap

import gin
import pytest

from prompt_tuning import errors
from prompt_tuning.cli import gin_config, t5x_compat
from prompt_tuning.evaluation import jobs
from prompt_tuning.training.config import TrainConfig

TASK = ["MIXTURE_OR_TASK_NAME = 'taskless_builtin_topic'",
        "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 4}"]
TRAIN = (["models/t5_1_1_tiny_prompt.gin", "prompts/from_sampled_vocab.gin",
          "runs/prompt_finetune.gin"],
         TASK + ["INITIAL_CHECKPOINT_PATH = 'builtin:tiny_t5'", "MODEL_DIR = '/runs/x'",
                 "TRAIN_STEPS = 10"])
EVAL = (["models/t5_1_1_tiny_prompt.gin", "runs/prompt_eval.gin"],
        TASK + ["EVAL_OUTPUT_DIR = '/evals/x'", "PROMPT_FILE = '/prompts/p.npy'"])
INFER = (["models/t5_1_1_tiny_prompt.gin", "runs/prompt_infer.gin"],
         TASK + ["INFER_OUTPUT_FILE = '/out/x.jsonl'", "PROMPT_FILE = '/prompts/p.npy'"])


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config(clear_constants=True)
    yield
    gin.clear_config(clear_constants=True)


def _build(job, configurable, extra, command):
    files, bindings = job
    gin_config.parse(files, bindings + list(extra), command=command)
    return gin_config.build(configurable)


def test_the_reference_eval_bindings_build_the_eval_job():
    # sst2-demo-eval.sh's T5X bindings: CHECKPOINT_PATH, utils.DatasetConfig.*, USE_CACHED_TASKS.
    config = _build((EVAL[0], TASK + ["EVAL_OUTPUT_DIR = '/evals/x'",
                                      "PROMPT_FILE = '/prompts/p.npy'"]),
                    jobs.EvalJobConfig,
                    ["CHECKPOINT_PATH = 'builtin:tiny_t5'", "utils.DatasetConfig.split = 'test'",
                     "utils.DatasetConfig.batch_size = 128", "USE_CACHED_TASKS = False",
                     "MIXTURE_OR_TASK_MODULE = 'prompt_tuning.data.glue'"], "eval")
    assert config.model.initial_checkpoint_path == "builtin:tiny_t5"
    assert (config.evaluation.split, config.evaluation.batch_size) == ("test", 128)
    assert config.evaluation.use_cached is False


def test_eval_without_any_checkpoint_names_both_macros():
    with pytest.raises(errors.UsageError, match="INITIAL_CHECKPOINT_PATH=.*CHECKPOINT_PATH"):
        _build(EVAL, jobs.EvalJobConfig, [], "eval")


@pytest.mark.parametrize("binding, field, value", [
    ("utils.DatasetConfig.batch_size = 4", "train_dataset.batch_size", 4),
    ("train/utils.DatasetConfig.seed = 7", "train_dataset.seed", 7),
    ("train/utils.DatasetConfig.shuffle = False", "train_dataset.shuffle", False),
    ("infer_eval/utils.DatasetConfig.split = 'test'", "evaluation.split", "test"),
    ("infer_eval/utils.DatasetConfig.batch_size = 16", "evaluation.batch_size", 16),
    ("USE_CACHED_TASKS = True", "train_dataset.use_cached", True),
    ("USE_CACHED_TASKS = True", "evaluation.use_cached", True),
    ("RANDOM_SEED = 5", "seed", 5),
    ("RANDOM_SEED = 5", "train_dataset.seed", 5),
    ("EVALUATOR_NUM_EXAMPLES = 12", "evaluation.num_examples", 12),
    ("seqio.Evaluator.num_examples = 12", "evaluation.num_examples", 12),
    ("utils.SaveCheckpointConfig.period = 7", "checkpoint.period", 7),
    ("utils.SaveCheckpointConfig.keep = 1", "checkpoint.keep", 1),
    ("trainer.Trainer.num_microbatches = 2", "num_microbatches", 2),
    ("utils.create_learning_rate_scheduler.base_learning_rate = 0.5", "optimizer.learning_rate",
     0.5),
    ("partitioning.PjitPartitioner.num_partitions = 2", "partitioning.num_partitions", 2),
    ("partitioning.ModelBasedPjitPartitioner.model_parallel_submesh = (1, 1, 1, 2)",
     "partitioning.model_parallel_submesh", (1, 1, 1, 2)),
    ("partitioning.standard_logical_axis_rules.activation_partitioning_dims = 2",
     "partitioning.activation_partitioning_dims", 2),
    ("partitioning.PjitPartitioner.parameter_partitioning_dims = 2",
     "partitioning.parameter_partitioning_dims", 2),
])
def test_t5x_train_bindings_set_our_fields(binding, field, value):
    config = _build(TRAIN, TrainConfig, [binding], "train")
    for name in field.split("."):
        config = getattr(config, name)
    assert config == value


def test_restore_checkpoint_path_is_the_frozen_model():
    files, bindings = TRAIN
    bindings = [b for b in bindings if not b.startswith("INITIAL_CHECKPOINT_PATH")]
    config = _build((files, bindings), TrainConfig,
                    ["utils.RestoreCheckpointConfig.path = '/ckpts/other'"], "train")
    assert config.model.initial_checkpoint_path == "/ckpts/other"


def test_infer_reads_utils_dataset_config_as_its_dataset():
    config = _build(INFER, jobs.InferJobConfig, ["CHECKPOINT_PATH = 'builtin:tiny_t5'",
                                                 "utils.DatasetConfig.split = 'validation'",
                                                 "MIXTURE_OR_TASK_SPLIT = 'train'"], "infer")
    assert config.dataset.split == "validation"  # the configurable's binding wins over a macro


def test_mixture_or_task_split_is_the_split_macro():
    config = _build(EVAL, jobs.EvalJobConfig, ["CHECKPOINT_PATH = 'builtin:tiny_t5'",
                                               "MIXTURE_OR_TASK_SPLIT = 'test'"], "eval")
    assert config.evaluation.split == "test"


def test_pack_false_is_what_we_do_and_pack_true_is_refused():
    _build(TRAIN, TrainConfig, ["train/utils.DatasetConfig.pack = False",
                                "train_eval/utils.DatasetConfig.pack = False"], "train")
    gin.clear_config(clear_constants=True)
    with pytest.raises(errors.UsageError, match="does not pack"):
        _build(TRAIN, TrainConfig, ["train/utils.DatasetConfig.pack = True"], "train")


@pytest.mark.parametrize("command, binding, message", [
    ("train", "train_eval/utils.DatasetConfig.batch_size = 8",
     "T5X's train_eval/utils.DatasetConfig.batch_size is not supported for train: T5X's "
     "teacher-forced validation loss"),
    ("eval", "utils.DatasetConfig.shuffle = True",
     "T5X's utils.DatasetConfig.shuffle is not supported for eval"),
    ("eval", "infer_eval/utils.DatasetConfig.split = 'x'",
     "T5X's infer_eval/utils.DatasetConfig.split is not supported for eval"),
    ("train", "utils.RestoreCheckpointConfig.mode = 'latest'",
     "T5X's utils.RestoreCheckpointConfig.mode is not supported for train"),
    ("train", "utils.SaveCheckpointConfig.dtype = 'bfloat16'",
     "T5X's utils.SaveCheckpointConfig.dtype is not supported"),
    ("train", "seqio.JSONLogger.write_n_results = 5", "T5X's seqio.JSONLogger.write_n_results"),
    ("train", "t5x.utils.CheckpointConfig.save = None", "T5X's utils.CheckpointConfig.save"),
])
def test_t5x_settings_without_counterpart_are_refused_by_name(command, binding, message):
    with pytest.raises(errors.UsageError, match="^" + message.replace("(", r"\(")):
        t5x_compat.translate(binding, command)


@pytest.mark.parametrize("macro", sorted(t5x_compat.UNSUPPORTED_MACROS))
def test_t5x_macros_without_counterpart_say_why(macro):
    with pytest.raises(errors.UsageError, match=f"gin macro {macro} is T5X's and is not "
                                                "supported: "):
        gin_config.parse(TRAIN[0], TRAIN[1] + [f"{macro} = 1"], command="train")


def test_our_own_names_pass_through_unchanged():
    for binding in ("partitioning.PartitioningConfig.num_partitions = 2", "TRAIN_STEPS = 3",
                    "eval_config.EvalConfig.split = 'test'"):
        assert t5x_compat.translate(binding, "train") == binding


def test_mixture_or_task_module_is_imported_and_registers_tasks(tmp_path, monkeypatch):
    from prompt_tuning.data import tasks

    (tmp_path / "my_tasks_for_test.py").write_text(textwrap.dedent("""
        import seqio
        from prompt_tuning.data import tasks
        seqio.MixtureRegistry.remove("my_topic_mixture")
        seqio.MixtureRegistry.add("my_topic_mixture", [("taskless_builtin_topic", 1.0)])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    files, bindings = TRAIN
    bindings = [b for b in bindings if not b.startswith("MIXTURE_OR_TASK_NAME")]
    config = _build((files, bindings), TrainConfig,
                    ["MIXTURE_OR_TASK_NAME = 'my_topic_mixture'",
                     "MIXTURE_OR_TASK_MODULE = 'my_tasks_for_test'"], "train")
    assert tasks.get_task_or_mixture(config.train_dataset.mixture_or_task_name).name == \
        "my_topic_mixture"
    sys.modules.pop("my_tasks_for_test", None)


def test_a_task_module_that_cannot_be_imported_is_one_line():
    with pytest.raises(errors.UsageError, match="MIXTURE_OR_TASK_MODULE 't5.data' cannot be "
                                                "imported: ModuleNotFoundError: No module named "
                                                "'t5'"):
        gin_config.parse(TRAIN[0], TRAIN[1] + ["MIXTURE_OR_TASK_MODULE = 't5.data'"])


def test_an_alias_set_on_the_command_line_but_shadowed_is_refused():
    # RANDOM_SEED feeds SEED; a user who sets SEED as well has set RANDOM_SEED for nothing.
    with pytest.raises(errors.UsageError, match="gin macro RANDOM_SEED is set but nothing"):
        gin_config.parse(TRAIN[0], TRAIN[1] + ["RANDOM_SEED = 1", "SEED = 2"])
