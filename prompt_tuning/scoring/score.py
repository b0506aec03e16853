"""Log-likelihoods of targets given inputs, per example and per token."""

from __future__ import annotations

import sys
from typing import Any, Optional, Sequence

import numpy as np

from prompt_tuning import runtime
from prompt_tuning.prompts.bank import PromptBank
from prompt_tuning.scoring.batches import chunks, make_batch
from prompt_tuning.scoring.examples import Example, check_ids_fit


def choose_prompt(given: Optional[np.ndarray], given_path: Optional[str],
                  frozen: runtime.FrozenModel, use_stored: bool) -> Optional[np.ndarray]:
    """`given` (--prompt) if any, else the checkpoint's own prompt (if wanted), else None."""
    stored = frozen.stored_prompt
    if given is not None:
        if stored is not None:
            print(f"using the prompt from {given_path}, not the one stored in the checkpoint")
        return given
    if stored is not None and use_stored:
        print(f"using the prompt stored in the checkpoint, shape {list(np.shape(stored))} "
              "(--nouse_checkpoint_prompt to score without it)", file=sys.stdout)
        return np.asarray(stored, np.float32)
    return None


def score_examples(frozen: runtime.FrozenModel, examples: Sequence[Example],
                   prompt: Optional[np.ndarray] = None, batch_size: int = 16,
                   placement: Optional[runtime.Placement] = None, shardings: Any = None,
                   bank: Optional[PromptBank] = None) -> list[dict[str, Any]]:
    """`[{"log_likelihood": float, "token_log_probs": [float per target token]}]`, in order.

    Args:
      frozen: the frozen model.
      examples: token ids (see `read_examples`).
      prompt: `[P, embed]` prepended to every example's encoder inputs (None: no prompt).
      batch_size: examples per forward pass; the last batch is padded to it.
      placement, shardings: the mesh the frozen model was read onto and its shardings
        (`Placement.load_frozen`); None: one device.
      bank: named prompts; each example's `prompt` names its own, and a batch mixes them
        (instead of `prompt`).
    """
    import jax  # pylint: disable=import-outside-toplevel

    examples = [e if isinstance(e, Example) else Example(*e) for e in examples]
    check_ids_fit(examples, frozen.config.vocab_size)
    if bank is not None:
        model, params = runtime.with_prompts(frozen, bank)
        ids = bank.ids([e.prompt for e in examples])  # an unknown name fails before any work
    elif prompt is None:
        model, params = runtime.without_prompt(frozen)
    else:
        model, params = runtime.with_prompt(frozen, prompt, "--prompt")
    step = runtime.make_score_step(model)
    if placement is None:
        score = jax.jit(step)
        run = lambda batch: jax.device_get(score(params, batch))  # noqa: E731
    else:
        placement.check_batch_size(batch_size)
        extra = {k: v for k, v in params.items() if k not in shardings}  # the prompt
        shardings = placement.with_replicated(shardings, extra)
        params = {**params, **placement.place(extra, {k: shardings[k] for k in extra})}
        score = placement.jit_predict(step, shardings)
        run = lambda batch: placement.fetch(score(params, placement.put_batch(batch)))  # noqa: E731
    results = []
    for start, chunk in zip(range(0, len(examples), batch_size), chunks(examples, batch_size)):
        batch = make_batch(chunk, batch_size)
        if bank is not None:  # padding rows use prompt 0; their scores are dropped
            batch["prompt_ids"] = np.pad(ids[start:start + len(chunk)],
                                         (0, batch_size - len(chunk)))
        out = run(batch)
        for i, example in enumerate(chunk):
            n = len(example.targets)
            results.append({"log_likelihood": float(out["log_likelihood"][i]),
                            "token_log_probs": [float(x) for x in out["token_log_probs"][i][:n]]})
    return results
