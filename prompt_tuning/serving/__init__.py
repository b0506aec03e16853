"""Serving one frozen model with many prompts: the Python API (`MultiPromptModel`), the dynamic
batcher that mixes prompts in one batch, and the HTTP app (`python -m prompt_tuning.serve`)."""

from prompt_tuning.serving.engine import MultiPromptModel
from prompt_tuning.serving.programs import Limits

__all__ = ["Limits", "MultiPromptModel"]
