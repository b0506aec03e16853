"""Test-only numerical references: Hugging Face T5 (torch) built from our config, untied like T5 1.1."""

from __future__ import annotations

import os

import numpy as np

from prompt_tuning.checkpoints import huggingface
from prompt_tuning.model import T5Config

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build_hf_t5(config: T5Config, seed: int = 0):
    """A random `T5ForConditionalGeneration` with `config`'s shape and an untied `lm_head`."""
    import torch
    import transformers

    torch.manual_seed(seed)
    hf_config = transformers.T5Config(**{**huggingface.config_to_hf(config), "dropout_rate": 0.0})
    model = transformers.T5ForConditionalGeneration(hf_config)
    if model.lm_head.weight.data_ptr() == model.shared.weight.data_ptr():
        # transformers 5 ties the head to the embedding whatever the config says; T5 1.1 does not.
        weight = torch.empty_like(model.shared.weight).normal_(0.0, 1.0)
        model.lm_head.weight = torch.nn.Parameter(weight)
        tied = getattr(model, "all_tied_weights_keys", None)
        if isinstance(tied, dict):
            tied.pop("lm_head.weight", None)
    # Random T5 init gives a tiny relpos table; make it matter so the test would catch bucket bugs.
    with torch.no_grad():
        for stack in (model.encoder, model.decoder):
            stack.block[0].layer[0].SelfAttention.relative_attention_bias.weight.normal_(0.0, 1.0)
    return model.eval()


def hf_state_numpy(model) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
