"""T5 1.1's decoder stack and untied `logits_dense` head, over whole targets or one step at a time.

`__call__` runs all target positions at once (training, scoring). `step` runs one position
against `DecodingCache`: the keys and values of every self-attention layer for the positions
decoded so far (`[batch', max_length, heads, head_dim]` per layer, written one position per step)
and of every cross-attention layer for the encoder outputs (computed once by `cross_kv`).
batch' may be batch times the number of beams: the beams of one example share its encoder keys
and values, which are neither copied per beam nor reordered.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

from prompt_tuning.model import layers
from prompt_tuning.model.config import T5Config
from prompt_tuning.model.relpos import RelativePositionBiases

Array = jax.Array
KeyValue = tuple[Array, Array]  # ([batch, heads, length, head_dim], same)


class DecodingCache(NamedTuple):
    """What `Decoder.step` needs of earlier work.

    Attributes:
      self_kv: one (key, value) per decoder layer, `[batch', heads, max_length, head_dim]`;
        positions not decoded yet hold zeros and are masked. Beam search reorders these rows.
        With `scan_layers`, one (key, value) pair stacked over the layers,
        `[layers, batch', heads, max_length, head_dim]`.
      cross_kv: the same for the encoder outputs, `[batch, heads, input_length, head_dim]`
        per layer (or stacked).
      encoder_mask: [batch, input_length] bool.
    """

    self_kv: tuple[KeyValue, ...]
    cross_kv: tuple[KeyValue, ...]
    encoder_mask: Array


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention and MLP. [batch, length, embed] -> same."""

    config: T5Config

    def setup(self):
        cfg = self.config
        kw = cfg.layer_dtypes
        attention = lambda: layers.MultiHeadAttention(cfg.num_heads, cfg.head_dim, cfg.emb_dim,
                                                      cfg.dropout_rate, **kw)
        norm = lambda: layers.RMSNorm(cfg.layer_norm_epsilon, **kw)
        self.pre_self_attention_layer_norm = norm()
        self.self_attention = attention()
        self.pre_cross_attention_layer_norm = norm()
        self.encoder_decoder_attention = attention()
        self.pre_mlp_layer_norm = norm()
        self.mlp = layers.MlpBlock(cfg.mlp_dim, cfg.dropout_rate, **kw)
        self.residual_dropout = layers.dropout(cfg.dropout_rate)

    def __call__(self, x: Array, encoded: Array, self_bias: Array, cross_bias: Array,
                 deterministic: bool) -> Array:
        y = self.pre_self_attention_layer_norm(x)
        y = self.self_attention(y, y, self_bias, deterministic)
        x = x + self.residual_dropout(y, deterministic)
        y = self.pre_cross_attention_layer_norm(x)
        y = self.encoder_decoder_attention(y, encoded, cross_bias, deterministic)
        x = x + self.residual_dropout(y, deterministic)
        y = self.mlp(self.pre_mlp_layer_norm(x), deterministic)
        x = x + self.residual_dropout(y, deterministic)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))

    def cross_kv(self, encoded: Array) -> KeyValue:
        """The cross-attention keys and values of the encoder outputs."""
        return self.encoder_decoder_attention.project_kv(encoded)

    def step(self, x: Array, position: Array, self_kv: KeyValue, cross_kv: KeyValue,
             self_bias: Array, cross_bias: Array) -> tuple[Array, KeyValue]:
        """One position: [batch', 1, embed] -> ([batch', 1, embed], the updated self_kv)."""
        y = self.pre_self_attention_layer_norm(x)
        new_key, new_value = self.self_attention.project_kv(y)
        key = lax.dynamic_update_slice_in_dim(self_kv[0], new_key.astype(self_kv[0].dtype),
                                              position, axis=2)
        value = lax.dynamic_update_slice_in_dim(self_kv[1], new_value.astype(self_kv[1].dtype),
                                                position, axis=2)
        x = x + self.self_attention.attend(y, key, value, self_bias)
        y = self.pre_cross_attention_layer_norm(x)
        x = x + self.encoder_decoder_attention.attend(y, *cross_kv, cross_bias)
        x = x + self.mlp(self.pre_mlp_layer_norm(x), True)
        return x, (key, value)


class ScannedDecoderLayers(nn.Module):
    """Every decoder layer as one scan over parameters stacked on a leading `layers` axis
    (`decoder/layers/layer/...`), in the three ways the decoder runs them (`mode`):

      "train":    (x [batch, length, embed], encoded, self_bias, cross_bias) -> x
      "cross_kv": encoded -> stacked cross-attention (key, value)
      "step":     (x [batch', 1, embed], position, self_kv, cross_kv, self_bias, cross_bias)
                  -> (x, stacked self_kv)

    One compact `__call__` so that the three share the scanned `layer`'s parameters.
    """

    config: T5Config

    @nn.compact
    def __call__(self, mode: str, *args: Any, deterministic: bool = True) -> Any:
        cfg = self.config
        layer_class = cfg.remat(DecoderLayer) if mode == "train" else DecoderLayer

        def scanned(body, in_axes):
            return nn.scan(body, variable_axes={"params": 0},
                           split_rngs={"params": True, "dropout": True}, in_axes=in_axes,
                           length=cfg.num_decoder_layers,
                           metadata_params={nn.PARTITION_NAME: "layers"})

        if mode == "train":
            def train(module, x, encoded, self_bias, cross_bias):
                layer = layer_class(cfg, name="layer", parent=module)
                return layer(x, encoded, self_bias, cross_bias, deterministic), None

            x, encoded, self_bias, cross_bias = args
            return scanned(train, (nn.broadcast,) * 3)(self, x, encoded, self_bias, cross_bias)[0]
        if mode == "cross_kv":
            def cross(module, encoded, _):
                return encoded, layer_class(cfg, name="layer", parent=module).cross_kv(encoded)

            return scanned(cross, (0,))(self, args[0], None)[1]
        if mode == "step":
            def step(module, x, self_kv, cross_kv, position, self_bias, cross_bias):
                layer = layer_class(cfg, name="layer", parent=module)
                return layer.step(x, position, self_kv, cross_kv, self_bias, cross_bias)

            x, position, self_kv, cross_kv, self_bias, cross_bias = args
            return scanned(step, (0, 0) + (nn.broadcast,) * 3)(
                self, x, self_kv, cross_kv, position, self_bias, cross_bias)
        raise ValueError(f"unknown mode {mode!r}")


class Decoder(nn.Module):
    """The decoder stack and the untied `logits_dense` head.

    Args of `__call__`:
      embedded: [batch, target_length, embed] embedded decoder inputs.
      encoded: [batch, input_length, embed] encoder outputs.
      self_mask: [batch, 1, target_length, target_length] bool.
      cross_mask: [batch, 1, target_length, input_length] bool.
    Returns:
      [batch, target_length, vocab] float32 logits.
    """

    config: T5Config

    def setup(self):
        cfg = self.config
        self.relpos_bias = RelativePositionBiases(cfg.relpos_num_buckets, cfg.relpos_max_distance,
                                                  cfg.num_heads, bidirectional=False,
                                                  param_dtype=cfg.parameter_dtype)
        if cfg.scan_layers:
            self.layers = ScannedDecoderLayers(cfg)
        else:
            self.layers = [cfg.remat(DecoderLayer)(cfg) for _ in range(cfg.num_decoder_layers)]
        self.decoder_norm = layers.RMSNorm(cfg.layer_norm_epsilon, **cfg.layer_dtypes)
        # Logits in float32 whatever the activation dtype (the product accumulates in float32
        # and is not rounded to 16 bits; T5X rounds, then casts).
        self.logits_dense = layers.Dense(cfg.vocab_size, ("embed", "vocab"), **cfg.layer_dtypes,
                                         out_dtype=jnp.float32)
        self.embedding_dropout = layers.dropout(cfg.dropout_rate)
        self.output_dropout = layers.dropout(cfg.dropout_rate)

    def __call__(self, embedded: Array, encoded: Array, self_mask: Array, cross_mask: Array,
                 deterministic: bool = True) -> Array:
        length = embedded.shape[1]
        self_bias = layers.mask_to_bias(self_mask) + self.relpos_bias(length, length)
        cross_bias = layers.mask_to_bias(cross_mask)
        x = self.embedding_dropout(embedded, deterministic)
        if self.config.scan_layers:
            x = self.layers("train", x, encoded, self_bias, cross_bias,
                            deterministic=deterministic)
        else:
            for layer in self.layers:
                x = layer(x, encoded, self_bias, cross_bias, deterministic)
        x = self.output_dropout(self.decoder_norm(x), deterministic)
        return self.logits_dense(x)

    def init_cache(self, encoded: Array, encoder_mask: Array, rows: int,
                   max_length: int) -> DecodingCache:
        """An empty cache for `rows` sequences (batch or batch * beams) of `max_length`."""
        cfg = self.config
        shape = (rows, cfg.num_heads, max_length, cfg.head_dim)
        if cfg.scan_layers:
            empty = jnp.zeros((cfg.num_decoder_layers, *shape), cfg.activation_dtype)
            return DecodingCache(self_kv=(empty, empty),
                                 cross_kv=self.layers("cross_kv", encoded),
                                 encoder_mask=encoder_mask)
        empty = jnp.zeros(shape, cfg.activation_dtype)
        return DecodingCache(self_kv=tuple((empty, empty) for _ in self.layers),
                             cross_kv=tuple(layer.cross_kv(encoded) for layer in self.layers),
                             encoder_mask=encoder_mask)

    def step(self, embedded: Array, position: Array, cache: DecodingCache
             ) -> tuple[Array, DecodingCache]:
        """Logits at `position`: [batch', 1, embed] -> ([batch', vocab] float32, cache).

        Only causality masks the decoder (positions after `position` are not decoded yet), as
        in `Transformer.decode` without targets.
        """
        max_length = jax.tree.leaves(cache.self_kv)[0].shape[-2]
        visible = jnp.arange(max_length) <= position                      # [max_length]
        self_bias = (layers.mask_to_bias(visible[None, None, None, :])
                     + self.relpos_bias(1, max_length, query_offset=position))
        cross_bias = layers.mask_to_bias(cache.encoder_mask[:, None, None, :])
        if self.config.scan_layers:
            x, self_kv = self.layers("step", embedded, position, cache.self_kv, cache.cross_kv,
                                     self_bias, cross_bias)
        else:
            x, self_kv = embedded, []
            for layer, kv, cross in zip(self.layers, cache.self_kv, cache.cross_kv):
                x, kv = layer.step(x, position, kv, cross, self_bias, cross_bias)
                self_kv.append(kv)
            self_kv = tuple(self_kv)
        logits = self.logits_dense(self.decoder_norm(x))[:, 0]
        return logits, cache._replace(self_kv=self_kv)


def reorder_rows(cache: DecodingCache, rows: Any) -> DecodingCache:
    """The self-attention cache with its rows (batch * beams) gathered by `rows` [batch']."""
    # Rows are axis 0 of a layer's [batch', heads, max_length, head_dim], axis 1 when stacked.
    return cache._replace(self_kv=jax.tree.map(lambda x: jnp.take(x, rows, axis=x.ndim - 4),
                                               cache.self_kv))
