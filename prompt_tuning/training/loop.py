"""The training loop: restore or initialise, train, evaluate on the dev set, checkpoint, select.

One linear function in sections, like big_vision's trainer. Everything the user can get wrong
is checked before MODEL_DIR is touched.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Optional

import jax
import numpy as np
from absl import logging

from prompt_tuning import partitioning as partitioning_lib
from prompt_tuning.evaluation import evaluator as evaluator_lib
from prompt_tuning.evaluation import predictors
from prompt_tuning.training import checkpointing, datasets, model_setup, optim, step as step_lib
from prompt_tuning.training import trainable

PyTree = Any


@dataclasses.dataclass(frozen=True)
class CheckpointConfig:
    period: int = 1000
    keep: int = 2


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _run_description(model_config, prompt_config, dataset) -> dict[str, Any]:
    return {"task": dataset.mixture_or_task_name,
            "initial_checkpoint_path": model_config.initial_checkpoint_path,
            "prompt_length": prompt_config.length,
            "task_feature_lengths": dict(dataset.task_feature_lengths),
            "batch_size": dataset.batch_size, "seed": dataset.seed}


def _task_names(train_dataset, eval_config) -> list[str]:
    """The training task and, if another, the evaluation task: each must exist (checked now)."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    names = [train_dataset.mixture_or_task_name]
    if eval_config is not None and eval_config.mixture_or_task_name not in (None, names[0]):
        names.append(eval_config.mixture_or_task_name)
    for name in names:
        tasks.get_task_or_mixture(name)
    return names


def _check_vocabulary(task_names, frozen) -> None:
    """Each task must tokenize with the model's vocabulary (VOCABULARY_PATH): ids must agree."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    for name in task_names:
        tasks.check_vocabulary(name, frozen.vocabulary)


def _load_sharded(model: model_setup.ModelConfig, mesh, rules
                  ) -> tuple[model_setup.FrozenModel, Any]:
    """The frozen model, each parameter on its sharding (read straight onto it when the
    architecture is known in advance, as from a size gin file), and those shardings."""
    if model.architecture is not None:
        shardings = partitioning_lib.param_shardings(model.architecture, mesh, rules)
        return model_setup.load_frozen_model(model, shardings), shardings
    frozen = model_setup.load_frozen_model(model)
    shardings = partitioning_lib.param_shardings(frozen.config, mesh, rules)
    frozen.params = partitioning_lib.put_sharded(frozen.params, shardings)
    return frozen, shardings


def _split_trainable(prompt_params, frozen_params, patterns, frozen_shardings):
    """(trainable {path: array}, frozen tree, frozen shardings) by `PromptConfig.trainable`.

    The default trains the prompt alone; regexes may add frozen-model parameters (e.g. layer
    norms), which then train and are checkpointed with the prompt.
    """
    params = trainable.merge(prompt_params, frozen_params)
    paths = trainable.trainable_paths(params, patterns)
    if "prompt/prompt" not in paths:
        raise ValueError(f"PromptConfig.trainable {list(patterns)} leaves the prompt frozen; "
                         "include 'prompt/.*'.")
    trained, frozen_rest = trainable.split(params, paths)
    extra = [p for p in paths if p != "prompt/prompt"]
    return trained, frozen_rest, partitioning_lib.frozen_shardings(frozen_shardings, extra)


def make_task_evaluator(eval_config: evaluator_lib.EvalConfig, model, frozen, lengths
                        ) -> evaluator_lib.TaskEvaluator:
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    def make_predictor(task):
        if eval_config.mode == "generate":
            return predictors.generation_predictor(model, eval_config.decoding, lengths["targets"])
        labels = tasks.get_label_classes(task.name)
        if not labels:
            raise ValueError(f"Rank classification needs label strings; task {task.name!r} has none "
                             "(use EvalConfig.mode='generate').")
        return predictors.rank_classification_predictor(
            model, predictors.label_targets(frozen.vocabulary, labels, lengths["targets"]))

    return evaluator_lib.TaskEvaluator(eval_config, lengths, make_predictor)


def train(*, model_dir: str, train_dataset: datasets.DatasetConfig,
          model: model_setup.ModelConfig, train_steps: int,
          prompt: model_setup.PromptConfig = model_setup.PromptConfig(),
          optimizer: optim.AdafactorConfig = optim.AdafactorConfig(),
          loss: step_lib.LossConfig = step_lib.LossConfig(),
          eval_config: Optional[evaluator_lib.EvalConfig] = evaluator_lib.EvalConfig(),
          eval_period: int = 1000,
          checkpoint: CheckpointConfig = CheckpointConfig(),
          partitioning: partitioning_lib.PartitioningConfig = partitioning_lib.PartitioningConfig(),
          seed: int = 0, log_period: int = 10, progress: bool = True,
          on_start: Optional[Callable[[str], Any]] = None) -> dict[str, Any]:
    """Prompt-tunes a frozen model; returns a summary (final/best metrics and steps).

    `on_start(model_dir)` runs once the config is validated and MODEL_DIR may be written (the
    launcher saves the operative gin config there).
    """
    # --- Validate everything before touching MODEL_DIR -------------------------------------
    if not isinstance(train_steps, int) or train_steps <= 0:
        raise ValueError(f"TRAIN_STEPS must be a positive integer, got {train_steps!r}.")
    model_setup.check_input_length(model, prompt.length,
                                   train_dataset.task_feature_lengths["inputs"])
    task_names = _task_names(train_dataset, eval_config)
    description = _run_description(model, prompt, train_dataset)
    checkpointing.check_model_dir(model_dir, description)
    host = jax.process_index()
    mesh, rules = partitioning.mesh(), partitioning.rules()
    partitioning_lib.check_batch_size(train_dataset.batch_size, mesh)
    layout = partitioning_lib.data_layout(mesh)
    frozen, frozen_shardings = _load_sharded(model, mesh, rules)
    _check_vocabulary(task_names, frozen)
    net = model_setup.make_model(frozen, prompt)
    if eval_config is not None:
        eval_config = dataclasses.replace(
            eval_config, mixture_or_task_name=(eval_config.mixture_or_task_name
                                               or train_dataset.mixture_or_task_name))
        task_evaluator = make_task_evaluator(eval_config, net, frozen,
                                             train_dataset.task_feature_lengths)

    # --- State: resume from MODEL_DIR, or a fresh prompt ----------------------------------
    tx = optim.adafactor(optimizer)
    rng = jax.random.PRNGKey(seed)
    init_rng, dropout_root = jax.random.split(rng)
    trained, frozen_params, frozen_shardings = _split_trainable(
        model_setup.init_prompt(prompt, frozen, init_rng), frozen.params, prompt.trainable,
        frozen_shardings)
    state = partitioning_lib.shard_train_state(step_lib.TrainState.create(trained, tx), mesh)
    runs = checkpointing.RunCheckpoints(model_dir, keep=checkpoint.keep, writer=True)
    record = {"best_score": None, "best_step": None, "best_metrics": None}
    if runs.latest_step() is not None:  # restored first: a bad checkpoint fails before any write
        # Restored onto this run's shardings, whatever topology saved it.
        state, record = runs.restore(jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state))
        logging.info("Resumed from %s at step %d.", model_dir, int(state.step))
    checkpointing.write_run_file(model_dir, description)
    if on_start is not None:
        on_start(model_dir)
    start = int(state.step)

    # --- Writers ----------------------------------------------------------------------------
    from clu import metric_writers  # pylint: disable=import-outside-toplevel
    train_writer = metric_writers.create_default_writer(f"{model_dir}/train", just_logging=host > 0)
    eval_writer = metric_writers.create_default_writer(f"{model_dir}/validation",
                                                       just_logging=host > 0)
    train_step = partitioning_lib.jit_train_step(
        step_lib.make_train_step(net, tx, loss), mesh, partitioning_lib.state_shardings(state, mesh),
        frozen_shardings, partitioning_lib.batch_sharding(mesh), rules)

    def run_eval(step: int) -> dict:
        metrics = task_evaluator.evaluate(trainable.merge(state.params, frozen_params), step)
        score = evaluator_lib.selection_score(metrics, eval_config.metric)
        eval_writer.write_scalars(step, {f"{t}/{m}": v for t, ms in metrics.items()
                                         for m, v in ms.items()} | {"selection_score": score})
        if record["best_score"] is None or score > record["best_score"]:
            record.update(best_score=score, best_step=step, best_metrics=metrics)
            runs.save_best(step, state.params, {"score": score, "metrics": metrics})
        return {"metrics": metrics, "score": score}

    summary: dict[str, Any] = {"start_step": start}
    if eval_config is not None and start == 0:
        summary["initial_eval"] = run_eval(0)
    # --- Train --------------------------------------------------------------------------------
    batches = datasets.batches(train_dataset, start, layout.shard_id, layout.num_shards)
    bar = _progress_bar(progress and host == 0, start, train_steps)
    tick, tick_step = time.time(), start
    step = start
    try:
        for step in range(start + 1, train_steps + 1):
            batch = partitioning_lib.global_batch(next(batches), mesh)
            new_state, metrics = train_step(state, frozen_params, batch,
                                            jax.random.fold_in(dropout_root, step))
            loss_value = float(metrics["loss"])
            # The loss is that of the old prompt; the updated prompt is checked as well, so a
            # checkpoint never holds a non-finite one.
            if not math.isfinite(loss_value) or not bool(metrics["params_finite"]):
                what = (f"loss became {loss_value}" if not math.isfinite(loss_value)
                        else "the update made the prompt non-finite")
                last = runs.latest_step()
                raise NonFiniteLossError(
                    f"{what} at step {step}; stopped. " + (
                        f"The last good checkpoint is step {last} in {model_dir}." if last
                        is not None else f"No checkpoint was saved in {model_dir}.")
                    + " Lower the learning rate or check the data.")
            state = new_state
            if step % log_period == 0 or step == train_steps:
                rate = (step - tick_step) / max(time.time() - tick, 1e-9)
                tick, tick_step = time.time(), step
                per_token = loss_value / max(float(metrics["num_tokens"]), 1.0)
                train_writer.write_scalars(step, {
                    "loss": loss_value, "loss_per_token": per_token,
                    "cross_entropy": float(metrics["cross_entropy"]),
                    "z_loss": float(metrics["z_loss"]), "grad_norm": float(metrics["grad_norm"]),
                    "learning_rate": float(optim.learning_rate_schedule(optimizer)(step)),
                    "steps_per_sec": rate,
                    "examples_per_sec": rate * train_dataset.batch_size})
                bar(step, f"loss/token {per_token:.4f}  {rate:.2f} steps/s")
            if eval_config is not None and (step % eval_period == 0 or step == train_steps):
                summary["final_eval"] = run_eval(step)
            if step % checkpoint.period == 0 or step == train_steps:
                runs.save(state, record)
    finally:
        bar(None, "")
        train_writer.flush()
        eval_writer.flush()
        runs.close()
    summary.update(final_step=step, best_step=record["best_step"],
                   best_score=record["best_score"], best_metrics=record["best_metrics"],
                   prompt=np.asarray(partitioning_lib.host_local(state.params["prompt/prompt"])))
    return summary


def _progress_bar(enabled: bool, start: int, total: int):
    """A one-line progress display: `step 120/1000 [####......] loss/token 0.53  4.1 steps/s`."""
    import sys  # pylint: disable=import-outside-toplevel

    def show(step: Optional[int], text: str) -> None:
        if not enabled:
            return
        if step is None:
            sys.stderr.write("\n")
            return
        filled = int(30 * step / total)
        sys.stderr.write(f"\rstep {step}/{total} [{'#' * filled}{'.' * (30 - filled)}] {text}")
        sys.stderr.flush()

    return show
