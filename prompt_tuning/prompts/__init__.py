"""Soft prompts: the module, its placements, initializers and file formats."""

from prompt_tuning.prompts.module import PROMPT_AXES, Prompt
from prompt_tuning.prompts.placements import Placement, prefix

__all__ = ["PROMPT_AXES", "Prompt", "Placement", "prefix"]
