"""Exporting trained prompts."""

from prompt_tuning.export.exporter import (check_step, export, prompt_from_file, prompt_from_run,
                                           run_prompts)

__all__ = ["check_step", "export", "prompt_from_file", "prompt_from_run", "run_prompts"]
