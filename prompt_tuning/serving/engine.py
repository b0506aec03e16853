"""One frozen model, many named prompts: score and generate for batches that mix them.

    engine = MultiPromptModel.load("builtin:tiny_t5")
    engine.register("topic", "runs/topic/export/prompt.npy")     # .npy, PEFT dir, our export
    engine.register("sentiment", "runs/sentiment")               # a run: its best prompt
    engine.score([("topic", "sentence: the soup was cold", "food"),
                  ("sentiment", "sentence: the soup was cold", "negative")])
    # -> [{"log_likelihood": ..., "token_log_probs": [...]}, ...] in request order
    engine.generate([("topic", "sentence: a long flight")], max_decode_length=8)
    # -> [{"output": "travel", "tokens": [...]}]

Inputs and targets are text (tokenized with the model's vocabulary, EOS appended) or lists of
token ids (taken as given), as `score`'s input lines. Every batch is padded to a few fixed shapes
(batch, input and target lengths and the prompt table rounded up to powers of two), so a
program compiled once serves any mix of prompts; registering a prompt rebuilds the table
(a new program is compiled on first use).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Optional, Sequence, Union

import numpy as np

from prompt_tuning import errors, filesystem, paths, runtime
from prompt_tuning.prompts.bank import PromptBank
from prompt_tuning.scoring import batches
from prompt_tuning.scoring.examples import Example

TokensOrText = Union[str, Sequence[int]]


@dataclasses.dataclass(frozen=True)
class _Programs:
    """The bank as one model and its parameters, with their compiled programs (replaced as a
    whole when a prompt is registered, so a running batch keeps a consistent view)."""

    ids: dict[str, int]
    params: Any
    score: Any
    generate: Any


class MultiPromptModel:
    """A frozen model loaded once and any number of registered prompts (the Python API).

    Args:
      frozen: the frozen model (`runtime.load_frozen_model`).
      max_batch: the most examples per forward pass; longer request lists are split.
      max_input_length: the most encoder positions, prompt included (T5 was pre-trained on 512;
        relative positions past 128 share one bucket).
    """

    def __init__(self, frozen: runtime.FrozenModel, max_batch: int = 32,
                 max_input_length: int = 2048):
        self.frozen = frozen
        self.max_batch = max_batch
        self.max_input_length = max_input_length
        self.bank = PromptBank(frozen.config.emb_dim)
        self._lock = threading.Lock()
        self._programs: Optional[_Programs] = None

    @classmethod
    def load(cls, checkpoint: str, vocabulary_path: Optional[str] = None, dtype: str = "float32",
             **kwargs: Any) -> "MultiPromptModel":
        """Reads the frozen model from any supported checkpoint (T5X, orbax, Hugging Face)."""
        config = runtime.ModelConfig(checkpoint, vocabulary_path=vocabulary_path, dtype=dtype)
        return cls(runtime.load_frozen_model(config), **kwargs)

    # ------------------------------------------------------------------ prompts
    def register(self, name: str, source: Union[str, os.PathLike, np.ndarray]) -> tuple[int, int]:
        """Adds prompt `name` from a file (`.npy`, PEFT adapter dir, our export), a training run
        directory (its best prompt) or an array `[P, d]`; returns its shape. Replaces a prompt
        of the same name."""
        value, where = _read(source)
        with self._lock:
            self.bank.add(name, value, where)
            self._programs = None
        return tuple(value.shape)

    @property
    def prompts(self) -> dict[str, list[int]]:
        """{name: [P, d]} of the registered prompts."""
        return {name: list(self.bank.get(name).shape) for name in self.bank.names}

    def _current(self) -> _Programs:
        with self._lock:
            if self._programs is None:
                self._programs = self._build()
            return self._programs

    def _build(self) -> _Programs:
        import jax  # pylint: disable=import-outside-toplevel

        from prompt_tuning import decoding  # pylint: disable=import-outside-toplevel

        names = self.bank.names
        longest = max(self.bank.get(n).shape[0] for n in names)
        model, params = runtime.with_prompts(self.frozen, self.bank,
                                             capacity=batches.bucket(len(names), 4),
                                             length=batches.bucket(longest))
        greedy = decoding.DecodingConfig("greedy")
        generate = jax.jit(
            lambda p, tokens, ids, length: decoding.generate(
                model, p, tokens, greedy, length, self.frozen.vocabulary.eos_id, ids),
            static_argnums=3)
        return _Programs({n: i for i, n in enumerate(names)}, params,
                         jax.jit(runtime.make_score_step(model)), generate)

    # ------------------------------------------------------------------ requests
    def tokens(self, value: TokensOrText, field: str) -> list[int]:
        """Token ids of text (EOS appended) or of a list of ids (as given), checked."""
        from prompt_tuning.scoring.examples import token_ids  # pylint: disable=import-outside-toplevel

        ids = token_ids(value, lambda: self.frozen.vocabulary, field)
        too_big = max(ids)
        if too_big >= self.frozen.config.vocab_size:
            raise errors.UsageError(f"{field} token id {too_big} is out of range for the model's "
                                    f"{self.frozen.config.vocab_size} embedding rows.")
        return ids

    def check(self, prompt: str, inputs: list[int]) -> None:
        """The prompt is registered and it plus the inputs fit the model (else a UsageError)."""
        length = self.bank.get(prompt).shape[0]  # an unknown name: the bank's one-line error
        if length + len(inputs) > self.max_input_length:
            raise errors.UsageError(f"inputs of {len(inputs)} tokens do not fit with prompt "
                                    f"{prompt!r} ({length} positions): the model accepts "
                                    f"{self.max_input_length}.")

    def score(self, requests: Sequence[tuple[str, TokensOrText, TokensOrText]]
              ) -> list[dict[str, Any]]:
        """[(prompt, inputs, targets)] -> [{"log_likelihood", "token_log_probs"}], in order."""
        rows = []
        for i, (prompt, inputs, targets) in enumerate(requests):
            inputs = self.tokens(inputs, f"request {i}: inputs")
            self.check(prompt, inputs)
            rows.append((prompt, inputs, self.tokens(targets, f"request {i}: targets")))
        return self.score_tokens(rows)

    def score_tokens(self, rows: Sequence[tuple[str, list[int], list[int]]]) -> list[dict]:
        """`score` of checked rows (prompt, input ids, target ids), `max_batch` at a time."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(rows), self.max_batch):
            out += self._score_batch(rows[start:start + self.max_batch])
        return out

    def _score_batch(self, rows: Sequence[tuple[str, list[int], list[int]]]) -> list[dict]:
        programs = self._current()
        size = batches.bucket(len(rows), 1)
        batch = {**batches.make_batch([Example(r[1], r[2]) for r in rows], size),
                 "prompt_ids": _prompt_ids(programs, [r[0] for r in rows], size)}
        result = _to_host(programs.score(programs.params, batch))
        return [{"log_likelihood": float(result["log_likelihood"][i]),
                 "token_log_probs": [float(x) for x in result["token_log_probs"][i][:len(r[2])]]}
                for i, r in enumerate(rows)]

    def generate(self, requests: Sequence[tuple[str, TokensOrText]], max_decode_length: int = 32
                 ) -> list[dict[str, Any]]:
        """[(prompt, inputs)] -> [{"output": text, "tokens": ids before EOS}], greedy, in order."""
        check_decode_length(max_decode_length)
        rows = []
        for i, (prompt, inputs) in enumerate(requests):
            inputs = self.tokens(inputs, f"request {i}: inputs")
            self.check(prompt, inputs)
            rows.append((prompt, inputs, max_decode_length))
        return self.generate_tokens(rows)

    def generate_tokens(self, rows: Sequence[tuple[str, list[int], int]]) -> list[dict]:
        """`generate` of checked rows (prompt, input ids, max_decode_length), `max_batch` at a
        time; one program decodes the longest `max_decode_length` of each batch (bucketed)."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(rows), self.max_batch):
            out += self._generate_batch(rows[start:start + self.max_batch])
        return out

    def _generate_batch(self, rows: Sequence[tuple[str, list[int], int]]) -> list[dict]:
        programs = self._current()
        size = batches.bucket(len(rows), 1)
        tokens = _to_host(programs.generate(
            programs.params, batches.padded([r[1] for r in rows], size),
            _prompt_ids(programs, [r[0] for r in rows], size),
            batches.bucket(max(r[2] for r in rows))))
        vocabulary = self.frozen.vocabulary
        out = []
        for i, row in enumerate(rows):
            # Greedy decoding is prefix-consistent: the first N of a longer decode are the N.
            ids = [int(t) for t in tokens[i][:row[2]]]
            if vocabulary.eos_id in ids:
                ids = ids[:ids.index(vocabulary.eos_id)]
            out.append({"output": vocabulary.decode(ids), "tokens": ids})
        return out


MAX_DECODE_LENGTH = 1024


def check_decode_length(value: Any) -> int:
    """A positive integer up to MAX_DECODE_LENGTH (else a UsageError)."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_DECODE_LENGTH:
        raise errors.UsageError(f"max_decode_length must be an integer from 1 to "
                                f"{MAX_DECODE_LENGTH}, got {value!r}.")
    return value


def _read(source: Union[str, os.PathLike, np.ndarray]) -> tuple[np.ndarray, str]:
    """A `[P, d]` prompt and a name for messages, from an array, a file or a run directory."""
    if isinstance(source, np.ndarray):
        return np.asarray(source, np.float32), "the prompt array"
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel

    from prompt_tuning import run_dir  # pylint: disable=import-outside-toplevel

    path = paths.resolve(os.fspath(source))
    if filesystem.isfile(filesystem.join(path, run_dir.RUN_FILE)):  # a training run: its best prompt
        from prompt_tuning.export import prompt_from_run  # pylint: disable=import-outside-toplevel
        value, metadata = prompt_from_run(path, "best")
        return value, f"{path} step {metadata['step']}"
    return files.read_prompt(path), path


def _prompt_ids(programs: _Programs, names: Sequence[str], num_rows: int) -> np.ndarray:
    ids = np.zeros(num_rows, np.int32)  # padding rows use prompt 0; their outputs are dropped
    ids[:len(names)] = [programs.ids[n] for n in names]
    return ids


def _to_host(tree: Any) -> Any:
    import jax  # pylint: disable=import-outside-toplevel
    return jax.tree.map(np.asarray, jax.device_get(tree))
