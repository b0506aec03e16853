r"""Builds the frozen model of the embedded default: a tiny T5 1.1 that knows the built-in tasks.

A frozen *random* model learns little through a prompt, so the project pre-trains one tiny model
once, on the built-in tasks written with their task prefixes (`sentiment sentence: ...`,
`topic sentence: ...`, ...), all parameters trained. Prompt tuning then runs on the *taskless*
topic task (no prefix): without a prompt the model does not know which task is asked, and
the prompt learns to stand in for the missing prefix, as in Lester et al.'s taskless setting.

The result ships in the package (prompt_tuning/assets/tiny_t5/, Hugging Face layout, bfloat16 to
halve its size). Re-run to rebuild it (about 5 minutes on 2 CPU cores):

  .venv/bin/python scripts/pretrain_tiny_model.py --output=prompt_tuning/assets/tiny_t5
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from prompt_tuning.checkpoints import huggingface
from prompt_tuning.data import pipeline
from prompt_tuning.model import Transformer, init_params, t5_1_1
from prompt_tuning.training import losses, step as step_lib, trainable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--output", default="prompt_tuning/assets/tiny_t5")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--learning_rate", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    config = t5_1_1("tiny", dropout_rate=0.0)
    model = Transformer(config)
    params = trainable.flatten(init_params(model, jax.random.PRNGKey(args.seed)))
    tx = optax.chain(optax.clip_by_global_norm(1.0),
                     optax.adamw(optax.warmup_cosine_decay_schedule(
                         0.0, args.learning_rate, 200, args.steps), weight_decay=0.0))
    state = step_lib.TrainState.create(params, tx)
    loss_config = losses.LossConfig(loss_normalizing_factor="NUM_REAL_TARGET_TOKENS")
    train_step = jax.jit(step_lib.make_train_step(model, tx, loss_config), donate_argnums=(0,))
    data = pipeline.batches(pipeline.DatasetConfig(
        "builtin_pretrain", {"inputs": 32, "targets": 4}, batch_size=args.batch_size,
        seed=args.seed))
    start = time.time()
    for step in range(1, args.steps + 1):
        state, metrics = train_step(state, {}, next(data), jax.random.PRNGKey(step))
        if step % 100 == 0:
            print(f"step {step}: loss/token {float(metrics['loss']):.4f} "
                  f"({time.time() - start:.0f}s)", flush=True)

    flat = {k: np.asarray(jax.device_get(v)).astype(jnp.bfloat16) for k, v in state.params.items()}
    parent = os.path.dirname(os.path.abspath(args.output))
    tmp = tempfile.mkdtemp(dir=parent, prefix=".tiny_t5-")
    huggingface.save_hf_checkpoint(flat, config, tmp, dtype=np.dtype(jnp.bfloat16))
    if os.path.exists(args.output):
        shutil.rmtree(args.output)
    os.replace(tmp, args.output)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
