"""Every registered task and mixture, and the look-ups the rest of the package uses.

Importing this module registers, once, the built-in tasks, SuperGLUE and GLUE (each family
registers itself through one explicit `register()` call listed here, not by import side effects
scattered over modules).
"""

from __future__ import annotations

import difflib
from typing import Any, Optional, Sequence

import seqio

from prompt_tuning.data import builtin, glue, superglue

_FAMILIES = (builtin, superglue, glue)


def _register_all() -> None:
    for family in _FAMILIES:
        family.register()


def get_task_or_mixture(name: str) -> Any:
    """The seqio Task or Mixture called `name`, or a clear error naming close matches."""
    try:
        return seqio.get_mixture_or_task(name)
    except ValueError:
        pass
    known = sorted(seqio.TaskRegistry.names()) + sorted(seqio.MixtureRegistry.names())
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.6)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise ValueError(f"Unknown task or mixture {name!r} (MIXTURE_OR_TASK_NAME).{hint} "
                     "`python -m prompt_tuning.show_tasks` lists them.")


def get_label_classes(name: str) -> Optional[Sequence[str]]:
    """The label strings of a classification task (for rank classification), else None."""
    task = get_task_or_mixture(name)
    return getattr(getattr(task, "postprocessor", None), "label_classes", None)


def check_vocabulary(name: str, vocabulary: Any) -> None:
    """The task must tokenize with the model's vocabulary."""
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel

    for task in seqio.get_subtasks(get_task_or_mixture(name)):
        for feature_name, feature in task.output_features.items():
            if not vocab.same_vocabulary(feature.vocabulary, vocabulary):
                raise ValueError(
                    f"Task {task.name!r} tokenizes {feature_name!r} with another vocabulary "
                    f"({getattr(feature.vocabulary, 'sentencepiece_model_file', '?')}) than the "
                    "model's (VOCABULARY_PATH).")


_register_all()
