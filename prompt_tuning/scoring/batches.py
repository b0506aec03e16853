"""Score batches: examples padded into a few fixed shapes, so few programs are compiled."""

from __future__ import annotations

from typing import Iterator, Optional, Sequence

import numpy as np

from prompt_tuning.scoring.examples import Example

PAD_ID = 0  # T5's padding id, and the decoder's start id


def bucket(length: int, minimum: int = 8) -> int:
    """`length` rounded up to a power of two (>= minimum): few distinct shapes to compile."""
    return max(minimum, 1 << (length - 1).bit_length())


def ladder(minimum: int, maximum: int, factor: int = 4) -> tuple[int, ...]:
    """The sizes a dimension is padded to: `minimum`, then x`factor` while below `maximum`, then
    `maximum` itself (e.g. 1, 4, 16, 32 for (1, 32)); just `maximum` if it is <= minimum.

    A fixed, short ladder is what lets a server compile every shape it will meet up front.
    """
    if maximum < 1 or minimum < 1 or factor < 2:
        raise ValueError(f"ladder({minimum}, {maximum}, {factor}): sizes must be >= 1 and the "
                         "factor >= 2.")
    rungs = []
    size = minimum
    while size < maximum:
        rungs.append(size)
        size *= factor
    return (*rungs, maximum)


def rung(length: int, rungs: Sequence[int]) -> int:
    """The smallest of `rungs` (ascending) that holds `length` (a ValueError past the last)."""
    for size in rungs:
        if length <= size:
            return size
    raise ValueError(f"{length} is longer than the largest padded size {rungs[-1]}.")


def split(count: int, rungs: Sequence[int], call_rows: int = 2) -> list[int]:
    """Batch sizes (each a rung) that run `count` rows, the last padded up to its rung: the
    fewest rows computed, counting each call as `call_rows` more (its fixed cost). E.g. with
    rungs (1, 4, 16, 32): 5 -> [4, 1] (not 16 rows), 7 -> [4, 4], 13 -> [16], 40 -> [32, 4, 4].
    """
    # best[n]: (cost, sizes) of running n rows; n is at most a few times the largest rung.
    best: list[tuple[int, list[int]]] = [(0, [])]
    for n in range(1, count + 1):
        best.append(min(((best[max(n - r, 0)][0] + r + call_rows, [r] + best[max(n - r, 0)][1])
                         for r in rungs), key=lambda option: (option[0], len(option[1]))))
    return sorted(best[count][1], reverse=True)


def padded(rows: Sequence[list[int]], num_rows: int, length: Optional[int] = None
           ) -> np.ndarray:
    """[num_rows, length] int32 (length None: the longest row, bucketed); missing rows and
    positions are padding."""
    length = bucket(max(len(r) for r in rows)) if length is None else length
    out = np.full((num_rows, length), PAD_ID, np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def make_batch(chunk: Sequence[Example], batch_size: int, input_length: Optional[int] = None,
               target_length: Optional[int] = None) -> dict[str, np.ndarray]:
    """A seqio EncDecFeatureConverter-style batch of `batch_size` rows.

    Inputs `[batch_size, input_length]`, targets `[batch_size, target_length]` (None: the
    longest, bucketed). Padding is id 0 with loss weight 0; a short last chunk is filled with
    all-padding rows, so that it reuses the compiled step (their scores are 0 and are dropped).
    """
    inputs = padded([e.inputs for e in chunk], batch_size, input_length)
    targets = padded([e.targets for e in chunk], batch_size, target_length)
    return {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
            # Teacher forcing: the decoder sees the targets shifted right after the start id.
            "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0)),
                                           constant_values=PAD_ID),
            "decoder_loss_weights": (targets != PAD_ID).astype(np.int32)}


def chunks(examples: Sequence[Example], batch_size: int) -> Iterator[Sequence[Example]]:
    """Consecutive slices of `batch_size` examples (the last may be shorter), in order."""
    for start in range(0, len(examples), batch_size):
        yield examples[start:start + batch_size]
