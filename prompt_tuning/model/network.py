"""T5 1.1 encoder-decoder with T5X's module names, and two seams for soft prompts.

The encoder consumes already-embedded inputs. `Transformer.encode` runs
embed -> combine -> encode, where "combine" is an optional `Combiner` (a prompt module, see
`prompt_tuning.prompts`) that prepends (or otherwise places) a soft prompt and grows the
attention mask with it. The decoder only ever sees the encoder outputs and their mask, so a
prompt needs no change to the decoder. A second, optional seam, `LayerHook`, sees the encoder's
activations before every layer (deep prompts rewrite their positions there), so prompts that
reach inside the encoder need no edit to its layers either.

Decoding has two paths: `decode` runs the decoder over whole target sequences (training,
scoring, and decoding by recomputation), `decode_step` runs one position against a cache of the
earlier positions' keys and values (`init_decoding_cache`), for fast generation.
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from prompt_tuning.model import layers
from prompt_tuning.model.config import T5Config
from prompt_tuning.model.decoder import Decoder, DecodingCache
from prompt_tuning.model.encoder import Encoder
from prompt_tuning.model.seams import Combiner, LayerHook

Array = jax.Array


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
        self.token_embedder = layers.Embed(cfg.vocab_size, cfg.emb_dim, **cfg.layer_dtypes)
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

    def init_decoding_cache(self, encoded: Array, encoder_mask: Array, rows: int,
                            max_decode_length: int) -> DecodingCache:
        """An empty cache for `decode_step`, with the encoder outputs' cross-attention keys and
        values computed once.

        Args:
          encoded: [batch, input_length, embed] encoder outputs (not repeated per beam).
          encoder_mask: [batch, input_length] bool.
          rows: sequences decoded at once: batch, or batch * beams (beams of one example
            adjacent).
          max_decode_length: positions of the decoder's input buffer.
        """
        return self.decoder.init_cache(encoded, encoder_mask, rows, max_decode_length)

    def decode_step(self, decoder_input_token: Array, position: Array, cache: DecodingCache
                    ) -> tuple[Array, DecodingCache]:
        """[rows] int, the decoder input at `position` -> ([rows, vocab] float32 logits, cache).

        Equal to `decode` over the whole buffer without targets, at `position`.
        """
        # [rows] -> [rows, 1, embed]
        embedded = self.token_embedder(decoder_input_token[:, None])
        return self.decoder.step(embedded, position, cache)

    def __call__(self, encoder_input_tokens: Array, decoder_input_tokens: Array,
                 decoder_target_tokens: Optional[Array] = None, enable_dropout: bool = False,
                 prompt_ids: Optional[Array] = None) -> Array:
        """[batch, input_length], [batch, target_length] -> [batch, target_length, vocab]."""
        encoded, mask = self.encode(encoder_input_tokens, prompt_ids, enable_dropout)
        return self.decode(encoded, mask, decoder_input_tokens, decoder_target_tokens,
                           enable_dropout)
