"""Where eval and infer take their prompt from: an exported file, or a training run."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

from prompt_tuning import errors, paths


@dataclasses.dataclass(frozen=True)
class PromptSource:
    """One of: `prompt_file` (PROMPT_FILE: `.npy`, PEFT adapter, our export), `model_dir`
    (MODEL_DIR: a run) and its `step` (CHECKPOINT_STEP: 'best', 'latest' or a number), or
    `ensemble_files` (ENSEMBLE_PROMPT_FILES: prompt files evaluated together, eval only), or
    `task_prompt_files` (TASK_PROMPT_FILES: {task: prompt file}, each task of a mixture with its
    own prompt)."""

    prompt_file: Optional[str] = None
    model_dir: Optional[str] = None
    step: Union[str, int] = "best"
    ensemble_files: Optional[Sequence[str]] = None
    task_prompt_files: Optional[Mapping[str, str]] = None

    def __post_init__(self):
        from prompt_tuning.export import check_step  # pylint: disable=import-outside-toplevel

        if self.task_prompt_files is not None:
            self._check_task_prompts()
        elif self.ensemble_files is not None:
            self._check_ensemble()
        elif self.prompt_file and self.model_dir:
            raise errors.UsageError("give PROMPT_FILE (an exported prompt) or MODEL_DIR (a run), "
                                    "not both.")
        elif not self.prompt_file and not self.model_dir:
            raise errors.UsageError("No prompt: set PROMPT_FILE (an exported prompt) or "
                                    "MODEL_DIR (a run).")
        for name in ("prompt_file", "model_dir"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise errors.UsageError(f"{name.upper()} must be a path, got {value!r}.")
            object.__setattr__(self, name, paths.resolve(value) or None)
        object.__setattr__(self, "step", check_step(self.step))

    def _check_ensemble(self) -> None:
        files = self.ensemble_files
        if isinstance(files, str) or not isinstance(files, (list, tuple)) or not all(
                isinstance(f, str) and f for f in files):
            raise errors.UsageError(f"ENSEMBLE_PROMPT_FILES must be a list of prompt files, got "
                                    f"{files!r}.")
        if not files:
            raise errors.UsageError("ENSEMBLE_PROMPT_FILES is empty: give the prompt files to "
                                    "ensemble, e.g. ['a.npy', 'b.npy', 'c.npy'].")
        if self.prompt_file or self.model_dir:
            raise errors.UsageError("give ENSEMBLE_PROMPT_FILES, or PROMPT_FILE or MODEL_DIR, "
                                    "not both.")
        object.__setattr__(self, "ensemble_files", tuple(paths.resolve(f) for f in files))

    def load_ensemble(self) -> list[tuple[str, np.ndarray]]:
        """[(name, [P, d] float32)] of ENSEMBLE_PROMPT_FILES; a name is the file's path."""
        from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
        return [(path, files.read_prompt(path)) for path in self.ensemble_files]

    def _check_task_prompts(self) -> None:
        files = self.task_prompt_files
        if not isinstance(files, Mapping) or not files or not all(
                isinstance(k, str) and k and isinstance(v, str) and v for k, v in files.items()):
            raise errors.UsageError(f"TASK_PROMPT_FILES must map task names to prompt files, "
                                    f"e.g. {{'task_a': 'a.npy', 'task_b': 'b.npy'}}, got "
                                    f"{files!r}.")
        if self.prompt_file or self.model_dir or self.ensemble_files is not None:
            raise errors.UsageError("give TASK_PROMPT_FILES, or PROMPT_FILE, MODEL_DIR or "
                                    "ENSEMBLE_PROMPT_FILES, not several.")
        object.__setattr__(self, "task_prompt_files",
                           {task: paths.resolve(path) for task, path in files.items()})

    def load_any(self) -> tuple[Any, str, Optional[list[str]]]:
        """(prompt, where it came from, None); or, for per-task prompts (a multi-task run's
        MODEL_DIR: its table `[n, P, d]`; TASK_PROMPT_FILES: a `PromptBank` named by task),
        the prompts, where from, and the tasks in row order."""
        if self.task_prompt_files is not None:
            from prompt_tuning.prompts import PromptBank, files  # pylint: disable=import-outside-toplevel
            read = {task: files.read_prompt(path) for task, path in self.task_prompt_files.items()}
            bank = PromptBank(next(iter(read.values())).shape[1])
            for task, value in read.items():
                bank.add(task, value, self.task_prompt_files[task])
            return bank, "TASK_PROMPT_FILES", bank.names
        if self.prompt_file:
            prompt, source = self.load()
            return prompt, source, None
        from prompt_tuning.export import run_prompts  # pylint: disable=import-outside-toplevel
        prompt, names, source = run_prompts(self.model_dir, self.step)
        return prompt, source, names

    def load(self) -> tuple[np.ndarray, str]:
        """([P, d] float32, where it came from, for output lines)."""
        if self.prompt_file:
            from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
            return files.read_prompt(self.prompt_file), self.prompt_file
        # The exporter's reader refuses a directory that is not a run before opening it (opening
        # checkpoints would create empty checkpoint folders in a mistyped MODEL_DIR).
        from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel
        prompt, metadata = prompt_from_run(self.model_dir, self.step)
        return prompt, f"{self.model_dir} step {metadata['step']}"
