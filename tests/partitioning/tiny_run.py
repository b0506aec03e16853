"""A few prompt-tuning steps of a tiny model on any mesh; shared by the tests and their
subprocesses so sharded and single-device runs do exactly the same work.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning import partitioning, runtime
from prompt_tuning.model import T5Config, Transformer
from prompt_tuning.prompts import Prompt
from prompt_tuning.training import optim, step as step_lib, trainable

# Every split axis (vocab 64, heads 8, heads*head_dim 32, mlp 64, and embed 32 for 2-D parameter
# sharding) divides by up to 8 devices.
CONFIG = T5Config(vocab_size=64, emb_dim=32, num_heads=8, num_encoder_layers=1,
                  num_decoder_layers=1, head_dim=4, mlp_dim=64, dropout_rate=0.1)
PROMPT_LENGTH = 4
BATCH = 8
STEPS = 3
# Adafactor's updates are normalised (about +-lr per entry), so float32 rounding differences
# between sharded and single-device reductions grow with the learning rate: at the paper's 0.3
# the prompts differ by ~2.5e-5 after 3 steps. A smaller rate keeps them within 1e-5 while the
# prompt still moves by ~0.01 per step.
OPTIMIZER = optim.AdafactorConfig(learning_rate=0.01)


def _uniform(rng, shape, dtype=jnp.float32):
    return jax.random.uniform(rng, shape, dtype, -0.5, 0.5)


def make_model() -> Transformer:
    return Transformer(CONFIG, prompt=Prompt(PROMPT_LENGTH, initializer=_uniform))


def global_numpy_batch(step: int) -> dict[str, np.ndarray]:
    """The whole batch of a step, [BATCH, length] int32, the same in every process."""
    rng = np.random.default_rng(step)
    tokens = rng.integers(2, CONFIG.vocab_size, (BATCH, 6))
    tokens[:, 4:] *= rng.integers(0, 2, (BATCH, 2))  # some padding
    targets = np.stack([rng.integers(2, CONFIG.vocab_size, BATCH), np.ones(BATCH, int)], 1)
    return {"encoder_input_tokens": tokens.astype(np.int32),
            "decoder_input_tokens": np.concatenate(
                [np.zeros((BATCH, 1), int), targets[:, :1]], 1).astype(np.int32),
            "decoder_target_tokens": targets.astype(np.int32),
            "decoder_loss_weights": np.ones_like(targets, np.int32)}


def local_slice(batch: dict[str, np.ndarray], mesh) -> dict[str, np.ndarray]:
    """This host's rows of the global batch, per `data_layout`."""
    layout = partitioning.data_layout(mesh)
    n = partitioning.check_batch_size(BATCH, mesh)
    return {k: v[layout.shard_id * n:(layout.shard_id + 1) * n] for k, v in batch.items()}


def setup(mesh, rules, tx):
    """(model, state, frozen params, param shardings, trainable paths) on `mesh`."""
    model = make_model()
    params = partitioning.init_sharded_params(model, jax.random.PRNGKey(0), mesh, rules)
    shardings = jax.tree.map(lambda x: x.sharding, params)
    paths = trainable.trainable_paths(params)
    trained, frozen = trainable.split(params, paths)
    state = step_lib.TrainState.create(trained, tx)
    return model, partitioning.shard_train_state(state, mesh), frozen, shardings, paths


def train_and_score(mesh, rules):
    """STEPS train steps then a score of step 0's batch.

    Returns:
      ({"initial_prompt", "prompt", "losses", "log_likelihood"} gathered to numpy, the final
      state, the frozen params).
    """
    tx = optim.adafactor(OPTIMIZER)
    model, state, frozen, shardings, paths = setup(mesh, rules, tx)
    train_step = partitioning.jit_train_step(
        step_lib.make_train_step(model, tx), mesh, partitioning.state_shardings(state, mesh),
        partitioning.frozen_shardings(shardings, paths), partitioning.batch_sharding(mesh), rules)
    initial = partitioning.host_local(state.params["prompt/prompt"])
    root = jax.random.PRNGKey(1)
    losses = []
    for i in range(STEPS):
        batch = partitioning.global_batch(local_slice(global_numpy_batch(i), mesh), mesh)
        state, metrics = train_step(state, frozen, batch, jax.random.fold_in(root, i))
        losses.append(partitioning.host_local(metrics["loss"]))
    score_step = partitioning.jit_score_step(
        runtime.make_score_step(model), mesh, shardings, partitioning.batch_sharding(mesh), rules)
    batch = partitioning.global_batch(local_slice(global_numpy_batch(0), mesh), mesh)
    scores = score_step(trainable.merge(state.params, frozen), batch)
    results = {"initial_prompt": initial,
               "prompt": partitioning.host_local(state.params["prompt/prompt"]),
               "losses": np.array(losses),
               "log_likelihood": partitioning.host_local(scores["log_likelihood"])}
    return results, state, frozen
