"""Exporting trained prompts."""

from prompt_tuning.export.exporter import export, prompt_from_file, prompt_from_run

__all__ = ["export", "prompt_from_file", "prompt_from_run"]
