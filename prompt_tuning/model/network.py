"""T5 1.1 encoder-decoder with T5X's module names, and two seams for soft prompts.

The encoder consumes already-embedded inputs. `Transformer.encode` runs
embed -> combine -> encode, where "combine" is an optional `Combiner` (a prompt module, see
`prompt_tuning.prompts`) that prepends (or otherwise places) a soft prompt and grows the
attention mask with it. The decoder only ever sees the encoder outputs and their mask, so a
prompt needs no change to the decoder. A second, optional seam, `LayerHook`, sees the encoder's
activations before every layer (deep prompts rewrite their positions there), so prompts that
reach inside the encoder need no edit to its layers either.
"""

from __future__ import annotations

from typing import Optional, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning.model import layers
from prompt_tuning.model.config import T5Config
from prompt_tuning.model.relpos import RelativePositionBiases

Array = jax.Array


class Combiner(Protocol):
    """What the encoder seam calls: a prompt module, or anything with its signature.

    Args:
      embedded: [batch, length, embed] embedded input tokens.
      mask: [batch, length] bool, true on real (non-padding) tokens.
      prompt_ids: [batch] int, which prompt each example uses (None: a single prompt).
    Returns:
      ([batch, new_length, embed], [batch, new_length] bool).
    """

    def __call__(self, embedded: Array, mask: Array,
                 prompt_ids: Optional[Array] = None) -> tuple[Array, Array]:
        ...


class LayerHook(Protocol):
    """What the encoder calls before each of its layers (default: nothing is called).

    Args:
      x: [batch, length, embed] the layer's input (prompt positions included).
      mask: [batch, length] bool, true on real positions.
      layer: the layer's index, 0 for the first.
      prompt_ids: [batch] int or None, as given to `Transformer.encode`.
    Returns:
      [batch, length, embed], the input the layer gets instead.
    """

    def __call__(self, x: Array, mask: Array, layer: int,
                 prompt_ids: Optional[Array] = None) -> Array:
        ...


def _dense_kwargs(config: T5Config) -> dict:
    return dict(dtype=config.activation_dtype, param_dtype=config.parameter_dtype)


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and MLP blocks. [batch, length, embed] -> same."""

    config: T5Config

    @nn.compact
    def __call__(self, x: Array, bias: Array, deterministic: bool) -> Array:
        cfg = self.config
        kw = _dense_kwargs(cfg)
        y = layers.RMSNorm(cfg.layer_norm_epsilon, name="pre_attention_layer_norm", **kw)(x)
        y = layers.MultiHeadAttention(cfg.num_heads, cfg.head_dim, cfg.dropout_rate,
                                      name="attention", **kw)(y, y, bias, deterministic)
        x = x + layers.dropout(cfg.dropout_rate)(y, deterministic)
        y = layers.RMSNorm(cfg.layer_norm_epsilon, name="pre_mlp_layer_norm", **kw)(x)
        y = layers.MlpBlock(cfg.mlp_dim, cfg.dropout_rate, name="mlp", **kw)(y, deterministic)
        x = x + layers.dropout(cfg.dropout_rate)(y, deterministic)
        return nn.with_logical_constraint(x, ("batch", "length", "embed"))


class DecoderLayer(nn.Module):
    """Causal self-attention, cross-attention and MLP. [batch, length, embed] -> same."""

    config: T5Config

    @nn.compact
    def __call__(self, x: Array, encoded: Array, self_bias: Array, cross_bias: Array,
                 deterministic: bool) -> Array:
        cfg = self.config
        kw = _dense_kwargs(cfg)
        attention = lambda name: layers.MultiHeadAttention(cfg.num_heads, cfg.head_dim,
                                                           cfg.dropout_rate, name=name, **kw)
        y = layers.RMSNorm(cfg.layer_norm_epsilon, name="pre_self_attention_layer_norm", **kw)(x)
        y = attention("self_attention")(y, y, self_bias, deterministic)
        x = x + layers.dropout(cfg.dropout_rate)(y, deterministic)
        y = layers.RMSNorm(cfg.layer_norm_epsilon, name="pre_cross_attention_layer_norm", **kw)(x)
        y = attention("encoder_decoder_attention")(y, encoded, cross_bias, deterministic)
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
        x = layers.RMSNorm(cfg.layer_norm_epsilon, name="encoder_norm", **_dense_kwargs(cfg))(x)
        return layers.dropout(cfg.dropout_rate)(x, deterministic)


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

    @nn.compact
    def __call__(self, embedded: Array, encoded: Array, self_mask: Array, cross_mask: Array,
                 deterministic: bool = True) -> Array:
        cfg = self.config
        length = embedded.shape[1]
        relpos = RelativePositionBiases(cfg.relpos_num_buckets, cfg.relpos_max_distance,
                                        cfg.num_heads, bidirectional=False,
                                        param_dtype=cfg.parameter_dtype, name="relpos_bias")
        self_bias = layers.mask_to_bias(self_mask) + relpos(length, length)
        cross_bias = layers.mask_to_bias(cross_mask)
        x = layers.dropout(cfg.dropout_rate)(embedded, deterministic)
        for i in range(cfg.num_decoder_layers):
            x = DecoderLayer(cfg, name=f"layers_{i}")(x, encoded, self_bias, cross_bias,
                                                      deterministic)
        x = layers.RMSNorm(cfg.layer_norm_epsilon, name="decoder_norm", **_dense_kwargs(cfg))(x)
        x = layers.dropout(cfg.dropout_rate)(x, deterministic)
        # Logits in float32, whatever the activation dtype (T5X does the same).
        return layers.Dense(cfg.vocab_size, ("embed", "vocab"), dtype=jnp.float32,
                            param_dtype=cfg.parameter_dtype, name="logits_dense")(x)


class Transformer(nn.Module):
    """T5 1.1 encoder-decoder: shared `token_embedder`, `encoder`, `decoder`, optional `prompt`.

    Attributes:
      config: the architecture.
      prompt: a `Combiner` module (e.g. `prompt_tuning.prompts.Prompt`); its parameters live
        under `prompt/` (`prompt_tuning.prompts.seam`). None: the plain model.
      layer_hook: a `LayerHook` module called before every encoder layer; its parameters live
        under `layer_hook/`. None: none.
    """

    config: T5Config
    prompt: Optional[Combiner] = None
    layer_hook: Optional[LayerHook] = None

    def setup(self):
        cfg = self.config
        self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, **_dense_kwargs(cfg))
        self.encoder = Encoder(cfg, layer_hook=self.layer_hook)
        self.decoder = Decoder(cfg)

    def encode(self, encoder_input_tokens: Array, prompt_ids: Optional[Array] = None,
               enable_dropout: bool = False) -> tuple[Array, Array]:
        """[batch, length] int -> ([batch, P + length, embed], [batch, P + length] bool mask)."""
        # [batch, length] -> [batch, length, embed]
        embedded = self.token_embedder(encoder_input_tokens)
        mask = encoder_input_tokens > 0
        if self.prompt is not None:
            # [batch, length, embed] -> [batch, P + length, embed]
            embedded, mask = self.prompt(embedded, mask, prompt_ids)
        return self.encoder(embedded, mask, not enable_dropout, prompt_ids), mask

    def decode(self, encoded: Array, encoder_mask: Array, decoder_input_tokens: Array,
               decoder_target_tokens: Optional[Array] = None,
               enable_dropout: bool = False) -> Array:
        """Teacher-forced decoder pass -> [batch, target_length, vocab] float32 logits.

        Without `decoder_target_tokens` (decoding), only causality masks the decoder.
        """
        length = decoder_input_tokens.shape[1]
        valid = (decoder_target_tokens > 0 if decoder_target_tokens is not None
                 else jnp.ones_like(decoder_input_tokens, dtype=bool))
        self_mask = layers.attention_mask(valid, valid) & layers.causal_mask(length)
        cross_mask = layers.attention_mask(valid, encoder_mask)
        embedded = self.token_embedder(decoder_input_tokens)
        return self.decoder(embedded, encoded, self_mask, cross_mask, not enable_dropout)

    def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
                 decoder_target_tokens: Optional[Array] = None, enable_dropout: bool = False,
                 prompt_ids: Optional[Array] = None) -> Array:
        """[batch, input_length], [batch, target_length] -> [batch, target_length, vocab]."""
        encoded, mask = self.encode(encoder_input_tokens, prompt_ids, enable_dropout)
        return self.decode(encoded, mask, decoder_input_tokens, decoder_target_tokens,
                           enable_dropout)
