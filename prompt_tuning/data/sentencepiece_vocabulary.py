"""A SentencePiece vocabulary with seqio's ids and text, without TensorFlow.

`seqio.SentencePieceVocabulary` imports TensorFlow (~3-4 s and ~300 MiB) even where nothing but
Python strings is tokenized: scoring, serving, label targets, prompt inspection. This class gives
the same ids and the same decoded text from the `sentencepiece` package alone, by building the
same model proto seqio builds: the extra ids appended as user-defined pieces
`▁<extra_id_{N-1}>` ... `▁<extra_id_0>` (reversed, so `<extra_id_0>` is the highest id). Its
`sp_model` bytes equal seqio's, so `vocab.same_vocabulary` (the one comparison of vocabularies)
holds between the two; seqio tasks keep seqio's class (they tokenize inside TensorFlow datasets).
"""

from __future__ import annotations

import functools
from typing import Iterable, Optional

from sentencepiece import sentencepiece_model_pb2
import sentencepiece

from prompt_tuning import filesystem

_PAD_ID = 0  # T5's padding id, which seqio fixes too (the SentencePiece model says -1)


def read_bytes(path: str) -> bytes:
    """The file's bytes, local or gs://."""
    return filesystem.read_bytes(path)


def file_exists(path: str) -> bool:
    """A regular file (not a directory) at `path`, local or gs://."""
    return filesystem.isfile(path)


def with_extra_ids(model_bytes: bytes, extra_ids: int) -> bytes:
    """The serialized model with `extra_ids` sentinel pieces appended as seqio appends them."""
    model = sentencepiece_model_pb2.ModelProto.FromString(model_bytes)
    for i in reversed(range(extra_ids)):
        model.pieces.add(piece=f"▁<extra_id_{i}>", score=0.0,
                         type=sentencepiece_model_pb2.ModelProto.SentencePiece.USER_DEFINED)
    return model.SerializeToString()


class SentencePieceVocabulary:
    """seqio's `SentencePieceVocabulary` interface for Python strings: `encode`, `decode`, the
    pad/EOS/UNK ids, `vocab_size` (pieces + extra ids), `extra_ids`, `sp_model`, `tokenizer`."""

    def __init__(self, sentencepiece_model_file: str, extra_ids: int = 0):
        self._sentencepiece_model_file = sentencepiece_model_file
        self._extra_ids = extra_ids or 0

    def load_model(self) -> None:
        """Reads and parses the model now (errors surface here rather than at first use)."""
        _ = self.tokenizer

    @functools.cached_property
    def sp_model(self) -> bytes:
        """The serialized SentencePiece model, extra ids included."""
        return with_extra_ids(read_bytes(self._sentencepiece_model_file), self._extra_ids)

    @functools.cached_property
    def tokenizer(self) -> sentencepiece.SentencePieceProcessor:
        processor = sentencepiece.SentencePieceProcessor()
        processor.LoadFromSerializedProto(self.sp_model)
        return processor

    @property
    def sentencepiece_model_file(self) -> str:
        return self._sentencepiece_model_file

    @property
    def extra_ids(self) -> int:
        return self._extra_ids

    @property
    def pad_id(self) -> int:
        return _PAD_ID

    @property
    def eos_id(self) -> Optional[int]:
        return self.tokenizer.eos_id()

    @property
    def unk_id(self) -> Optional[int]:
        return self.tokenizer.unk_id()

    @property
    def vocab_size(self) -> int:
        """Every id the vocabulary produces: the pieces and the extra ids."""
        return self.tokenizer.GetPieceSize()

    def encode(self, s: str) -> list[int]:
        """The ids of `s` (no EOS appended)."""
        return self.tokenizer.EncodeAsIds(s)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` up to and including the first EOS; ids past the model's pieces read
        as UNK (seqio's rule)."""
        size, unk = self.vocab_size, self.unk_id
        clean = [unk if int(i) >= size else int(i) for i in ids]
        if self.eos_id in clean:
            clean = clean[:clean.index(self.eos_id) + 1]
        return self.tokenizer.DecodeIds(clean)

    def __repr__(self) -> str:
        return (f"SentencePieceVocabulary({self._sentencepiece_model_file!r}, "
                f"extra_ids={self._extra_ids})")
