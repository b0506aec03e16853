"""The dev-set evaluation's predictors compiled for the mesh from shapes alone (`eval --dry_run`,
and the evaluation part of `train --dry_run`); `runtime.memory` has the machinery."""

from __future__ import annotations

import os
from typing import Any, Mapping

from prompt_tuning import notes, partitioning, paths
from prompt_tuning.data.features import FEATURES
from prompt_tuning.evaluation import evaluator, predictors
from prompt_tuning.evaluation.prompt_source import PromptSource
from prompt_tuning.prompts.bank import PromptBank
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


def eval_job_memory(config: Any, placement: Placement,
                    prompt_length: int) -> list[memory.ProgramMemory]:
    """`eval --dry_run`: the job's predictors for its prompt's length P (`job_prompt_length`);
    the frozen model is not read."""
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import PromptConfig  # pylint: disable=import-outside-toplevel

    length = job_prompt_length(config.prompt, prompt_length)
    config.model.check_input_length(length, config.task_feature_lengths["inputs"])
    model = memory.abstract_model(config.model, PromptConfig(length=length), placement)
    return evaluation_memory(config.evaluation, config.task_feature_lengths, model,
                             vocab.get_vocabulary(config.model.vocabulary_path), placement)


def _given_paths(source: PromptSource) -> list[str]:
    """Every prompt file or run directory `source` names."""
    if source.task_prompt_files is not None:
        return list(source.task_prompt_files.values())
    if source.ensemble_files is not None:
        return list(source.ensemble_files)
    return [source.prompt_file or source.model_dir]


def job_prompt_length(source: PromptSource, prompt_length: int) -> int:
    """P for `eval --dry_run`: when every prompt `source` names is a local file or run that
    exists, the longest of their own lengths (prompts are small to read); otherwise (a gs://
    path, a file not there yet) `prompt_length` (PROMPT_LENGTH), said in one note line, since
    a dry run reads no path beyond this machine's and needs the prompt's shape alone."""
    given = _given_paths(source)
    if not all(paths.is_local(p) and os.path.exists(p) for p in given):
        notes.note(f"dry run: {', '.join(given)} not read (not a local path that exists); the "
                   f"prompt is taken as PROMPT_LENGTH={prompt_length} rows of the model's width.")
        return prompt_length
    if source.ensemble_files is not None:
        return max(prompt.shape[0] for _, prompt in source.load_ensemble())
    prompt, _, _ = source.load_any()  # [P, d], a run's table [n, P, d], or a PromptBank
    if isinstance(prompt, PromptBank):
        return max(prompt.get(name).shape[0] for name in prompt.names)
    return prompt.shape[-2]
