"""Soft prompts: the modules, their placements, initializers, settings, files and model seam."""

from prompt_tuning.prompts.config import PromptConfig
from prompt_tuning.prompts.bank import PromptBank
from prompt_tuning.prompts.module import PROMPT_AXES, Prompt
from prompt_tuning.prompts.padded_table import PaddedPromptTable
from prompt_tuning.prompts.placements import Placement, prefix, suffix
from prompt_tuning.prompts.table import TABLE_AXES, PromptTable

__all__ = ["PROMPT_AXES", "TABLE_AXES", "PaddedPromptTable", "Placement", "Prompt", "PromptBank",
           "PromptConfig", "PromptTable", "prefix", "suffix"]
