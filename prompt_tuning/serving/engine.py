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
token ids (taken as given), as `score`'s input lines, within `Limits` (`programs.py`). Every
batch is padded to one of a few fixed shapes, so the programs compiled for them serve any mix of
prompts; `warm_up` compiles them all ahead. Registering a prompt swaps in a new table (and, when
it is longer than the table, a new set of programs, compiled before the swap if asked): batches
that run meanwhile see the old table or the new one, never half of one.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from prompt_tuning import errors, filesystem, paths, runtime
from prompt_tuning.prompts.bank import PromptBank, unknown_prompt_message
from prompt_tuning.scoring import batches
from prompt_tuning.scoring.examples import Example, token_ids
from prompt_tuning.serving.programs import Limits, ProgramSet
from prompt_tuning.serving.table import table_params

TokensOrText = Union[str, Sequence[int]]
ScoreRow = tuple[str, list[int], list[int]]     # (prompt, input ids, target ids), checked
GenerateRow = tuple[str, list[int], int]        # (prompt, input ids, max_decode_length)


class UnknownPromptError(errors.UsageError):
    """A request names a prompt that is not registered."""


class PromptExistsError(errors.UsageError):
    """A registration names a registered prompt without asking to replace it."""


@dataclasses.dataclass(frozen=True)
class _Served:
    """What batches read, replaced as a whole by a registration: the prompts, their rows in the
    table, the table on device with the frozen parameters, and the programs of its length."""

    bank: PromptBank
    ids: dict[str, int]
    params: Any
    programs: Optional[ProgramSet]


class MultiPromptModel:
    """A frozen model loaded once and any number of registered prompts (the Python API).

    Args:
      frozen: the frozen model (`runtime.load_frozen_model`).
      limits: the most a request, a batch and the prompt table hold (`Limits`).
    """

    def __init__(self, frozen: runtime.FrozenModel, limits: Limits = Limits()):
        self.frozen = frozen
        self.limits = limits
        self._served = _Served(PromptBank(frozen.config.emb_dim), {}, None, None)
        self._registering = threading.Lock()  # one registration at a time

    @classmethod
    def load(cls, checkpoint: str, vocabulary_path: Optional[str] = None, dtype: str = "float32",
             **kwargs: Any) -> "MultiPromptModel":
        """Reads the frozen model from any supported checkpoint (T5X, orbax, Hugging Face)."""
        config = runtime.ModelConfig(checkpoint, vocabulary_path=vocabulary_path, dtype=dtype)
        return cls(runtime.load_frozen_model(config), **kwargs)

    # ------------------------------------------------------------------ prompts
    @property
    def bank(self) -> PromptBank:
        return self._served.bank

    @property
    def prompts(self) -> dict[str, list[int]]:
        """{name: [P, d]} of the registered prompts."""
        bank = self._served.bank
        return {name: list(bank.get(name).shape) for name in bank.names}

    @property
    def num_compiled(self) -> int:
        """Programs compiled for the current table (0 before the first batch or warm-up)."""
        programs = self._served.programs
        return programs.num_compiled if programs is not None else 0

    def register(self, name: str, source: Union[str, os.PathLike, np.ndarray],
                 replace: bool = False, compile_first: bool = False,
                 stop: Optional[threading.Event] = None) -> tuple[int, int]:
        """Adds prompt `name` from a file (`.npy`, PEFT adapter dir, our export), a training run
        directory (its best prompt) or an array `[P, d]`; returns its shape.

        A registered name is replaced only if `replace` (else `PromptExistsError`). With
        `compile_first`, a prompt longer than the table gets its new programs compiled before it
        is served (the others keep being served meanwhile). Nothing changes unless it succeeds.
        """
        check_text(name, "name")
        with self._registering:
            current = self._served.bank
            if name in current and not replace:
                raise PromptExistsError(f"A prompt named {name!r} is registered; send "
                                        '"replace": true to replace it.')
            if name not in current and len(current) >= self.limits.max_prompts:
                raise errors.UsageError(f"{len(current)} prompts are registered, the most this "
                                        f"server holds (--max_prompts={self.limits.max_prompts}).")
            value, where = _read(source)
            if value.ndim == 2 and value.shape[0] > self.limits.max_prompt_length:
                raise errors.UsageError(
                    f"{where}: a prompt of {value.shape[0]} positions is longer than this server "
                    f"accepts (--max_prompt_length={self.limits.max_prompt_length}).")
            bank = PromptBank(current.width)
            for other in current.names:
                bank.add(other, current.get(other))
            bank.add(name, value, where)  # checks the name, the shape and finiteness
            served = self._serve(bank)
            if compile_first:
                served.programs.compile_all(served.params, stop)
            self._served = served  # one assignment: a batch sees the old table or the new one
        return tuple(value.shape)

    def warm_up(self, stop: Optional[threading.Event] = None,
                progress: Optional[Callable[[int, int], None]] = None) -> int:
        """Compiles every batch shape of the registered prompts' table; returns how many."""
        served = self._served
        if served.programs is None:
            return 0
        served.programs.compile_all(served.params, stop, progress)
        return served.programs.num_compiled

    def _serve(self, bank: PromptBank) -> _Served:
        longest = max(bank.get(n).shape[0] for n in bank.names)
        length = self.limits.table_length(longest)
        programs = self._served.programs
        if programs is None or programs.table_length != length:
            programs = ProgramSet(self.frozen, self.limits, length)
        return _Served(bank, {n: i for i, n in enumerate(bank.names)},
                       table_params(self.frozen.params, bank, self.limits.max_prompts, length),
                       programs)

    # ------------------------------------------------------------------ requests
    def tokens(self, value: Any, field: str, limit: int) -> list[int]:
        """Token ids of text (EOS appended) or of a list of ids (as given): at least one token
        besides EOS, at most `limit`, each with a row in the embedding table."""
        if isinstance(value, str):
            check_text(value, field)
        ids = token_ids(value, lambda: self.frozen.vocabulary, field)
        if isinstance(value, str) and len(ids) < 2:
            raise errors.UsageError(f"{field} must be non-empty text or a non-empty list of "
                                    "token ids.")
        if len(ids) > limit:
            raise errors.UsageError(f"{field} has {len(ids)} tokens; this server accepts at most "
                                    f"{limit}.")
        too_big = max(ids)
        if too_big >= self.frozen.config.vocab_size:
            raise errors.UsageError(f"{field} token id {too_big} is out of range for the model's "
                                    f"{self.frozen.config.vocab_size} embedding rows.")
        return ids

    def check_prompt(self, prompt: Any) -> str:
        """`prompt` names a registered prompt (else `UnknownPromptError`)."""
        check_text(prompt, "prompt")
        if prompt not in self._served.bank:
            raise UnknownPromptError(unknown_prompt_message(prompt, self._served.bank.names))
        return prompt

    def score_row(self, prompt: Any, inputs: Any, targets: Any, where: str = "") -> ScoreRow:
        """A checked score row (a UserError names what is wrong)."""
        return (self.check_prompt(prompt),
                self.tokens(inputs, f"{where}inputs", self.limits.max_input_length),
                self.tokens(targets, f"{where}targets", self.limits.max_target_length))

    def generate_row(self, prompt: Any, inputs: Any, max_decode_length: Any,
                     where: str = "") -> GenerateRow:
        """A checked generate row (a UserError names what is wrong)."""
        if (not isinstance(max_decode_length, int) or isinstance(max_decode_length, bool)
                or not 1 <= max_decode_length <= self.limits.max_decode_length):
            raise errors.UsageError(f"max_decode_length must be an integer from 1 to "
                                    f"{self.limits.max_decode_length}, got "
                                    f"{max_decode_length!r}.")
        return (self.check_prompt(prompt),
                self.tokens(inputs, f"{where}inputs", self.limits.max_input_length),
                max_decode_length)

    def score(self, requests: Sequence[tuple[str, TokensOrText, TokensOrText]]
              ) -> list[dict[str, Any]]:
        """[(prompt, inputs, targets)] -> [{"log_likelihood", "token_log_probs"}], in order."""
        return self.score_tokens([self.score_row(*r, where=f"request {i}: ")
                                  for i, r in enumerate(requests)])

    def generate(self, requests: Sequence[tuple[str, TokensOrText]], max_decode_length: int = 32
                 ) -> list[dict[str, Any]]:
        """[(prompt, inputs)] -> [{"output": text, "tokens": ids before EOS}], greedy, in order."""
        return self.generate_tokens([self.generate_row(p, x, max_decode_length, f"request {i}: ")
                                     for i, (p, x) in enumerate(requests)])

    def score_tokens(self, rows: Sequence[ScoreRow]) -> list[dict]:
        """`score` of checked rows, in batches of the compiled sizes (`_batches`)."""
        return [r for batch in self._batches(rows) for r in self._score_batch(batch)]

    def generate_tokens(self, rows: Sequence[GenerateRow]) -> list[dict]:
        """`generate` of checked rows, in batches of the compiled sizes; one program decodes
        each batch up to the rung of its longest `max_decode_length`."""
        return [r for batch in self._batches(rows) for r in self._generate_batch(batch)]

    def _batches(self, rows: Sequence[Any]) -> list[Sequence[Any]]:
        """Consecutive slices of `rows`, sized so that little padding is computed (5 rows run
        as 4 + 1 rather than padded to 16: `batches.split`)."""
        out, start = [], 0
        for size in batches.split(len(rows), self.limits.batch_sizes):
            if start < len(rows):
                out.append(rows[start:start + size])
            start += size
        return out

    def _score_batch(self, rows: Sequence[ScoreRow]) -> list[dict]:
        served, limits = self._served, self.limits
        size = batches.rung(len(rows), limits.batch_sizes)
        length = batches.rung(max(len(r[1]) for r in rows), limits.input_lengths)
        targets = batches.rung(max(len(r[2]) for r in rows), limits.target_lengths)
        batch = {**batches.make_batch([Example(r[1], r[2]) for r in rows], size, length,
                                      targets),
                 "prompt_ids": _prompt_ids(served, [r[0] for r in rows], size)}
        result = _to_host(served.programs.run(("score", size, length, targets), served.params,
                                              batch))
        return [{"log_likelihood": float(result["log_likelihood"][i]),
                 "token_log_probs": [float(x) for x in result["token_log_probs"][i][:len(r[2])]]}
                for i, r in enumerate(rows)]

    def _generate_batch(self, rows: Sequence[GenerateRow]) -> list[dict]:
        served, limits = self._served, self.limits
        size = batches.rung(len(rows), limits.batch_sizes)
        length = batches.rung(max(len(r[1]) for r in rows), limits.input_lengths)
        decode = batches.rung(max(r[2] for r in rows), limits.decode_lengths)
        tokens = _to_host(served.programs.run(
            ("generate", size, length, decode), served.params,
            batches.padded([r[1] for r in rows], size, length),
            _prompt_ids(served, [r[0] for r in rows], size)))
        vocabulary = self.frozen.vocabulary
        out = []
        for i, row in enumerate(rows):
            # Greedy decoding is prefix-consistent: the first N of a longer decode are the N.
            ids = [int(t) for t in tokens[i][:row[2]]]
            if vocabulary.eos_id in ids:
                ids = ids[:ids.index(vocabulary.eos_id)]
            out.append({"output": vocabulary.decode(ids), "tokens": ids})
        return out


def check_text(value: Any, field: str) -> str:
    """`value` is text that UTF-8 can encode (JSON's "\\ud800" escapes give lone surrogates,
    which no tokenizer or response can take); else a UsageError."""
    if not isinstance(value, str):
        raise errors.UsageError(f"{field} must be text, got {type(value).__name__}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise errors.UsageError(f"{field} is not valid Unicode: a lone surrogate "
                                f"{value[e.start]!a} at character {e.start}.") from None
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


def _prompt_ids(served: _Served, names: Sequence[str], num_rows: int) -> np.ndarray:
    ids = np.zeros(num_rows, np.int32)  # padding rows use prompt 0; their outputs are dropped
    ids[:len(names)] = [served.ids[n] for n in names]
    return ids


def _to_host(tree: Any) -> Any:
    import jax  # pylint: disable=import-outside-toplevel
    return jax.tree.map(np.asarray, jax.device_get(tree))
