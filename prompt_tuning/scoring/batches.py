"""Score batches: examples padded into a few fixed shapes, so few programs are compiled."""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from prompt_tuning.scoring.examples import Example

PAD_ID = 0  # T5's padding id, and the decoder's start id


def bucket(length: int, minimum: int = 8) -> int:
    """`length` rounded up to a power of two (>= minimum): few distinct shapes to compile."""
    return max(minimum, 1 << (length - 1).bit_length())


def padded(rows: Sequence[list[int]], num_rows: int) -> np.ndarray:
    """[num_rows, bucketed length] int32; missing rows and positions are padding."""
    length = bucket(max(len(r) for r in rows))
    out = np.full((num_rows, length), PAD_ID, np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def make_batch(chunk: Sequence[Example], batch_size: int) -> dict[str, np.ndarray]:
    """A seqio EncDecFeatureConverter-style batch of `batch_size` rows.

    Padding is id 0 with loss weight 0; a short last chunk is filled with all-padding rows, so
    that it reuses the compiled step (their scores are 0 and are dropped).
    """
    inputs = padded([e.inputs for e in chunk], batch_size)
    targets = padded([e.targets for e in chunk], batch_size)
    return {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
            # Teacher forcing: the decoder sees the targets shifted right after the start id.
            "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0)),
                                           constant_values=PAD_ID),
            "decoder_loss_weights": (targets != PAD_ID).astype(np.int32)}


def chunks(examples: Sequence[Example], batch_size: int) -> Iterator[Sequence[Example]]:
    """Consecutive slices of `batch_size` examples (the last may be shorter), in order."""
    for start in range(0, len(examples), batch_size):
        yield examples[start:start + batch_size]
