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
