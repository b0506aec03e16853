"""The eval and infer jobs: a frozen model plus a prompt from a file (or a run), no training state."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Mapping, Optional

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning import atomic_write
from prompt_tuning.evaluation import evaluator as evaluator_lib
from prompt_tuning.evaluation import predictors
from prompt_tuning.training import datasets, model_setup

PyTree = Any


def load_prompt(prompt_file: Optional[str], model_dir: Optional[str], step: str = "best"
                ) -> tuple[np.ndarray, str]:
    """([P, d] float32, where it came from): an exported prompt file, or a run's checkpoint."""
    if prompt_file:
        from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
        return files.read_prompt(prompt_file), prompt_file
    if model_dir:
        # The exporter's reader refuses a directory that is not a run before opening it (opening
        # checkpoints would create empty checkpoint folders in a mistyped MODEL_DIR).
        from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel
        prompt, metadata = prompt_from_run(model_dir, step)
        return prompt, f"{model_dir} step {metadata['step']}"
    raise ValueError("No prompt: set PROMPT_FILE (an exported prompt) or MODEL_DIR (a run).")


def _load_model(model: model_setup.ModelConfig, task_name: str) -> model_setup.FrozenModel:
    """The frozen model, once the task is known to exist and to share the model's vocabulary."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    tasks.get_task_or_mixture(task_name)  # fails fast, before the checkpoint is read
    frozen = model_setup.load_frozen_model(model)
    tasks.check_vocabulary(task_name, frozen.vocabulary)
    return frozen


def _prompted(frozen: model_setup.FrozenModel, prompt: np.ndarray):
    if prompt.shape[1] != frozen.config.emb_dim:
        raise ValueError(f"The prompt is [{prompt.shape[0]}, {prompt.shape[1]}] but the model's "
                         f"embedding width is {frozen.config.emb_dim}.")
    model = model_setup.make_model(frozen, model_setup.PromptConfig(length=int(prompt.shape[0])))
    params = {**frozen.params, "prompt": {"prompt": jnp.asarray(prompt, jnp.float32)}}
    return model, params


def evaluate(*, model: model_setup.ModelConfig, eval_config: evaluator_lib.EvalConfig,
             task_feature_lengths: Mapping[str, int], output_dir: str,
             prompt_file: Optional[str] = None, model_dir: Optional[str] = None,
             step: str = "best") -> dict[str, dict[str, float]]:
    """Evaluates a prompt on `eval_config`'s task and split; writes `output_dir/eval_results.json`."""
    if not eval_config.mixture_or_task_name:
        raise ValueError("MIXTURE_OR_TASK_NAME is required for eval.")
    from prompt_tuning.training import loop  # pylint: disable=import-outside-toplevel

    prompt, source = load_prompt(prompt_file, model_dir, step)
    model_setup.check_input_length(model, prompt.shape[0], task_feature_lengths["inputs"])
    frozen = _load_model(model, eval_config.mixture_or_task_name)
    net, params = _prompted(frozen, prompt)
    task_evaluator = loop.make_task_evaluator(eval_config, net, frozen, task_feature_lengths)
    metrics = task_evaluator.evaluate(params)
    score = evaluator_lib.selection_score(metrics, eval_config.metric)
    result = {"prompt": source, "split": eval_config.split, "mode": eval_config.mode,
              "metrics": metrics, "score": score}
    atomic_write.write_text_atomically(os.path.join(output_dir, "eval_results.json"),
                                       json.dumps(result, indent=2))
    return result


def infer(*, model: model_setup.ModelConfig, dataset: datasets.DatasetConfig, output_file: str,
          decoding: predictors.DecodingConfig = predictors.DecodingConfig(),
          prompt_file: Optional[str] = None, model_dir: Optional[str] = None,
          step: str = "best", num_examples: Optional[int] = None) -> int:
    """Decodes every example of `dataset`'s split; writes JSONL {inputs, prediction, targets}."""
    prompt, _ = load_prompt(prompt_file, model_dir, step)
    model_setup.check_input_length(model, prompt.shape[0], dataset.task_feature_lengths["inputs"])
    frozen = _load_model(model, dataset.mixture_or_task_name)
    net, params = _prompted(frozen, prompt)
    predict = jax.jit(predictors.generation_predictor(
        net, decoding, dataset.task_feature_lengths["targets"]))
    vocabulary = frozen.vocabulary
    config = dataclasses.replace(dataset, shuffle=False)
    lines = []
    for batch in datasets.get_dataset(config, num_epochs=1).as_numpy_iterator():
        real = batch["encoder_input_tokens"].shape[0]
        padded = {k: np.pad(v, [(0, config.batch_size - real), (0, 0)]) for k, v in batch.items()}
        tokens = np.asarray(jax.device_get(predict(params, padded)))[:real]
        for i in range(real):
            lines.append(json.dumps({
                "inputs": vocabulary.decode(_ids(batch["encoder_input_tokens"][i])),
                "prediction": vocabulary.decode(_ids(tokens[i])),
                "targets": vocabulary.decode(_ids(batch["decoder_target_tokens"][i]))}))
            if num_examples is not None and len(lines) >= num_examples:
                break
        if num_examples is not None and len(lines) >= num_examples:
            break
    atomic_write.write_text_atomically(output_file, "".join(line + "\n" for line in lines))
    return len(lines)


def _ids(row: np.ndarray) -> list[int]:
    ids = [int(t) for t in row]
    return ids[:ids.index(1)] if 1 in ids else [t for t in ids if t]
