"""TRAIN_STEPS as T5X reads it: the absolute step when the initial checkpoint records one."""

import pytest

from prompt_tuning import errors
from prompt_tuning.training.train_steps import prompt_steps


def test_a_t5x_checkpoint_step_is_counted():
    steps, line = prompt_steps(1_150_000, 1_100_000)
    assert steps == 50_000
    assert line == ("TRAIN_STEPS=1150000 counts the initial checkpoint's 1100000 steps, as in "
                    "T5X: 50000 prompt-tuning steps.")


@pytest.mark.parametrize("checkpoint_step", [None, 0])
def test_without_a_step_it_is_the_number_of_prompt_steps(checkpoint_step):
    steps, line = prompt_steps(300, checkpoint_step)
    assert steps == 300
    assert line == ("TRAIN_STEPS=300 is the number of prompt-tuning steps (the initial "
                    "checkpoint records no step).")


@pytest.mark.parametrize("train_steps", [1000, 1_100_000])
def test_a_step_not_past_the_checkpoint_is_refused_with_the_fix(train_steps):
    with pytest.raises(errors.UsageError, match=(
            f"^TRAIN_STEPS={train_steps} is not past the initial checkpoint's step 1100000: as "
            r"in T5X, TRAIN_STEPS counts the pre-training steps too, e.g\. TRAIN_STEPS=1101000 "
            "for 1000 prompt-tuning steps.$")):
        prompt_steps(train_steps, 1_100_000)
