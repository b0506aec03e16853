"""What a server compiles: its limits, the batch shapes they allow, and one compiled program per
shape (`ProgramSet`).

Every request is checked against `Limits` before it is queued, and every batch is padded up to a
rung of a short ladder per dimension (`scoring.batches.ladder`: x4 steps, the limit last), so the
set of shapes is fixed and small: batch sizes x input lengths x (target lengths for /score,
decode lengths for /generate), for the prompt table's one length. With the defaults (batch 32,
inputs 256, targets and decoding 32) that is 4 x 3 x 2 = 24 programs per endpoint; the server
compiles them all before it says it is ready (`ProgramSet.compile_all`), so no request compiles.
The encoder sees at most `max_prompt_length + max_input_length` positions (512 by default, the
length T5 was pre-trained on), which bounds the memory of every batch.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Callable, Optional

import numpy as np

from prompt_tuning import errors, runtime
from prompt_tuning.prompts import seam
from prompt_tuning.runtime import host_memory
from prompt_tuning.scoring import batches
from prompt_tuning.serving.table import ServedPromptTable

Shape = tuple[str, int, int, int]  # (kind, batch, input length, target or decode length)


@dataclasses.dataclass(frozen=True)
class Limits:
    """The most a server accepts; each field is the command-line flag of the same name."""

    max_batch: int = 32           # requests per batch (a forward pass)
    max_prompts: int = 64         # registered prompts (rows of the prompt table)
    max_prompt_length: int = 256  # positions of one prompt
    max_input_length: int = 256   # input tokens of one request (EOS included), besides the prompt
    max_target_length: int = 32   # target tokens of one /score request (EOS included)
    max_decode_length: int = 32   # tokens one /generate request may ask for

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 2**16:
                raise errors.UsageError(f"--{field.name} must be an integer from 1 to 65536, "
                                        f"got {value!r}.")

    @property
    def batch_sizes(self) -> tuple[int, ...]:
        return batches.ladder(1, self.max_batch)

    @property
    def input_lengths(self) -> tuple[int, ...]:
        return batches.ladder(16, self.max_input_length)

    @property
    def target_lengths(self) -> tuple[int, ...]:
        return batches.ladder(8, self.max_target_length)

    @property
    def decode_lengths(self) -> tuple[int, ...]:
        return batches.ladder(8, self.max_decode_length)

    def table_length(self, longest: int) -> int:
        """Positions of the prompt table whose longest prompt is `longest` (a power of two,
        capped at `max_prompt_length`): it changes only when a longer prompt comes."""
        return min(batches.bucket(longest), self.max_prompt_length)

    def shapes(self) -> list[Shape]:
        """Every batch shape a server with these limits runs, the cheap ones first."""
        return [(kind, b, i, n) for kind, lengths in (("score", self.target_lengths),
                                                      ("generate", self.decode_lengths))
                for b in self.batch_sizes for i in self.input_lengths for n in lengths]


class Stopped(Exception):
    """Compiling was stopped (the server is shutting down)."""


class ProgramSet:
    """The score and generate programs of one prompt-table length, compiled once per shape.

    `run` compiles a shape it has not met (on the calling thread); `compile_all` compiles every
    shape of `limits` up front. The table's contents (`table.table_params`) are an argument, so
    registering a prompt that fits the table's length reuses every program.
    """

    def __init__(self, frozen: runtime.FrozenModel, limits: Limits, table_length: int):
        import jax  # pylint: disable=import-outside-toplevel

        from prompt_tuning import decoding  # pylint: disable=import-outside-toplevel

        self.limits = limits
        self.table_length = table_length
        model = seam.prompted_model(frozen.config,
                                    ServedPromptTable(limits.max_prompts, table_length))
        greedy = decoding.DecodingConfig("greedy")
        eos = frozen.vocabulary.eos_id
        self._score = jax.jit(runtime.make_score_step(model))
        self._generate = jax.jit(
            lambda p, tokens, ids, length: decoding.generate(model, p, tokens, greedy, length,
                                                             eos, ids), static_argnums=3)
        self._compiled: dict[Shape, Any] = {}
        self._lock = threading.Lock()

    @property
    def num_compiled(self) -> int:
        return len(self._compiled)

    def run(self, shape: Shape, params: Any, *args: np.ndarray) -> Any:
        """The program of `shape` applied to (params, *args): a score batch dict, or (tokens,
        prompt_ids) for generate."""
        return self._program(shape, params)(params, *args)

    def compile_all(self, params: Any, stop: Optional[threading.Event] = None,
                    progress: Optional[Callable[[int, int], None]] = None) -> None:
        """Compiles every shape of the limits not compiled yet; `progress(done, total)` after
        each; raises `Stopped` between two programs once `stop` is set."""
        shapes = self.limits.shapes()
        before = self.num_compiled
        for done, shape in enumerate(shapes, 1):
            if stop is not None and stop.is_set():
                raise Stopped()
            self._program(shape, params)
            if progress is not None:
                progress(done, len(shapes))
        if self.num_compiled > before:
            host_memory.release()  # what compiling freed goes back to the OS, not kept by glibc

    def _program(self, shape: Shape, params: Any) -> Any:
        program = self._compiled.get(shape)
        if program is None:
            program = self._lower(shape, params).compile()
            with self._lock:
                program = self._compiled.setdefault(shape, program)
        return program

    def _lower(self, shape: Shape, params: Any) -> Any:
        import jax  # pylint: disable=import-outside-toplevel
        import jax.numpy as jnp  # pylint: disable=import-outside-toplevel

        kind, size, length, other = shape
        ids = jax.ShapeDtypeStruct((size, length), jnp.int32)
        rows = jax.ShapeDtypeStruct((size,), jnp.int32)
        if kind == "generate":
            return self._generate.lower(params, ids, rows, other)
        targets = jax.ShapeDtypeStruct((size, other), jnp.int32)
        return self._score.lower(params, {"encoder_input_tokens": ids,
                                          "decoder_target_tokens": targets,
                                          "decoder_input_tokens": targets,
                                          "decoder_loss_weights": targets, "prompt_ids": rows})
