"""Every shipped gin file parses and builds its job's config (no model is built), from anywhere,
under both spellings of its path; the sizes are T5 1.1's; misspelled macros are refused."""

from __future__ import annotations

import itertools
import os

import gin
import pytest

from prompt_tuning import errors
from prompt_tuning.cli import gin_config
from prompt_tuning.evaluation import jobs
from prompt_tuning.model import SIZES, t5_1_1
from prompt_tuning.training.config import TrainConfig

CONFIGS = gin_config.CONFIG_DIR
SIZE_NAMES = sorted(SIZES)
PROMPT_FILES = sorted(f"prompts/{name}" for name in os.listdir(os.path.join(CONFIGS, "prompts")))
# What each prompt file requires, and what every run needs.
PROMPT_BINDINGS = {"prompts/from_class_labels.gin": ["CLASS_LABELS = ['yes', 'no']"],
                   "prompts/from_file.gin": ["PROMPT_FILE = '/prompts/p.npy'"]}
TASK = ["MIXTURE_OR_TASK_NAME = 'taskless_builtin_topic'",
        "TASK_FEATURE_LENGTHS = {'inputs': 32, 'targets': 4}",
        "INITIAL_CHECKPOINT_PATH = '/ckpts/t5'"]
RUNS = {"runs/prompt_finetune.gin": (TrainConfig, ["MODEL_DIR = '/runs/x'", "TRAIN_STEPS = 10"]),
        "runs/prompt_eval.gin": (jobs.EvalJobConfig, ["EVAL_OUTPUT_DIR = '/evals/x'",
                                                      "PROMPT_FILE = '/prompts/p.npy'"]),
        "runs/prompt_infer.gin": (jobs.InferJobConfig, ["INFER_OUTPUT_FILE = '/out/x.jsonl'",
                                                        "MODEL_DIR = '/runs/x'"])}


ACCELERATOR_FILES = ("accelerators/gpu.gin", "accelerators/tpu.gin")


@pytest.fixture(autouse=True)
def clean_gin():
    gin.clear_config(clear_constants=True)
    yield
    gin.clear_config(clear_constants=True)


def _build(files, bindings, configurable):
    gin.clear_config(clear_constants=True)
    gin_config.parse(files, bindings)
    return gin_config.build(configurable)


def test_every_shipped_file_is_covered():
    shipped = {os.path.relpath(os.path.join(root, name), CONFIGS)
               for root, _, names in os.walk(CONFIGS) for name in names if name.endswith(".gin")}
    covered = ({f"models/t5_1_1_{s}_prompt.gin" for s in SIZE_NAMES}
               | {f"models/sizes/{s}.gin" for s in SIZE_NAMES} | {"models/t5_1_1_prompt.gin"}
               | set(PROMPT_FILES) | set(RUNS) | {"runs/embedded_default.gin"}
               | set(ACCELERATOR_FILES))
    assert shipped == covered


@pytest.mark.parametrize("size", SIZE_NAMES)
@pytest.mark.parametrize("run_file", sorted(RUNS))
def test_each_size_with_each_run_file(size, run_file, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # the package's configs are found from any directory
    configurable, bindings = RUNS[run_file]
    config = _build([f"models/t5_1_1_{size}_prompt.gin", run_file], TASK + bindings,
                    configurable)
    assert config.model.architecture == t5_1_1(size)  # dimensions stated once, in Python
    assert config.model.initial_checkpoint_path == "/ckpts/t5"


@pytest.mark.parametrize("prompt_file", PROMPT_FILES)
def test_each_prompt_file(prompt_file):
    config = _build(["models/t5_1_1_base_prompt.gin", prompt_file, "runs/prompt_finetune.gin"],
                    TASK + RUNS["runs/prompt_finetune.gin"][1]
                    + PROMPT_BINDINGS.get(prompt_file, []), TrainConfig)
    name = os.path.basename(prompt_file)[:-len(".gin")]
    assert config.prompt.init.__name__ == name
    assert config.prompt.length == 100 and config.train_steps == 10


def test_the_recipe_alone_takes_the_architecture_from_the_checkpoint():
    config = _build(["models/t5_1_1_prompt.gin", "runs/prompt_finetune.gin"],
                    TASK + RUNS["runs/prompt_finetune.gin"][1], TrainConfig)
    assert config.model.architecture is None


def test_the_embedded_default():
    config = _build(["runs/embedded_default.gin"], ["MODEL_DIR = 'rel/run'"], TrainConfig)
    assert config.model.architecture == t5_1_1("tiny")
    assert config.model_dir == os.path.abspath("rel/run")  # resolved once, at the edge
    assert (config.prompt.length, config.train_steps) == (20, 300)


def test_the_reference_spelling_resolves_to_the_same_files():
    ours = ["models/t5_1_1_base_prompt.gin", "prompts/from_sampled_vocab.gin",
            "runs/prompt_finetune.gin"]
    reference = [f"prompt_tuning/configs/{name}" for name in ours]
    bindings = TASK + RUNS["runs/prompt_finetune.gin"][1]
    assert _build(reference, bindings, TrainConfig) == _build(ours, bindings, TrainConfig)


@pytest.mark.parametrize("binding, message", [
    ("TRAIN_STEP = 10", "gin macro TRAIN_STEP is set but nothing in this command's config uses "
                        "it. Did you mean TRAIN_STEPS?"),
    ("NUM_PARTITION = 2", "Did you mean NUM_PARTITIONS?"),
    ("COMPLETELY_UNRELATED = 1", "gin macro COMPLETELY_UNRELATED is set but nothing"),
])
def test_a_macro_nothing_uses_is_refused(binding, message):
    with pytest.raises(errors.UsageError, match=message.replace("?", r"\?").replace(".", r"\.")):
        gin_config.parse(["runs/embedded_default.gin"], ["MODEL_DIR = '/x'", binding])


@pytest.mark.parametrize("typo, meant", [("TRAIN_STEP = 10", "TRAIN_STEPS"),
                                          ("MODELDIR = '/runs/x'", "MODEL_DIR")])
def test_a_typo_for_a_required_macro_names_the_typo_first(typo, meant):
    """The misspelt macro leaves the required one unset: the typo is what to fix."""
    given = [b for b in RUNS["runs/prompt_finetune.gin"][1] if not b.startswith(meant + " ")]
    with pytest.raises(errors.UsageError) as raised:
        gin_config.parse(["models/t5_1_1_tiny_prompt.gin", "prompts/random_uniform.gin",
                          "runs/prompt_finetune.gin"], TASK + given + [typo])
    assert str(raised.value) == (f"gin macro {typo.split()[0]} is set but nothing in this "
                                 f"command's config uses it. Did you mean {meant}?")


@pytest.mark.parametrize("included", [False, True])
def test_a_gin_file_that_is_not_utf8_is_named_with_its_line(tmp_path, included):
    mine = tmp_path / "mine.gin"
    mine.write_bytes(b"# my settings\nEVAL_PERIOD = 5  # caf\xe9\n")
    given = mine
    if included:
        given = tmp_path / "outer.gin"
        given.write_text(f"include '{mine}'\n")
    with pytest.raises(errors.UsageError) as raised:
        gin_config.parse(["runs/embedded_default.gin", str(given)], ["MODEL_DIR = '/x'"])
    assert str(raised.value) == (f"{mine}:2: not valid UTF-8 (byte 0xe9 at column 23); save "
                                 "the file as UTF-8.")


def test_every_combination_of_kinds_parses_in_any_order():
    files = ["models/t5_1_1_tiny_prompt.gin", "prompts/random_uniform.gin",
             "runs/prompt_finetune.gin"]
    bindings = TASK + RUNS["runs/prompt_finetune.gin"][1]
    built = [_build(list(order), bindings, TrainConfig)
             for order in itertools.permutations(files)]
    assert all(config == built[0] for config in built)


@pytest.mark.parametrize("accelerator", ACCELERATOR_FILES)
@pytest.mark.parametrize("run_file", sorted(RUNS))
def test_accelerator_files_set_bfloat16_wherever_they_are_given(accelerator, run_file):
    """Given first on the command line, an accelerator file still wins over the model file's
    float32 (it is parsed after the model, prompt and run files); a flag wins over it."""
    configurable, bindings = RUNS[run_file]
    files = [accelerator, "models/t5_1_1_base_prompt.gin", run_file]
    config = _build(files, TASK + bindings, configurable)
    assert config.model.dtype == "bfloat16"
    assert config.model.remat_policy == "none"  # base needs no memory settings
    config = _build(files, TASK + bindings + ["ACTIVATION_DTYPE = 'float32'"], configurable)
    assert config.model.dtype == "float32"


@pytest.mark.parametrize("size", ["xl", "xxl"])
def test_the_largest_sizes_ship_their_memory_settings(size):
    config = _build([f"models/t5_1_1_{size}_prompt.gin", "runs/prompt_finetune.gin"],
                    TASK + RUNS["runs/prompt_finetune.gin"][1], TrainConfig)
    assert (config.model.remat_policy, config.model.scan_layers, config.model.dtype) == (
        "full", True, "bfloat16")
    assert config.partitioning.activation_partitioning_dims == 2
    # T5X's partitioner name binds the same settings, after the size file.
    config = _build([f"models/t5_1_1_{size}_prompt.gin", "runs/prompt_finetune.gin"],
                    TASK + RUNS["runs/prompt_finetune.gin"][1]
                    + ["partitioning.PjitPartitioner.model_parallel_submesh = (4, 4, 1, 2)",
                       "REMAT_POLICY = 'minimal'"], TrainConfig)
    assert config.partitioning.model_parallel_submesh == (4, 4, 1, 2)
    assert config.partitioning.activation_partitioning_dims == 2
    assert config.model.remat_policy == "minimal"


@pytest.mark.parametrize("name", ["prefix", "suffix"])
def test_the_placement_is_chosen_by_name(name):
    from prompt_tuning.prompts import placements

    config = _build(["models/t5_1_1_tiny_prompt.gin", "prompts/random_uniform.gin",
                     "runs/prompt_finetune.gin"],
                    TASK + ["MODEL_DIR = '/runs/x'", "TRAIN_STEPS = 10", f"PLACEMENT = '{name}'"],
                    TrainConfig)
    assert config.prompt.placement is getattr(placements, name)


def test_an_unknown_placement_name_is_one_line():
    with pytest.raises(errors.UsageError, match=r"^PLACEMENT must be one of \['prefix', "
                                                r"'suffix'\] \(or a placement function\), got "
                                                r"'sufix'\."):
        _build(["models/t5_1_1_tiny_prompt.gin", "prompts/random_uniform.gin",
                "runs/prompt_finetune.gin"],
               TASK + ["MODEL_DIR = '/runs/x'", "TRAIN_STEPS = 10", "PLACEMENT = 'sufix'"],
               TrainConfig)
