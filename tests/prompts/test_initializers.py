"""Prompt initializers, each run under jax.jit with a static shape, against hand-built tables."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from prompt_tuning.prompts import initializers

EMBED = 8
CORPUS = ["the premise entails the hypothesis", "entailment and not entailment are labels",
          "contradiction neutral positive negative", "a great movie with a terrible ending",
          "question answer passage sentence word"] * 20


def _jit_init(init, shape, seed=0):
    return np.asarray(jax.jit(init, static_argnums=1)(jax.random.key(seed), shape))


def _identifiable_table(rows, embed=EMBED, seed=0):
    """[rows, embed]: column 0 holds the row index, so any returned row names its source."""
    table = np.random.default_rng(seed).normal(size=(rows, embed)).astype(np.float32)
    table[:, 0] = np.arange(rows)
    return table


@pytest.fixture(scope="module")
def spm_model(tmp_path_factory):
    """A tiny SentencePiece model with T5's ids (pad 0, eos 1, unk 2), trained here."""
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel
    directory = tmp_path_factory.mktemp("spm")
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(CORPUS))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(directory / "tiny"), vocab_size=100,
        model_type="unigram", pad_id=0, eos_id=1, unk_id=2, bos_id=-1, character_coverage=1.0,
        hard_vocab_limit=False, minloglevel=2)
    return str(directory / "tiny.model")


@pytest.fixture(scope="module")
def vocabulary(spm_model):
    import seqio  # pylint: disable=import-outside-toplevel
    return seqio.SentencePieceVocabulary(spm_model, extra_ids=0)


def _pieces(spm_model, text):
    """Token ids straight from sentencepiece, independently of seqio."""
    import sentencepiece as spm
    return spm.SentencePieceProcessor(model_file=spm_model).encode(text)


def test_random_uniform_is_symmetric_in_scale():
    values = _jit_init(initializers.random_uniform(0.5), (1000, 64))
    assert values.shape == (1000, 64) and values.dtype == np.float32
    assert values.min() >= -0.5 and values.max() <= 0.5
    assert values.min() < -0.49 and values.max() > 0.49
    # 64,000 draws: the mean's standard error is ~0.0011, so 0.01 is a loose bound.
    assert abs(values.mean()) < 0.01
    # U[0, 0.5) (the reference's default) would have no negatives.
    assert 0.48 < (values < 0).mean() < 0.52
    assert abs(values.std() - 0.5 / np.sqrt(3)) < 0.005


def test_random_uniform_is_deterministic_given_rng():
    init = initializers.random_uniform()
    np.testing.assert_array_equal(_jit_init(init, (4, EMBED), 3), _jit_init(init, (4, EMBED), 3))
    assert not np.array_equal(_jit_init(init, (4, EMBED), 3), _jit_init(init, (4, EMBED), 4))


def test_random_uniform_honours_dtype():
    values = initializers.random_uniform()(jax.random.key(0), (3, EMBED), jnp.bfloat16)
    assert values.dtype == jnp.bfloat16


def test_sampled_vocab_draws_distinct_rows_from_first_5000():
    table = _identifiable_table(6000)
    values = _jit_init(initializers.from_sampled_vocab(table), (300, EMBED))
    ids = values[:, 0].astype(int)
    np.testing.assert_array_equal(values[:, 0], ids)  # Whole numbers: real row indices.
    assert len(set(ids)) == 300
    assert ids.max() < 5000
    np.testing.assert_array_equal(values, table[ids])


def test_sampled_vocab_with_lazy_table_and_small_population():
    table = _identifiable_table(50)
    calls = []

    def load():
        calls.append(1)
        return table

    values = _jit_init(initializers.from_sampled_vocab(load, population_size=3), (10, EMBED))
    assert calls  # Loaded when the prompt is initialised, not before.
    # P > population: drawn with replacement, still only from the first 3 rows.
    assert set(values[:, 0].astype(int)) <= {0, 1, 2}
    np.testing.assert_array_equal(values, table[values[:, 0].astype(int)])


def test_sampled_vocab_is_deterministic_given_rng():
    init = initializers.from_sampled_vocab(_identifiable_table(6000))
    np.testing.assert_array_equal(_jit_init(init, (20, EMBED), 1), _jit_init(init, (20, EMBED), 1))
    assert not np.array_equal(_jit_init(init, (20, EMBED), 1), _jit_init(init, (20, EMBED), 2))


def test_class_labels_rows_are_mean_of_pieces(spm_model, vocabulary):
    labels = ["entailment", "not_entailment", "neutral"]
    table = _identifiable_table(vocabulary.vocab_size, seed=1)
    fallback_value = np.full((6, EMBED), -7.0, np.float32)
    init = initializers.from_class_labels(table, vocabulary, labels,
                                          fallback=initializers.from_array(fallback_value))
    values = _jit_init(init, (6, EMBED))
    pieces = [_pieces(spm_model, label) for label in labels]
    assert max(len(p) for p in pieces) > 1  # Otherwise the mean would not be exercised.
    for row, ids in enumerate(pieces):
        np.testing.assert_allclose(values[row], table[ids].mean(axis=0), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(values[3:], fallback_value[3:])


def test_class_labels_default_fallback_samples_the_table(vocabulary):
    table = _identifiable_table(vocabulary.vocab_size, seed=2)
    init = initializers.from_class_labels(table, vocabulary, ["positive", "negative"])
    values = _jit_init(init, (7, EMBED))
    rest = values[2:]
    np.testing.assert_array_equal(rest, table[rest[:, 0].astype(int)])
    assert len(set(rest[:, 0].astype(int))) == 5


def test_class_labels_errors(vocabulary):
    table = _identifiable_table(vocabulary.vocab_size)
    with pytest.raises(ValueError, match="class label '' has no tokens"):
        initializers.from_class_labels(table, vocabulary, ["entailment", ""])
    init = initializers.from_class_labels(table, vocabulary, ["a", "b", "c"])
    with pytest.raises(ValueError, match="3 class labels do not fit in a prompt of length 2"):
        init(jax.random.key(0), (2, EMBED))
    with pytest.raises(ValueError, match="non-empty list"):
        initializers.from_class_labels(table, vocabulary, "entailment")
    with pytest.raises(ValueError, match="outside the embedding table's 10 rows"):
        initializers.from_class_labels(table[:10], vocabulary, ["hypothesis"])(
            jax.random.key(0), (2, EMBED))


def test_text_one_token_per_position(spm_model, vocabulary):
    table = _identifiable_table(vocabulary.vocab_size, seed=3)
    text = "the premise entails the hypothesis"
    ids = _pieces(spm_model, text)
    assert len(ids) > 3
    fallback_value = np.full((len(ids) + 2, EMBED), 5.0, np.float32)
    longer = _jit_init(initializers.from_text(table, vocabulary, text,
                                              initializers.from_array(fallback_value)),
                       (len(ids) + 2, EMBED))
    np.testing.assert_array_equal(longer[:len(ids)], table[ids])
    np.testing.assert_array_equal(longer[len(ids):], 5.0)
    truncated = _jit_init(initializers.from_text(table, vocabulary, text), (3, EMBED))
    np.testing.assert_array_equal(truncated, table[ids[:3]])
    with pytest.raises(ValueError, match="non-empty string"):
        initializers.from_text(table, vocabulary, "")


def test_from_array_and_from_file(tmp_path):
    value = np.random.default_rng(0).normal(size=(5, EMBED)).astype(np.float32)
    np.testing.assert_array_equal(_jit_init(initializers.from_array(value), (5, EMBED)), value)
    path = tmp_path / "prompt.npy"
    np.save(path, value)
    table = _identifiable_table(20)
    np.testing.assert_array_equal(_jit_init(initializers.from_file(str(path), table), (5, EMBED)),
                                  value)
    # from_array is exact; from_file may change the length (tests/prompts/test_transfer.py).
    with pytest.raises(ValueError, match=r"expected a prompt of shape \(4, 8\), got \(5, 8\)"):
        initializers.from_array(value)(jax.random.key(0), (4, EMBED))
    with pytest.raises(ValueError, match="dtype must be floating, got int64"):
        initializers.from_array(np.zeros((5, EMBED), np.int64))
    with pytest.raises(ValueError, match="no prompt file"):
        initializers.from_file(str(tmp_path / "missing.npy"), table)


def test_transformer_prompt_takes_an_initializer():
    from prompt_tuning.model import T5Config, Transformer
    from prompt_tuning.model.params import init_params
    from prompt_tuning.prompts import Prompt
    config = T5Config(vocab_size=32, emb_dim=EMBED, num_heads=2, num_encoder_layers=1,
                      num_decoder_layers=1, head_dim=4, mlp_dim=16, relpos_num_buckets=8,
                      relpos_max_distance=16)
    value = np.arange(3 * EMBED, dtype=np.float32).reshape(3, EMBED)
    model = Transformer(config, prompt=Prompt(3, initializer=initializers.from_array(value)))
    params = init_params(model, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(params["prompt"]["prompt"]), value)


@pytest.mark.parametrize("shape, message", [
    ((5,), "2-D"), ((5, EMBED, 1), "2-D"), ((0, EMBED), "positive"), ((5, 7), "embed 7"),
])
def test_shape_errors(shape, message):
    init = initializers.from_sampled_vocab(_identifiable_table(20))
    with pytest.raises(ValueError, match=message):
        init(jax.random.key(0), shape)


def test_bad_factory_arguments():
    with pytest.raises(ValueError, match="scale must be positive"):
        initializers.random_uniform(0.0)
    with pytest.raises(ValueError, match="population_size must be a positive integer"):
        initializers.from_sampled_vocab(_identifiable_table(20), population_size=0)
    with pytest.raises(ValueError, match=r"non-empty \[vocab, embed\]"):
        initializers.from_sampled_vocab(np.zeros((5,)))(jax.random.key(0), (2, EMBED))
