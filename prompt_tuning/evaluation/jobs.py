"""The eval and infer jobs: a frozen model plus a prompt from a file (or a run), no training state.

Each job is a validated config that gin builds (`EvalJobConfig`, `InferJobConfig`) and a
function that runs it; everything that can be checked without reading the checkpoint is checked
when the config is built. Both run on a mesh as training does (`partitioning`, `NUM_PARTITIONS`):
the frozen model read onto its shardings, batches split over 'data' and hosts; the first process
writes the output.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Mapping, Optional, Union

import numpy as np

from prompt_tuning import atomic_write, errors, filesystem, paths, runtime, shapes_only
from prompt_tuning.prompts import seam
from prompt_tuning.data import pipeline, truncation
from prompt_tuning.decoding import DecodingConfig
from prompt_tuning.evaluation import evaluator as evaluator_lib
from prompt_tuning.evaluation import predictors
from prompt_tuning.evaluation.prompt_source import PromptSource
from prompt_tuning.partitioning import PartitioningConfig
from prompt_tuning.prompts.bank import PromptBank

RESULTS_FILE = "eval_results.json"


@dataclasses.dataclass(frozen=True)
class EvalJobConfig:
    """`python -m prompt_tuning.eval`: the task's metrics on a split, for one prompt.

    Attributes:
      model: the frozen model.
      evaluation: task (required), split, mode, decoding, ...
      task_feature_lengths: {'inputs': N, 'targets': M} (the prompt comes on top of N).
      output_dir: EVAL_OUTPUT_DIR; `eval_results.json` is written there.
      prompt: where the prompt comes from.
      partitioning: the device mesh (the same settings as training's).
    """

    model: runtime.ModelConfig
    evaluation: runtime.EvalConfig
    task_feature_lengths: Mapping[str, int]
    output_dir: str
    prompt: PromptSource
    partitioning: PartitioningConfig = PartitioningConfig()

    def __post_init__(self):
        if not self.evaluation.mixture_or_task_name:
            raise errors.UsageError("MIXTURE_OR_TASK_NAME is required for eval.")
        pipeline.check_feature_lengths(self.task_feature_lengths)
        if not isinstance(self.output_dir, str) or not self.output_dir:
            raise errors.UsageError(f"EVAL_OUTPUT_DIR must be a directory path, got "
                                    f"{self.output_dir!r}.")
        object.__setattr__(self, "output_dir", paths.resolve(self.output_dir))
        if not shapes_only.active():  # a dry run writes nothing there
            paths.check_output_dir(self.output_dir, "EVAL_OUTPUT_DIR")
            paths.check_output_file(filesystem.join(self.output_dir, RESULTS_FILE),
                                    "EVAL_OUTPUT_DIR")


@dataclasses.dataclass(frozen=True)
class InferJobConfig:
    """`python -m prompt_tuning.infer`: JSONL predictions for a split.

    Attributes:
      model: the frozen model.
      dataset: task, split (SPLIT), lengths, batch size (INFER_BATCH_SIZE); read in order, once.
      output_file: INFER_OUTPUT_FILE, JSONL `{inputs, prediction, targets}` per example.
      decoding: greedy or beam search.
      prompt: where the prompt comes from.
      num_examples: the first N examples only (None: the whole split).
      partitioning: the device mesh (the same settings as training's).
    """

    model: runtime.ModelConfig
    dataset: pipeline.DatasetConfig
    output_file: str
    prompt: PromptSource
    decoding: DecodingConfig = DecodingConfig()
    num_examples: Optional[int] = None
    partitioning: PartitioningConfig = PartitioningConfig()

    def __post_init__(self):
        if self.num_examples is not None and (
                isinstance(self.num_examples, bool) or not isinstance(self.num_examples, int)
                or self.num_examples < 1):
            raise errors.UsageError(f"NUM_EXAMPLES must be a positive integer or None, got "
                                    f"{self.num_examples!r}.")
        if not isinstance(self.output_file, str) or not self.output_file:
            raise errors.UsageError(f"INFER_OUTPUT_FILE must be a file path, got "
                                    f"{self.output_file!r}.")
        object.__setattr__(self, "output_file", paths.resolve(self.output_file))
        paths.check_output_file(self.output_file, "INFER_OUTPUT_FILE")
        object.__setattr__(self, "dataset", dataclasses.replace(self.dataset, shuffle=False))


def _prompted_model(model: runtime.ModelConfig, placement: runtime.Placement, task_name: str,
                    split: str, use_cached: bool, prompt: Union[np.ndarray, PromptBank],
                    source: str, inputs_length: int):
    """(frozen model, model, params on their shardings, their shardings) for one prompt `[P, d]`
    or a bank of them (picked by `prompt_ids`); the task, split and lengths are checked before
    the big read."""
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    longest = (max(prompt.get(n).shape[0] for n in prompt.names)
               if isinstance(prompt, PromptBank) else prompt.shape[0])
    model.check_input_length(longest, inputs_length)
    tasks.check_split(task_name, split)  # fails fast, before the checkpoint is read
    tasks.check_prepared(task_name, split, use_cached)
    frozen, shardings = placement.load_frozen(model)
    tasks.check_vocabulary(task_name, frozen.vocabulary)
    if isinstance(prompt, PromptBank):
        if prompt.width != frozen.config.emb_dim:
            raise errors.PromptFileError(f"{source}: the prompts are {prompt.width} wide; the "
                                         f"model's embeddings are {frozen.config.emb_dim}.")
        net, params = runtime.with_prompts(frozen, prompt)
    else:
        net, params = runtime.with_prompt(frozen, prompt, source)
    prompt_part = {seam.SCOPE: params[seam.SCOPE]}
    shardings = placement.with_replicated(shardings, prompt_part)
    params = {**params, **placement.place(prompt_part, {seam.SCOPE: shardings[seam.SCOPE]})}
    return frozen, net, params, shardings


def evaluate(config: EvalJobConfig) -> dict[str, Any]:
    """Evaluates the prompt; writes and returns `{prompt, split, mode, metrics, score}` (and,
    for an ensemble, `members`: each prompt's metrics and score)."""
    if config.prompt.ensemble_files is not None:
        return evaluate_ensemble(config)
    prompt, source, prompt_tasks = config.prompt.load_any()
    evaluation = config.evaluation
    placement = runtime.Placement.of(config.partitioning)
    placement.check_batch_size(evaluation.batch_size)
    frozen, net, params, shardings = _prompted_model(
        config.model, placement, evaluation.mixture_or_task_name, evaluation.split,
        evaluation.use_cached, prompt, source, config.task_feature_lengths["inputs"])
    # A multi-task run's table: each task evaluated with its own prompt.
    prompt_index = None if prompt_tasks is None else {t: i for i, t in enumerate(prompt_tasks)}
    task_evaluator = evaluator_lib.task_evaluator(evaluation, config.task_feature_lengths, net,
                                                  frozen.vocabulary, placement, shardings,
                                                  prompt_index)
    metrics = task_evaluator.evaluate(params)
    result = {"prompt": source, "split": evaluation.split, "mode": evaluation.describe(),
              "metrics": metrics, "score": task_evaluator.selection_score(metrics)}
    if task_evaluator.samples:  # `_examples` tasks: what the model said, to read
        result["samples"] = task_evaluator.samples
    if placement.is_primary:
        atomic_write.write_text_atomically(filesystem.join(config.output_dir, RESULTS_FILE),
                                           json.dumps(result, indent=2))
    return result


def evaluate_ensemble(config: EvalJobConfig) -> dict[str, Any]:
    """Each prompt of ENSEMBLE_PROMPT_FILES and their ensemble, in one batched pass."""
    from prompt_tuning.evaluation import ensemble  # pylint: disable=import-outside-toplevel

    loaded = config.prompt.load_ensemble()
    bank = PromptBank(loaded[0][1].shape[1])
    names = []
    for path, value in loaded:
        name = path if path not in names else f"{path} #{len(names) + 1}"
        bank.add(name, value, path)
        names.append(name)
    evaluation = config.evaluation
    placement = runtime.Placement.of(config.partitioning)
    placement.check_batch_size(evaluation.batch_size)
    frozen, net, params, shardings = _prompted_model(
        config.model, placement, evaluation.mixture_or_task_name, evaluation.split,
        evaluation.use_cached, bank, "ENSEMBLE_PROMPT_FILES",
        config.task_feature_lengths["inputs"])
    lengths = config.task_feature_lengths

    def make_predictor(task):
        if evaluation.mode == "generate":
            return ensemble.generation_predictor(net, evaluation.decoding, lengths["targets"],
                                                 frozen.vocabulary.eos_id, len(names))
        labels = evaluator_lib.rank_labels(task)
        return ensemble.rank_predictor(
            net, predictors.label_targets(frozen.vocabulary, labels, lengths["targets"]),
            len(names))

    task_evaluator = ensemble.EnsembleEvaluator(names, evaluation, lengths, make_predictor,
                                                frozen.vocabulary, placement, shardings)
    metrics = task_evaluator.evaluate(params)
    members = {name: {"metrics": m, "score": task_evaluator.selection_score(m)}
               for name, m in task_evaluator.members.items()}
    result = {"prompt": f"ensemble of {len(names)}", "split": evaluation.split,
              "mode": evaluation.describe(), "metrics": metrics,
              "score": task_evaluator.selection_score(metrics), "members": members}
    if placement.is_primary:
        atomic_write.write_text_atomically(filesystem.join(config.output_dir, RESULTS_FILE),
                                           json.dumps(result, indent=2))
    return result


def _in_mixture_order(bank: PromptBank, mixture: str) -> PromptBank:
    """`bank` (named by task) reordered as the mixture's tasks, whose examples carry their
    task's index there as `prompt_ids`; every task needs a prompt."""
    from prompt_tuning.data import multitask  # pylint: disable=import-outside-toplevel

    tasks = multitask.prompt_tasks(mixture)
    missing = [t for t in tasks if t not in bank]
    if missing:
        raise errors.UsageError(f"TASK_PROMPT_FILES has no prompt for task {missing[0]!r} of "
                                f"{mixture!r}; it names {bank.names}.")
    ordered = PromptBank(bank.width)
    for task in tasks:
        ordered.add(task, bank.get(task))
    return ordered


def infer(config: InferJobConfig) -> int:
    """Decodes the split; writes JSONL {inputs, prediction, targets}; returns how many."""
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel

    prompt, source, prompt_tasks = config.prompt.load_any()
    dataset = config.dataset
    if isinstance(prompt, PromptBank) and dataset.mixture_or_task_name not in prompt_tasks:
        prompt = _in_mixture_order(prompt, dataset.mixture_or_task_name)
        prompt_tasks = prompt.names
    placement = runtime.Placement.of(config.partitioning)
    placement.check_batch_size(dataset.batch_size)
    frozen, net, params, shardings = _prompted_model(
        config.model, placement, dataset.mixture_or_task_name, dataset.split,
        dataset.use_cached, prompt, source, dataset.task_feature_lengths["inputs"])
    vocabulary = frozen.vocabulary
    predictor = predictors.generation_predictor(
        net, config.decoding, dataset.task_feature_lengths["targets"], vocabulary.eos_id)
    if prompt_tasks is not None:  # a multi-task run's table: each example with its task's row
        if dataset.mixture_or_task_name in prompt_tasks:
            predictor = predictors.with_prompt_id(
                predictor, prompt_tasks.index(dataset.mixture_or_task_name))
        else:
            from prompt_tuning.data import multitask  # pylint: disable=import-outside-toplevel
            if multitask.prompt_tasks(dataset.mixture_or_task_name) != prompt_tasks:
                raise errors.UsageError(
                    f"{source} holds the prompts of {prompt_tasks}; infer one of them or their "
                    f"mixture, not {dataset.mixture_or_task_name!r}.")
            dataset = dataclasses.replace(dataset, prompt_per_task=True)
    predict = placement.jit_predict(predictor, shardings)
    text = lambda row: vocabulary.decode(vocab.ids_before_eos(row, vocabulary))  # noqa: E731
    lines: list[str] = []
    with truncation.counting(truncation.Truncation()) as cut:
        read = pipeline.get_dataset(dataset, num_epochs=1)
    for batch in read.as_numpy_iterator():
        real = batch["encoder_input_tokens"].shape[0]
        padded = {k: np.pad(v, [(0, dataset.batch_size - real)] + [(0, 0)] * (v.ndim - 1))
                  for k, v in batch.items()}
        tokens = np.asarray(placement.fetch(predict(params, placement.put_batch(padded))))[:real]
        for i in range(real):
            if config.num_examples is not None and len(lines) >= config.num_examples:
                break
            lines.append(json.dumps({"inputs": text(batch["encoder_input_tokens"][i]),
                                     "prediction": text(tokens[i]),
                                     "targets": text(batch["decoder_target_tokens"][i])}))
        if config.num_examples is not None and len(lines) >= config.num_examples:
            break
    cut.note(dataset.task_feature_lengths, f"{dataset.split}")
    if placement.is_primary:
        atomic_write.write_text_atomically(config.output_file,
                                           "".join(line + "\n" for line in lines))
    return len(lines)
