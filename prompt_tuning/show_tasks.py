r"""Lists the registered tasks and mixtures, or prints a task's first examples.

  python -m prompt_tuning.show_tasks
  python -m prompt_tuning.show_tasks --task=taskless_super_glue_rte_v102 --split=validation \
    --num_examples=3 --tfds_data_dir=/data/tfds

Each example shows, per feature, the text the model sees and its token ids (with EOS), then the
other fields the task keeps (label, idx, ...). Nothing is downloaded: a TFDS dataset that is not
prepared is an error.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional, Sequence

from absl import flags

from prompt_tuning import cli, errors
from prompt_tuning.cli import gin_config


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("task", None, "a task or mixture; without it, list every registered "
                        "name.", flag_values=values)
    flags.DEFINE_string("split", "validation", "the split to print examples of.",
                        flag_values=values)
    flags.DEFINE_integer("num_examples", 3, "how many examples to print.", flag_values=values)
    gin_config.define_data_flags(values)


def format_mixture(name: str, rates: Iterable[tuple[str, Optional[float]]]) -> str:
    """`name: task rate, task rate, ...` (`?` for a rate that could not be computed)."""
    parts = ", ".join(f"{task} {'?' if rate is None else f'{rate:g}'}" for task, rate in rates)
    return f"{name}: {parts}"


def format_listing(tasks: Iterable[str],
                   mixtures: Mapping[str, Iterable[tuple[str, Optional[float]]]]) -> str:
    """The task names, then each mixture with its subtasks and rates."""
    tasks = sorted(tasks)
    lines = [f"Tasks ({len(tasks)}):"] + [f"  {name}" for name in tasks]
    lines.append(f"Mixtures ({len(mixtures)}):")
    lines += [f"  {format_mixture(name, mixtures[name])}" for name in sorted(mixtures)]
    return "\n".join(lines)


def _as_printable(value: Any) -> str:
    """bytes -> text; numpy values -> plain lists/scalars (so output is readable and diffable)."""
    if isinstance(value, bytes):
        return repr(value.decode("utf-8", errors="replace"))
    if hasattr(value, "tolist"):
        value = value.tolist()
        if isinstance(value, bytes):
            return repr(value.decode("utf-8", errors="replace"))
        if isinstance(value, list) and value and isinstance(value[0], bytes):
            return repr([v.decode("utf-8", errors="replace") for v in value])
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_as_printable(v)}" for k, v in value.items()) + "}"
    return str(value)


def format_example(example: Mapping[str, Any], feature_names: Iterable[str]) -> str:
    """One example: each feature's text and ids, then the remaining fields."""
    lines, shown = [], set()
    for name in feature_names:
        text_key = f"{name}_pretokenized"
        if text_key in example:
            lines.append(f"  {name}: {_as_printable(example[text_key])}")
            shown.add(text_key)
        if name in example:
            ids = _as_printable(example[name])
            lines.append(f"  {name} ids ({len(example[name])}): {ids}")
            shown.add(name)
    for key in sorted(set(example) - shown):
        lines.append(f"  {key}: {_as_printable(example[key])}")
    return "\n".join(lines)


def first_examples(task: Any, split: str, num_examples: int) -> list[dict[str, Any]]:
    """The first `num_examples` preprocessed, tokenized, untruncated examples of `split`."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    tasks.check_split(task.name, split)
    tasks.check_prepared(task.name, split)
    # No in-memory cache: it would read the whole split to print a few examples.
    dataset = task.get_dataset(sequence_length=None, split=split, shuffle=False,
                               use_cached=False, try_in_mem_cache=False)
    return list(tfds.as_numpy(dataset.take(num_examples)))


def show_task(name: str, split: str, num_examples: int) -> str:
    """The examples of a task, or, for a mixture, its subtasks (examples come per task)."""
    from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    if num_examples < 1:
        raise errors.UsageError(f"--num_examples must be at least 1, got {num_examples}.")
    provider = tasks.get_task_or_mixture(name)
    if isinstance(provider, seqio.Mixture):
        return ("Mixture " + format_mixture(name, _rates(provider))
                + "\nPass --task=<one of its tasks> to see examples.")
    examples = first_examples(provider, split, num_examples)
    header = f"{name} ({split}): first {len(examples)} example(s)"
    blocks = [f"[{i}]\n" + format_example(ex, provider.output_features)
              for i, ex in enumerate(examples)]
    return "\n".join([header] + blocks)


def list_all() -> str:
    """Every registered task and mixture."""
    from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel

    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel,unused-import

    mixtures = {}
    for name in seqio.MixtureRegistry.names():
        mixtures[name] = _rates(seqio.get_mixture_or_task(name))
    return format_listing(seqio.TaskRegistry.names(), mixtures)


def _rates(mixture: Any) -> list[tuple[str, Optional[float]]]:
    """(task, rate) of each subtask; None where a rate function cannot run (e.g. data missing)."""
    rates = []
    for task in mixture.tasks:
        try:
            rate = float(mixture.get_rate(task))
        except Exception:  # pylint: disable=broad-except  # a listing must not need the data
            rate = None
        rates.append((task.name, rate))
    return rates


def main(argv: Sequence[str]) -> None:
    """Lists everything, or with --task prints the first examples of --split."""
    values = cli.parse_flags(argv, define_flags, __doc__)
    gin_config.apply_data_flags(values)
    if values.task:
        print(show_task(values.task, values.split, values.num_examples))
    else:
        print(list_all())


if __name__ == "__main__":
    cli.run(main)
