"""The shipped T5 vocabulary: the known ids, and clear errors for bad paths and sizes."""

import hashlib

import pytest

from prompt_tuning import errors
from prompt_tuning.data import vocab


def test_shipped_vocabulary_is_t5s():
    with open(vocab.DEFAULT_VOCABULARY_PATH, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == "d60acb128cf7b7f2536e8f38a5b18a05535c9e14c7a355904270e15b0945ea86"
    v = vocab.get_vocabulary()
    assert v.vocab_size == 32100 and (v.pad_id, v.eos_id, v.unk_id) == (0, 1, 2)
    # Known T5 ids (the spec's checks).
    assert list(v.encode("The quick brown fox jumps over the lazy dog.")) == [
        37, 1704, 4216, 3, 20400, 4418, 7, 147, 8, 19743, 1782, 5]
    assert list(v.encode("not_entailment")) == [59, 834, 35, 5756, 297]
    assert v.decode([32099]) == "<extra_id_0>" and v.decode([32000]) == "<extra_id_99>"


def test_missing_and_bad_vocabulary_files(tmp_path):
    with pytest.raises(errors.UserError, match="No SentencePiece vocabulary"):
        vocab.get_vocabulary(str(tmp_path / "nope.model"))
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"this is not a sentencepiece model")
    with pytest.raises(ValueError, match="is not a SentencePiece model"):
        vocab.get_vocabulary(str(bad))


def test_vocabulary_must_fit_the_embedding_table():
    v = vocab.get_vocabulary()
    vocab.check_vocab_fits(v, 32128)
    vocab.check_vocab_fits(v, 32100)
    with pytest.raises(ValueError, match="32100 ids .* only 32000 embedding rows"):
        vocab.check_vocab_fits(v, 32000)


@pytest.mark.parametrize("extra_ids", [100, 7, 0])
def test_same_ids_and_text_as_seqios_vocabulary(extra_ids):
    """The TensorFlow-free vocabulary (models, scoring, serving) against seqio's own class (what
    the tasks tokenize with): the same model bytes, ids, decoded text and special ids."""
    import random

    from prompt_tuning.data.tensorflow_quiet import seqio

    ours = vocab.get_vocabulary(None, extra_ids)
    theirs = seqio.SentencePieceVocabulary(vocab.DEFAULT_VOCABULARY_PATH, extra_ids=extra_ids)
    assert ours.sp_model == theirs.sp_model
    assert vocab.same_vocabulary(ours, theirs) and vocab.same_vocabulary(theirs, ours)
    assert (ours.vocab_size, ours.eos_id, ours.unk_id, ours.pad_id) == (
        theirs.vocab_size, theirs.eos_id, theirs.unk_id, theirs.pad_id) == (
        32000 + extra_ids, 1, 2, 0)
    texts = ["The quick brown fox jumps over the lazy dog.", "Fill <extra_id_0> and <extra_id_6>x",
             "Ünïcødé 日本語   spaces\ttab\nnewline", "", "not_entailment", "<extra_id_99>"]
    for text in texts:
        assert ours.encode(text) == list(theirs.encode(text)), text
    rng = random.Random(0)
    for _ in range(300):  # ids past the vocabulary (UNK), EOS in the middle, sentinels
        ids = [rng.choice([1, rng.randrange(32200), rng.randrange(31990, 32110)])
               for _ in range(rng.randrange(12))]
        assert ours.decode(ids) == theirs.decode(ids), ids
    assert vocab.get_seqio_vocabulary(None, extra_ids).sp_model == ours.sp_model


def test_another_vocabulary_is_not_the_same():
    assert not vocab.same_vocabulary(vocab.get_vocabulary(None, 100),
                                     vocab.get_vocabulary(None, 99))
