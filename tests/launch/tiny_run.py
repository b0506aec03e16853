"""Tiny configs for the launch tests, and one real training run shared by a whole test session.

The run is `python -m prompt_tuning.train` as a user types it: the shipped model, prompt and run
files, a user gin file found through `--gin_search_paths`, `--gin_bindings` and `--gin.NAME=VALUE`.
It trains for TRAIN_STEPS on the tiny built-in T5 and evaluates on the first EVAL_EXAMPLES dev
examples every EVAL_PERIOD steps, so eval tests can compare their metric with the recorded one.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from tests.launch import runner

TASK = "taskless_builtin_topic"
TRAIN_STEPS = 20
EVAL_PERIOD = 5
CHECKPOINT_PERIOD = 5
KEEP = 3
PROMPT_LENGTH = 10
BATCH_SIZE = 8
EVAL_EXAMPLES = 64
EMBED_DIM = 64  # the tiny T5's d
TINY_T5_DIR = os.path.join(runner.REPO, "prompt_tuning", "assets", "tiny_t5")

# What every entry point needs to know about the model and the task.
MODEL_FLAGS = ("--gin_file=models/t5_1_1_tiny_prompt.gin",
               "--gin.INITIAL_CHECKPOINT_PATH='builtin:tiny_t5'",
               f"--gin.MIXTURE_OR_TASK_NAME='{TASK}'",
               "--gin.TASK_FEATURE_LENGTHS={'inputs': 32, 'targets': 4}")
# A user's own run file, kept outside the package: found through --gin_search_paths, parsed after
# the shipped files (it is neither a model, a prompt nor a run file), so its values win.
USER_GIN_NAME = "my_tiny_run.gin"
LEARNING_RATE = 0.1  # not the recipe's 0.3: dev accuracy then climbs over several evaluations
USER_GIN = f"""from __gin__ import dynamic_registration
from prompt_tuning.runtime import eval_config
from prompt_tuning.training import optim

EVAL_PERIOD = {EVAL_PERIOD}
CHECKPOINT_PERIOD = {CHECKPOINT_PERIOD}
eval_config.EvalConfig.num_examples = {EVAL_EXAMPLES}
optim.AdafactorConfig.learning_rate = {LEARNING_RATE}
"""


def train_flags(model_dir: str, *extra: str, prompt_file: str = "prompts/from_sampled_vocab.gin",
                train_steps: int = TRAIN_STEPS) -> list[str]:
    """Flags of a small training run (no user gin file: periods given as --gin. flags)."""
    return [*MODEL_FLAGS, f"--gin_file={prompt_file}", "--gin_file=runs/prompt_finetune.gin",
            f"--gin.TRAIN_STEPS={train_steps}", f"--gin.PROMPT_LENGTH={PROMPT_LENGTH}",
            f"--gin.BATCH_SIZE={BATCH_SIZE}", f"--gin.EVAL_PERIOD={EVAL_PERIOD}",
            f"--gin.CHECKPOINT_PERIOD={CHECKPOINT_PERIOD}", f"--gin.CHECKPOINTS_TO_KEEP={KEEP}",
            f"--gin.eval_config.EvalConfig.num_examples={EVAL_EXAMPLES}",
            f"--gin.optim.AdafactorConfig.learning_rate={LEARNING_RATE}",
            f"--gin.MODEL_DIR='{model_dir}'", *extra]


def eval_flags(output_dir: str, *extra: str) -> list[str]:
    """Flags of `prompt_tuning.eval` on the same dev examples the shared run evaluated."""
    return [*MODEL_FLAGS, "--gin_file=runs/prompt_eval.gin",
            f"--gin.EVAL_OUTPUT_DIR='{output_dir}'",
            f"--gin.eval_config.EvalConfig.num_examples={EVAL_EXAMPLES}", *extra]


def infer_flags(output_file: str, *extra: str) -> list[str]:
    """Flags of `prompt_tuning.infer` writing JSONL predictions to `output_file`."""
    return [*MODEL_FLAGS, "--gin_file=runs/prompt_infer.gin",
            f"--gin.INFER_OUTPUT_FILE='{output_file}'", *extra]


@dataclasses.dataclass(frozen=True)
class SharedRun:
    model_dir: str
    result: runner.Result
    user_gin_dir: str

    def best_info(self) -> dict[str, Any]:
        """The best checkpoint's step and its recorded {"score", "metrics"}."""
        best_dir = os.path.join(self.model_dir, "best")
        (step,) = [int(name) for name in os.listdir(best_dir) if name.isdigit()]
        with open(os.path.join(best_dir, str(step), "info", "metadata")) as f:
            return {"step": step, **json.load(f)}


_SHARED: dict[str, SharedRun] = {}


def shared_run_flags(model_dir: str, user_gin_dir: str) -> list[str]:
    """The shared run's command line (its user gin file lies in `user_gin_dir`)."""
    return [*MODEL_FLAGS, "--gin_file=prompts/from_sampled_vocab.gin",
            "--gin_file=runs/prompt_finetune.gin", f"--gin_file={USER_GIN_NAME}",
            f"--gin_search_paths={user_gin_dir}", f"--gin_bindings=BATCH_SIZE = {BATCH_SIZE}",
            f"--gin_bindings=CHECKPOINTS_TO_KEEP = {KEEP}", f"--gin.TRAIN_STEPS={TRAIN_STEPS}",
            f"--gin.PROMPT_LENGTH={PROMPT_LENGTH}", f"--gin.MODEL_DIR='{model_dir}'"]


def shared_run(tmp_path_factory) -> SharedRun:
    """Trains once per test session with the real command line; later calls reuse the run."""
    if "run" not in _SHARED:
        root = tmp_path_factory.mktemp("shared_run")
        user_dir = root / "user_configs"
        user_dir.mkdir()
        (user_dir / USER_GIN_NAME).write_text(USER_GIN)
        model_dir = str(root / "run")
        result = runner.run_subprocess("prompt_tuning.train",
                                       *shared_run_flags(model_dir, str(user_dir)))
        assert result.returncode == 0, result.stderr[-3000:]
        _SHARED["run"] = SharedRun(model_dir, result, str(user_dir))
    return _SHARED["run"]
