"""T5 1.1's encoder stack, over already-embedded inputs (the prompt included, if any)."""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax

from prompt_tuning.model import layers
from prompt_tuning.model.config import T5Config
from prompt_tuning.model.relpos import RelativePositionBiases
from prompt_tuning.model.seams import LayerHook

Array = jax.Array


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and MLP blocks. [batch, length, embed] -> same."""

    config: T5Config

    @nn.compact
    def __call__(self, x: Array, bias: Array, deterministic: bool) -> Array:
        cfg = self.config
        kw = cfg.layer_dtypes
        y = layers.RMSNorm(cfg.layer_norm_epsilon, name="pre_attention_layer_norm", **kw)(x)
        y = layers.MultiHeadAttention(cfg.num_heads, cfg.head_dim, cfg.emb_dim, cfg.dropout_rate,
                                      name="attention", **kw)(y, y, bias, deterministic)
        x = x + layers.dropout(cfg.dropout_rate)(y, deterministic)
        y = layers.RMSNorm(cfg.layer_norm_epsilon, name="pre_mlp_layer_norm", **kw)(x)
        y = layers.MlpBlock(cfg.mlp_dim, cfg.dropout_rate, name="mlp", **kw)(y, deterministic)
        x = x + layers.dropout(cfg.dropout_rate)(y, deterministic)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class Encoder(nn.Module):
    """The encoder stack over embedded inputs.

    Args of `__call__`:
      embedded: [batch, length, embed] (prompt included, if any).
      mask: [batch, length] bool.
      prompt_ids: [batch] int or None, passed on to `layer_hook`.
    Returns:
      [batch, length, embed]
    """

    config: T5Config
    layer_hook: Optional[LayerHook] = None

    @nn.compact
    def __call__(self, embedded: Array, mask: Array, deterministic: bool = True,
                 prompt_ids: Optional[Array] = None) -> Array:
        cfg = self.config
        length = embedded.shape[1]
        relpos = RelativePositionBiases(cfg.relpos_num_buckets, cfg.relpos_max_distance,
                                        cfg.num_heads, bidirectional=True,
                                        param_dtype=cfg.parameter_dtype, name="relpos_bias")
        bias = layers.mask_to_bias(layers.attention_mask(mask, mask)) + relpos(length, length)
        x = layers.dropout(cfg.dropout_rate)(embedded.astype(cfg.activation_dtype), deterministic)
        for i in range(cfg.num_encoder_layers):
            if self.layer_hook is not None:
                x = self.layer_hook(x, mask, i, prompt_ids)
            x = EncoderLayer(cfg, name=f"layers_{i}")(x, bias, deterministic)
        x = layers.RMSNorm(cfg.layer_norm_epsilon, name="encoder_norm", **cfg.layer_dtypes)(x)
        return layers.dropout(cfg.dropout_rate)(x, deterministic)
