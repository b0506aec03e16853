"""What train, eval, infer and score share: the frozen model, the prompt at its seam, the
forward pass and score step, and how the dev set is evaluated.

`training/` and `evaluation/` both build on this layer and never on each other.
"""

from prompt_tuning.runtime.eval_config import EvalConfig
from prompt_tuning.runtime.forward import logits, make_score_step, token_log_probs
from prompt_tuning.runtime.frozen_model import FrozenModel, ModelConfig, load_frozen_model
from prompt_tuning.runtime.placement import Placement
from prompt_tuning.runtime.prompted_model import (check_prompt_width, init_prompt,
                                                  model_for_training, with_prompt,
                                                  with_prompts, without_prompt)

__all__ = ["EvalConfig", "FrozenModel", "ModelConfig", "Placement", "check_prompt_width",
           "init_prompt",
           "load_frozen_model", "logits", "make_score_step", "model_for_training",
           "token_log_probs", "with_prompt", "with_prompts", "without_prompt"]
