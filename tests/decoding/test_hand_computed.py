"""Greedy and beam search against results worked out by hand on fixed next-token tables.

Each "model" here is a table of next-token probabilities that depends only on the previous
token (the start id 0 at the first step), possibly different per example. Probabilities not
listed are 0 (log-prob -inf). Vocabulary: 0 start/pad, 1 EOS, 2..7 words. Expected scores use
T5X's brevity penalty written out: `log(p) / ((5 + length) / 6) ** alpha`.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from prompt_tuning.decoding import beam_search, brevity_penalty, greedy_decode

VOCAB = 8
EOS = 1
NEG_INF = -np.inf


def _table(rows: dict) -> np.ndarray:
    """{previous token: {next token: probability}} -> [vocab, vocab]; unlisted rows -> token 7.

    Unlisted rows (EOS and pad included) continue with word 7, so a decoder that forgot to
    stop after EOS would write 7s instead of padding.
    """
    table = np.zeros((VOCAB, VOCAB))
    table[:, 7] = 1.0
    for prev, nxt in rows.items():
        table[prev] = 0.0
        for token, prob in nxt.items():
            table[prev, token] = prob
    return table


def _table_fn(tables, num_beams=1, calls=None):
    """A `TokensToLogits` over per-example tables [batch, vocab, vocab] (rows i*beams + j)."""
    with np.errstate(divide="ignore"):
        log_probs = jnp.asarray(np.log(np.stack(tables)), jnp.float32)

    def fn(tokens, step):
        if calls is not None:
            jax.debug.callback(lambda s: calls.append(int(s)), step)
        prev = lax.dynamic_index_in_dim(tokens, step, axis=1, keepdims=False)
        example = jnp.arange(tokens.shape[0]) // num_beams
        return log_probs[example, prev]

    return fn


def _score(prob, length, alpha):
    return math.log(prob) / ((5 + length) / 6) ** alpha


def _greedy(tables, length, calls=None):
    out = jax.jit(lambda: greedy_decode(_table_fn(tables, calls=calls), len(tables), length))()
    jax.effects_barrier()
    return np.asarray(out.tokens), np.asarray(out.log_probs)


def _beam(tables, length, beams, alpha, calls=None):
    fn = _table_fn(tables, beams, calls)
    out = jax.jit(lambda: beam_search(fn, len(tables), length, num_beams=beams, alpha=alpha))()
    jax.effects_barrier()
    return np.asarray(out.sequences), np.asarray(out.scores)


# Greedy takes 2 (0.6) then 4 (0.4) then EOS: p = 0.24. Beam search finds [3, EOS]: p = 0.36.
BEAM_BEATS_GREEDY = _table({0: {2: .6, 3: .4}, 2: {4: .4, 5: .3, 1: .3}, 3: {1: .9, 6: .1},
                            4: {1: 1.}, 5: {1: 1.}, 6: {1: 1.}})
# A = [2, EOS] has p = 0.52, B = [3, 4, 5, EOS] has p = 0.48. Raw log-prob prefers A; with
# alpha = 0.6, log(.52) / (7/6)**.6 = -0.5961 < log(.48) / (9/6)**.6 = -0.5755, so B wins.
PENALTY_FLIPS = _table({0: {2: .52, 3: .48}, 2: {1: 1.}, 3: {4: 1.}, 4: {5: 1.}, 5: {1: 1.}})


def test_brevity_penalty_formula():
    np.testing.assert_allclose(brevity_penalty(0.6, 4), (9 / 6) ** 0.6, rtol=1e-6)
    np.testing.assert_allclose(brevity_penalty(0.0, 7), 1.0)


def test_greedy_misses_what_beam_search_finds():
    tokens, log_probs = _greedy([BEAM_BEATS_GREEDY], 5)
    np.testing.assert_array_equal(tokens, [[2, 4, EOS, 0, 0]])
    np.testing.assert_allclose(log_probs, [math.log(.6 * .4)], rtol=1e-5)

    sequences, scores = _beam([BEAM_BEATS_GREEDY], 5, beams=4, alpha=0.6)
    # All four finish; [2,5,EOS] and [2,EOS] have the same p = 0.18, but the penalty
    # ranks the longer one higher.
    np.testing.assert_array_equal(sequences[0], [[3, EOS, 0, 0, 0], [2, 4, EOS, 0, 0],
                                                 [2, 5, EOS, 0, 0], [2, EOS, 0, 0, 0]])
    np.testing.assert_allclose(scores[0], [_score(.36, 2, .6), _score(.24, 3, .6),
                                           _score(.18, 3, .6), _score(.18, 2, .6)], rtol=1e-5)


@pytest.mark.parametrize("alpha", [0.0, 0.6])
def test_brevity_penalty_changes_the_winner(alpha):
    # Two examples in one batch, so beams of different examples must not mix.
    sequences, scores = _beam([PENALTY_FLIPS, BEAM_BEATS_GREEDY], 5, beams=4, alpha=alpha)
    short, long = [2, EOS, 0, 0, 0], [3, 4, 5, EOS, 0]
    expected = [(short, .52, 2), (long, .48, 4)]
    if alpha > 0:
        expected.reverse()
    np.testing.assert_array_equal(sequences[0, :2], [seq for seq, _, _ in expected])
    np.testing.assert_allclose(scores[0, :2], [_score(p, n, alpha) for _, p, n in expected],
                               rtol=1e-5)
    # The other two slots never got a finished sequence.
    np.testing.assert_array_equal(scores[0, 2:], [NEG_INF, NEG_INF])
    np.testing.assert_array_equal(sequences[0, 2:], 0)
    np.testing.assert_array_equal(sequences[1, 0], [3, EOS, 0, 0, 0])
    np.testing.assert_allclose(scores[1, 0], _score(.36, 2, alpha), rtol=1e-5)
    # Greedy takes the short one whatever alpha is.
    np.testing.assert_array_equal(_greedy([PENALTY_FLIPS], 5)[0], [short])


def test_live_beam_is_kept_while_the_penalty_could_still_lift_it():
    # One beam. Step 0 finishes [EOS] (p .52, score log(.52)/1) and keeps [3] (p .48) live.
    # Its raw score is already worse, but the longest ending could divide by (10/6)**.6:
    # log(.48)/1.359 = -0.540 > -0.654, so the search must go on and find [3,4,5,EOS].
    table = _table({0: {1: .52, 3: .48}, 3: {4: 1.}, 4: {5: 1.}, 5: {1: 1.}})
    sequences, scores = _beam([table], 5, beams=1, alpha=0.6)
    np.testing.assert_array_equal(sequences, [[[3, 4, 5, EOS, 0]]])
    np.testing.assert_allclose(scores, [[_score(.48, 4, .6)]], rtol=1e-5)
    sequences, scores = _beam([table], 5, beams=1, alpha=0.0)
    np.testing.assert_array_equal(sequences, [[[EOS, 0, 0, 0, 0]]])
    np.testing.assert_allclose(scores, [[math.log(.52)]], rtol=1e-5)


def test_beam_search_stops_once_no_live_beam_can_win():
    # Step 0: [EOS] finishes (p .5); live 2, 3, 4, 5. Step 1: [2|3|4, EOS] fill the other
    # finished slots (p .18, .135, .09); the best live beam [2, 6] has p .02, and even at
    # length 10: log(.02) / (15/6)**.6 = -2.257 < log(.09) / (7/6)**.6 = -2.195. Stop.
    words = {w: {1: .9, 6: .1} for w in (2, 3, 4, 5)}
    table = _table({0: {1: .5, 2: .2, 3: .15, 4: .1, 5: .05}, **words, 6: {6: 1.}})
    calls = []
    sequences, scores = _beam([table], 10, beams=4, alpha=0.6, calls=calls)
    assert calls == [0, 1]
    np.testing.assert_array_equal(sequences[0, :, :3], [[EOS, 0, 0], [2, EOS, 0],
                                                        [3, EOS, 0], [4, EOS, 0]])
    np.testing.assert_allclose(scores[0], [_score(.5, 1, .6), _score(.18, 2, .6),
                                           _score(.135, 2, .6), _score(.09, 2, .6)], rtol=1e-5)


def test_beam_search_returns_live_beams_when_nothing_finishes():
    table = _table({0: {2: .5, 3: .3, 4: .2}, 2: {5: .7, 6: .3}, 3: {5: 1.}})
    sequences, scores = _beam([table], 2, beams=2, alpha=0.6)
    # Best live extensions: [2,5] .35 and [3,5] .30; raw log-probs, no penalty.
    np.testing.assert_array_equal(sequences, [[[2, 5], [3, 5]]])
    np.testing.assert_allclose(scores, [[math.log(.35), math.log(.3)]], rtol=1e-5)


def test_greedy_pads_after_eos_per_row_and_stops_when_all_are_done():
    tables = [_table({0: {2: .9, 1: .1}, 2: {1: .8, 2: .2}}),   # [2, EOS]
              _table({0: {3: .7, 1: .3}, 3: {3: .6, 1: .4}}),   # never ends
              _table({0: {1: .6, 2: .4}})]                      # [EOS] at once
    tokens, log_probs = _greedy(tables, 5)
    np.testing.assert_array_equal(tokens, [[2, EOS, 0, 0, 0], [3, 3, 3, 3, 3],
                                           [EOS, 0, 0, 0, 0]])
    np.testing.assert_allclose(log_probs, np.log([.9 * .8, .7 * .6 ** 4, .6]), rtol=1e-5)

    calls = []
    tokens, _ = _greedy([tables[0], tables[2]], 6, calls=calls)
    assert calls == [0, 1]  # both rows have ended after two steps
    np.testing.assert_array_equal(tokens, [[2, EOS, 0, 0, 0, 0], [EOS, 0, 0, 0, 0, 0]])


def test_bad_arguments_raise_value_error():
    fn = _table_fn([BEAM_BEATS_GREEDY])
    with pytest.raises(ValueError, match="max_decode_length must be a positive int, got 0"):
        greedy_decode(fn, 1, 0)
    with pytest.raises(ValueError, match="num_beams must be a positive int, got 0"):
        beam_search(fn, 1, 4, num_beams=0)
    with pytest.raises(ValueError, match=r"must return \[batch', vocab\] = \[2, vocab\]"):
        greedy_decode(lambda tokens, step: jnp.zeros((3, 8)), 2, 4)
    with pytest.raises(ValueError, match=r"\[4, vocab\] logits, got shape \(4, 8, 8\)"):
        beam_search(lambda tokens, step: jnp.zeros((4, 8, 8)), 1, 4, num_beams=4)
