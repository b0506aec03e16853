"""The reference's own launch scripts run with only the module name changed.

google-research/prompt-tuning ships `prompt_tuning/scripts/sst2-demo.sh`, `sst2-demo-eval.sh` and
`sst2-demo-xxl.sh`. `SCRIPTS` below holds their commands flag for flag (Apache-2.0), with
`python3 -m t5x.train|eval` replaced by `python3 -m prompt_tuning.train|eval`; bash runs them, so
`find_module` and the quoting work as in the scripts. What a test appends to shrink the run
(a local checkpoint in place of gs://, TRAIN_STEPS past its step, shorter lengths, smaller
batches) comes after the scripts' flags, as "$@". The data is SST-2 in TFDS `glue/sst2:2.0.0`,
prepared by `prepare_data` with the real TFDS builder from a hand-made `SST-2.zip`; the
checkpoint is T5X legacy `checkpoint_1100000`, base-shaped (d 768, one layer each, random).
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from prompt_tuning.model import T5Config
from tests.checkpoints import t5x_writers, tiny
from tests.data import raw_archives
from tests.launch import runner

pytestmark = pytest.mark.slow

_FIND = """T5X_DIR="`python3 -m prompt_tuning.scripts.find_module t5x`/.."
FLAXFORMER_DIR="`python3 -m prompt_tuning.scripts.find_module flaxformer`/.."
PROMPT_DIR="`python3 -m prompt_tuning.scripts.find_module prompt_tuning`/.."
"""
SCRIPTS = {
    "sst2-demo.sh": _FIND + """PRETRAINED_MODEL="gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_base/checkpoint_1100000"

python3 -m prompt_tuning.train \\
  --gin_search_paths="${T5X_DIR},${FLAXFORMER_DIR},${PROMPT_DIR}" \\
  --gin_file="prompt_tuning/configs/models/t5_1_1_base_prompt.gin" \\
  --gin_file="prompt_tuning/configs/prompts/from_class_labels.gin" \\
  --gin_file="prompt_tuning/configs/runs/prompt_finetune.gin" \\
  --gin.CLASS_LABELS="['positive', 'negative']" \\
  --gin.MODEL_DIR="'${MODEL_DIR}'" \\
  --gin.MIXTURE_OR_TASK_NAME="'taskless_glue_sst2_v200_examples'" \\
  --gin.MIXTURE_OR_TASK_MODULE="'prompt_tuning.data.glue'" \\
  --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \\
  --gin.INITIAL_CHECKPOINT_PATH="'${PRETRAINED_MODEL}'" \\
  --gin.TRAIN_STEPS="1_150_000" \\
  --gin.USE_CACHED_TASKS="False" \\
  --tfds_data_dir=${TFDS_DATA_DIR} "$@"
""",
    "sst2-demo-eval.sh": _FIND + """PRETRAINED_MODEL="gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_base/checkpoint_1100000"
PROMPT_FILE="`python3 -m prompt_tuning.scripts.find_module prompt_tuning`/pretrained_prompts/t5_1_1_lm100k_base/sst2.npy"

python3 -m prompt_tuning.eval \\
  --gin_search_paths="${T5X_DIR},${FLAXFORMER_DIR},${PROMPT_DIR}" \\
  --gin_file="prompt_tuning/configs/models/t5_1_1_base_prompt.gin" \\
  --gin_file="prompt_tuning/configs/runs/prompt_eval.gin" \\
  --gin.MIXTURE_OR_TASK_NAME="'taskless_glue_sst2_v200_examples'" \\
  --gin.MIXTURE_OR_TASK_MODULE="'prompt_tuning.data.glue'" \\
  --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \\
  --gin.CHECKPOINT_PATH="'${PRETRAINED_MODEL}'" \\
  --gin.EVAL_OUTPUT_DIR="'${EVAL_DIR}'" \\
  --gin.utils.DatasetConfig.split="'validation'" \\
  --gin.utils.DatasetConfig.batch_size="128" \\
  --gin.USE_CACHED_TASKS="False" \\
  --gin.PROMPT_FILE="'${PROMPT_FILE}'" \\
  --tfds_data_dir=${TFDS_DATA_DIR} "$@"
""",
    "sst2-demo-xxl.sh": _FIND + """PRETRAINED_MODEL="gs://t5-data/pretrained_models/t5x/t5_1_1_lm100k_xxl/checkpoint_1100000"

python3 -m prompt_tuning.train \\
  --gin_search_paths="${T5X_DIR},${FLAXFORMER_DIR},${PROMPT_DIR}" \\
  --gin_file="prompt_tuning/configs/models/t5_1_1_xxl_prompt.gin" \\
  --gin_file="prompt_tuning/configs/prompts/from_class_labels.gin" \\
  --gin_file="prompt_tuning/configs/runs/prompt_finetune.gin" \\
  --gin.CLASS_LABELS="['positive', 'negative']" \\
  --gin.MODEL_DIR="'${MODEL_DIR}'" \\
  --gin.MIXTURE_OR_TASK_NAME="'taskless_glue_sst2_v200_examples'" \\
  --gin.MIXTURE_OR_TASK_MODULE="'prompt_tuning.data.glue'" \\
  --gin.TASK_FEATURE_LENGTHS="{'inputs': 512, 'targets': 8}" \\
  --gin.INITIAL_CHECKPOINT_PATH="'${PRETRAINED_MODEL}'" \\
  --gin.TRAIN_STEPS="1_150_000" \\
  --gin.USE_CACHED_TASKS="False" \\
  --gin.BATCH_SIZE="32" \\
  --gin.partitioning.PjitPartitioner.model_parallel_submesh="(4, 4, 1, 2)" \\
  --tfds_data_dir=${TFDS_DATA_DIR} "$@"
""",
}
TASK = "taskless_glue_sst2_v200_examples"
RELEASED_PROMPT = os.path.join(os.path.dirname(__file__), "released_prompts",
                               "t5_1_1_lm100k_base", "sst2.npy")
# Base-shaped where a prompt meets it (d 768, T5's vocabulary), one layer each to stay small.
BASE_SHAPED = T5Config(vocab_size=32128, emb_dim=768, num_heads=12, head_dim=64, mlp_dim=256,
                       num_encoder_layers=1, num_decoder_layers=1)
# The architecture is read from the checkpoint (the base file names 12 layers).
FROM_CHECKPOINT = "--gin.frozen_model.ModelConfig.architecture=None"


def run_script(name: str, env: dict, *extra: str) -> runner.Result:
    full_env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **env,
                "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    proc = subprocess.run(["bash", "-c", SCRIPTS[name], name, *extra], cwd=runner.REPO,
                          env=full_env, capture_output=True, text=True, timeout=900)
    return runner.Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture(scope="module")
def tfds_data_dir(tmp_path_factory) -> str:
    raw, data = tmp_path_factory.mktemp("raw"), tmp_path_factory.mktemp("tfds")
    raw_archives.write(str(raw), ["glue/sst2:2.0.0"])
    result = runner.run_subprocess("prompt_tuning.prepare_data", f"--tasks={TASK}",
                                   f"--tfds_data_dir={data}", f"--raw_dir={raw}")
    assert result.returncode == 0, result.stderr
    return str(data)


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory) -> str:
    params = {k: (0.05 * v).astype(np.float32) for k, v in tiny.random_params(BASE_SHAPED).items()}
    model_dir = tmp_path_factory.mktemp("t5_1_1_lm100k_base")
    return t5x_writers.write_t5x_legacy(str(model_dir), params, step=1_100_000)


def test_sst2_demo_trains_to_the_absolute_step(tmp_path, tfds_data_dir, base_checkpoint):
    model_dir = str(tmp_path / "model")
    result = run_script("sst2-demo.sh", {"MODEL_DIR": model_dir, "TFDS_DATA_DIR": tfds_data_dir},
                        f"--gin.INITIAL_CHECKPOINT_PATH='{base_checkpoint}'",
                        "--gin.TRAIN_STEPS=1_100_004", FROM_CHECKPOINT,
                        "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 4}",
                        "--gin.BATCH_SIZE=2", "--gin.EVAL_PERIOD=2", "--gin.EVAL_BATCH_SIZE=4",
                        "--gin.PROMPT_LENGTH=4")
    assert result.returncode == 0, result.stderr[-3000:]
    # T5X's TRAIN_STEPS counts checkpoint_1100000's steps: 4 prompt-tuning steps are left.
    assert ("TRAIN_STEPS=1100004 counts the initial checkpoint's 1100000 steps, as in T5X: 4 "
            "prompt-tuning steps.") in result.stderr
    with open(os.path.join(model_dir, "run.json")) as f:
        assert json.load(f)  # the run's record is there
    assert "dev score at step 4" in result.stdout
    # The _examples task's samples (input, target, prediction) reach TensorBoard as text.
    events = glob.glob(os.path.join(model_dir, "validation", "*tfevents*"))
    assert events and any(b"wrong samples" in open(p, "rb").read() for p in events)


def test_sst2_demo_eval_evaluates_the_released_prompt(tmp_path, tfds_data_dir, base_checkpoint):
    eval_dir = str(tmp_path / "eval")
    result = run_script("sst2-demo-eval.sh", {"EVAL_DIR": eval_dir,
                                              "TFDS_DATA_DIR": tfds_data_dir},
                        f"--gin.CHECKPOINT_PATH='{base_checkpoint}'", FROM_CHECKPOINT,
                        f"--gin.PROMPT_FILE='{RELEASED_PROMPT}'")
    assert result.returncode == 0, result.stderr[-3000:]
    with open(os.path.join(eval_dir, "eval_results.json")) as f:
        results = json.load(f)
    assert results["split"] == "validation"
    assert RELEASED_PROMPT in results["prompt"]
    assert 0.0 <= results["metrics"][TASK]["accuracy"] <= 100.0
    samples = results["samples"][TASK]["samples"]
    assert "input: sentence: " in samples and "input: sst2" not in samples  # taskless
    sentences = raw_archives.EXPECTED["glue/sst2:2.0.0"][2]
    assert any(sentence.strip() in samples for sentence in sentences)


def test_sst2_demo_xxl_compiles_on_the_references_mesh():
    # 32 simulated devices stand in for the v3-32 slice; --dry_run compiles the real step from
    # shapes (no 44 GB checkpoint read) and says whether it fits a v3 core's 16 GiB. Every path
    # stays gs://, as in the script: a dry run looks at none (a laptop without network).
    result = run_script("sst2-demo-xxl.sh", {
        "MODEL_DIR": "gs://bucket/sst2-xxl", "TFDS_DATA_DIR": "gs://bucket/tfds",
        "XLA_FLAGS": "--xla_force_host_platform_device_count=32"},
        "--dry_run", "--device_memory_gib=16")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dry run: fits: peak" in result.stdout
    assert not os.path.exists(os.path.join(runner.REPO, "gs:"))
