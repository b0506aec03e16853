"""The padded batch sizes a server compiles: ladders, the rung a length is padded to, and how a
list of rows is split into compiled batch sizes."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from prompt_tuning.scoring import batches
from prompt_tuning.scoring.examples import Example


@pytest.mark.parametrize("minimum, maximum, expected", [
    (1, 32, (1, 4, 16, 32)), (16, 256, (16, 64, 256)), (8, 32, (8, 32)), (8, 64, (8, 32, 64)),
    (16, 16, (16,)), (16, 5, (5,)), (1, 1, (1,))])
def test_ladder(minimum, maximum, expected):
    assert batches.ladder(minimum, maximum) == expected


def test_rung_is_the_smallest_that_holds_the_length():
    rungs = (16, 64, 256)
    assert [batches.rung(n, rungs) for n in (1, 16, 17, 64, 65, 256)] == [16, 16, 64, 64, 256,
                                                                         256]
    with pytest.raises(ValueError, match="257 is longer than the largest padded size 256"):
        batches.rung(257, rungs)


@pytest.mark.parametrize("rungs", [(1, 4, 16, 32), (1, 4, 8), (1,), (1, 4, 16, 64)])
def test_split_covers_the_rows_with_the_least_padding(rungs):
    for count in range(1, 3 * rungs[-1] + 1):
        sizes = batches.split(count, rungs)
        assert all(s in rungs for s in sizes) and sum(sizes) >= count
        assert sum(sizes) - sizes[-1] < count  # only the last batch has padding
        cost = sum(sizes) + 2 * len(sizes)
        # No split into at most 3 batches is cheaper (brute force).
        for n in range(1, 4):
            for other in itertools.product(rungs, repeat=n):
                if sum(other) >= count:
                    assert cost <= sum(other) + 2 * n, (count, sizes, other)


def test_make_batch_pads_to_the_given_lengths():
    batch = batches.make_batch([Example([5, 6, 1], [7, 1]), Example([5, 1], [1])], 4, 16, 8)
    assert batch["encoder_input_tokens"].shape == (4, 16)
    assert batch["decoder_target_tokens"].shape == (4, 8)
    np.testing.assert_array_equal(batch["decoder_input_tokens"][0, :3], [0, 7, 1])
    np.testing.assert_array_equal(batch["decoder_loss_weights"].sum(axis=1), [2, 1, 0, 0])
