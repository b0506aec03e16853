"""What TRAIN_STEPS means: T5X's absolute step when the initial checkpoint records one.

T5X restores the pre-training step with the weights and counts on from it, so the reference's
`TRAIN_STEPS=1_150_000` on `checkpoint_1100000` is 50,000 prompt-tuning steps. A checkpoint
without a step (Hugging Face, our own conversions) has nothing to count from: TRAIN_STEPS is the
number of prompt-tuning steps. The run's own step numbers (checkpoints, logs, TensorBoard)
always count prompt-tuning steps.
"""

from __future__ import annotations

from typing import Optional

from prompt_tuning import errors


def prompt_steps(train_steps: int, checkpoint_step: Optional[int]) -> tuple[int, str]:
    """(prompt-tuning steps to run, one line that says how TRAIN_STEPS was read)."""
    if not checkpoint_step:
        return train_steps, (f"TRAIN_STEPS={train_steps} is the number of prompt-tuning steps "
                             "(the initial checkpoint records no step).")
    if train_steps <= checkpoint_step:
        raise errors.UsageError(
            f"TRAIN_STEPS={train_steps} is not past the initial checkpoint's step "
            f"{checkpoint_step}: as in T5X, TRAIN_STEPS counts the pre-training steps too, e.g. "
            f"TRAIN_STEPS={checkpoint_step + 1000} for 1000 prompt-tuning steps.")
    steps = train_steps - checkpoint_step
    return steps, (f"TRAIN_STEPS={train_steps} counts the initial checkpoint's {checkpoint_step} "
                   f"steps, as in T5X: {steps} prompt-tuning steps.")
