"""The base model a PEFT adapter names (`base_model_name_or_path`), so that Hugging Face can load
it: `AutoPeftModelForSeq2SeqLM.from_pretrained(ADAPTER)` reads the base from there.

Hugging Face loads a T5 from a directory of `config.json` + `model.safetensors` (or a Hub
name). So: `--base_model` when given; else the run's checkpoint when it is such a directory, or
`builtin:tiny_t5` (which ships as one, `prompt_tuning/assets/tiny_t5`), by absolute path; else
(a T5X or orbax checkpoint, a gs:// path, nothing recorded) no base, and a note says how to get
one (`convert_checkpoint --to=huggingface`, then `--base_model`).
"""

from __future__ import annotations

import os
from typing import Optional

from prompt_tuning import errors, paths


def _hf_directory(path: str) -> Optional[str]:
    """The Hugging Face directory `path` reads from (a built-in one too), or None."""
    from prompt_tuning.checkpoints import formats  # pylint: disable=import-outside-toplevel

    try:
        found, directory = formats.resolve_checkpoint(path)
    except (errors.UserError, OSError):
        return None
    return os.path.abspath(directory) if found == formats.HUGGINGFACE else None


def _looks_like_a_path(value: str) -> bool:
    return value.startswith(("/", ".", "~")) or os.path.exists(value) or not paths.is_local(value)


def base_model(model: Optional[str], given: Optional[str]) -> tuple[Optional[str], Optional[str]]:
    """(what the adapter names as its base, a note line for the user or None).

    Args:
      model: the checkpoint the prompt was trained with (its metadata's "model"), if known.
      given: `--base_model`: a Hugging Face T5 directory, or a Hugging Face Hub name.
    """
    if given:
        if not _looks_like_a_path(given):
            return given, None  # a Hub name, e.g. google/t5-base-lm-adapt
        directory = _hf_directory(paths.resolve(given))
        if directory is None:
            raise errors.UsageError(
                f"--base_model {given} is not a Hugging Face T5 directory (config.json + "
                "model.safetensors); convert_checkpoint --to=huggingface writes one.")
        return directory, None
    if model and (model.startswith(paths.BUILTIN_PREFIX) or paths.is_local(model)):
        directory = _hf_directory(model)
        if directory is not None:
            return directory, None
    return None, (f"the adapter names no base model: {model or 'the checkpoint'} is not a Hugging "
                  "Face T5 directory. For AutoPeftModelForSeq2SeqLM, convert it with "
                  "convert_checkpoint --to=huggingface and export again with "
                  "--base_model=THAT_DIR.")
