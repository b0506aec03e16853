"""T5 1.1's encoder stack, over already-embedded inputs (the prompt included, if any).

With `config.scan_layers` the layers are one `nn.scan` over parameters stacked on a leading
`layers` axis (`encoder/layers/layer/...`, see `scanned_params`): the program and its compile
time stay the same size whatever the depth, and with rematerialisation the backward pass keeps
one activation per layer. Without it they are T5X's `encoder/layers_0`, `layers_1`, ...
"""

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
        if cfg.scan_layers:
            if self.layer_hook is not None:
                raise ValueError("A layer hook sees each layer by its index; scanned layers "
                                 "have none (set scan_layers=False).")
            x = ScannedEncoderLayers(cfg, deterministic, name="layers")(x, bias)
        else:
            for i in range(cfg.num_encoder_layers):
                if self.layer_hook is not None:
                    x = self.layer_hook(x, mask, i, prompt_ids)
                x = cfg.remat(EncoderLayer)(cfg, name=f"layers_{i}")(x, bias, deterministic)
        x = layers.RMSNorm(cfg.layer_norm_epsilon, name="encoder_norm", **cfg.layer_dtypes)(x)
        return layers.dropout(cfg.dropout_rate)(x, deterministic)


class ScannedEncoderLayers(nn.Module):
    """Every encoder layer as one scan over parameters stacked on a leading `layers` axis
    (`encoder/layers/layer/...`). [batch, length, embed] -> same."""

    config: T5Config
    deterministic: bool = True

    @nn.compact
    def __call__(self, x: Array, bias: Array) -> Array:
        cfg = self.config
        layer = cfg.remat(EncoderLayer)

        def body(module: nn.Module, carry: Array, bias: Array) -> tuple[Array, None]:
            return layer(cfg, name="layer")(carry, bias, self.deterministic), None

        scan = nn.scan(body, variable_axes={"params": 0},
                       split_rngs={"params": True, "dropout": True}, in_axes=(nn.broadcast,),
                       length=cfg.num_encoder_layers,
                       metadata_params={nn.PARTITION_NAME: "layers"})
        x, _ = scan(self, x, bias)
        return x
