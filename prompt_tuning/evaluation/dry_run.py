"""The dev-set evaluation's predictors compiled for the mesh from shapes alone (`eval --dry_run`,
and the evaluation part of `train --dry_run`); `runtime.memory` has the machinery."""

from __future__ import annotations

from typing import Any, Mapping

from prompt_tuning import partitioning
from prompt_tuning.data.features import FEATURES
from prompt_tuning.evaluation import evaluator, predictors
from prompt_tuning.runtime import EvalConfig, Placement, memory


def evaluation_memory(config: EvalConfig, task_feature_lengths: Mapping[str, int],
                      model: memory.AbstractModel, vocabulary: Any, placement: Placement
                      ) -> list[memory.ProgramMemory]:
    """One program per distinct predictor of `config`'s task: the generator (its decoding
    cache included), or rank classification per label set. Reads the task's registration and
    the vocabulary (for EOS and the label strings), no data."""
    placement.check_batch_size(config.batch_size)
    lengths = task_feature_lengths
    batch = memory.abstract_batch(
        {name: (config.batch_size, lengths["inputs" if name == "encoder_input_tokens"
                                           else "targets"]) for name in FEATURES},
        partitioning.batch_sharding(placement.mesh))
    parts = {"parameters": memory.per_device(model.params), "batch": memory.per_device(batch)}
    name = f"evaluation ({config.describe()}, batch {config.batch_size})"
    if config.mode == "generate":
        predict = predictors.generation_predictor(model.net, config.decoding, lengths["targets"],
                                                  vocabulary.eos_id)
        return [memory.program_memory(name, placement.jit_predict(predict, model.shardings),
                                      (model.params, batch), parts)]
    programs, seen = [], set()
    for task in evaluator.subtasks(config.mixture_or_task_name):
        labels = tuple(evaluator.rank_labels(task))
        if labels in seen:
            continue
        seen.add(labels)
        label_ids = predictors.label_targets(vocabulary, labels, lengths["targets"])
        predict = predictors.rank_classification_predictor(model.net, label_ids)
        programs.append(memory.program_memory(
            f"{name}, {len(labels)} labels", placement.jit_predict(predict, model.shardings),
            (model.params, batch), parts))
    return programs


def eval_job_memory(config: Any, placement: Placement) -> list[memory.ProgramMemory]:
    """`eval --dry_run`: the job's predictors for its prompt's length (the prompt file is read,
    it is small; the frozen model is not)."""
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import PromptConfig  # pylint: disable=import-outside-toplevel

    prompt, _ = config.prompt.load()
    config.model.check_input_length(prompt.shape[0], config.task_feature_lengths["inputs"])
    model = memory.abstract_model(config.model, PromptConfig(length=prompt.shape[0]), placement)
    return evaluation_memory(config.evaluation, config.task_feature_lengths, model,
                             vocab.get_vocabulary(config.model.vocabulary_path), placement)
