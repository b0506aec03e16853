r"""Scores targets given inputs with a frozen T5 (and optionally a prompt), like T5X's score_batch.

  python -m prompt_tuning.score --checkpoint=PATH --inputs=in.jsonl --output=out.jsonl \
      [--vocab=sentencepiece.model] [--prompt=prompt.npy|PEFT_DIR] [--batch_size=16]

--checkpoint is any supported format: a T5X checkpoint (legacy msgpack + zarr, or orbax), our
orbax format, or a Hugging Face T5 1.1 directory. Each input line is {"inputs": ..., "targets":
...}; each of the two is a list of token ids (taken exactly as given: no EOS is added) or text
(needs --vocab; tokenized, EOS appended). Each output line, in input order, is
{"log_likelihood": sum over target tokens, "token_log_probs": [one per target token]}.

--prompt is a `[P, d]` float `.npy` file, a PEFT prompt-tuning adapter directory, or our
export directory; it is prepended to the encoder inputs, as PEFT's `PeftModelForSeq2SeqLM` does.
Without --prompt, a prompt stored in the checkpoint (a prompt-tuning checkpoint) is used, as
T5X would; --nouse_checkpoint_prompt scores the frozen model alone.

Every mistake ends as one `error: ...` line and exit code 1, before anything is written; the
output appears complete or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from typing import Any, Iterator, NamedTuple, Optional, Sequence

import numpy as np
from absl import flags

from prompt_tuning import atomic_write, gin_launch

PAD_ID = 0
EOS_ID = 1
_HELP_ARGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")


class Example(NamedTuple):
    """One input line: token ids of the inputs and targets, and its line number (for errors)."""

    inputs: list[int]
    targets: list[int]
    line: int = 0


@dataclasses.dataclass(frozen=True)
class Options:
    """The parsed command line."""

    checkpoint: str
    inputs: str
    output: str
    vocab: Optional[str] = None
    prompt: Optional[str] = None
    batch_size: int = 16
    use_checkpoint_prompt: bool = True


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------

def _flag_values() -> flags.FlagValues:
    """A fresh set of this command's flags.

    Private to each call rather than on the global FLAGS: other entry points define flags of the
    same names (--prompt, --output), and absl refuses duplicates within one process.
    """
    values = flags.FlagValues()
    flags.DEFINE_string("checkpoint", None, "T5X (legacy or orbax), our orbax, or Hugging Face "
                        "checkpoint.", flag_values=values)
    flags.DEFINE_string("inputs", None, "JSONL file of {'inputs': ..., 'targets': ...}.",
                        flag_values=values)
    flags.DEFINE_string("output", None, "JSONL file to write.", flag_values=values)
    flags.DEFINE_string("vocab", None, "SentencePiece model; needed when inputs/targets are text.",
                        flag_values=values)
    flags.DEFINE_string("prompt", None, "a prompt: .npy [P, d], PEFT adapter dir, or our export.",
                        flag_values=values)
    flags.DEFINE_integer("batch_size", 16, "examples per forward pass.", flag_values=values)
    flags.DEFINE_bool("use_checkpoint_prompt", True, "without --prompt, score with the prompt "
                      "stored in the checkpoint, if any.", flag_values=values)
    return values


def parse_flags(argv: Sequence[str]) -> Optional[Options]:
    """Options from `argv` (argv[0] is the program); None when help was asked for and printed."""
    values = _flag_values()
    if any(arg in _HELP_ARGS for arg in argv[1:]):
        print(__doc__)
        print(values.get_help())
        return None
    try:
        rest = values(list(argv))
    except flags.Error as e:  # absl's errors are not ValueErrors; make them one-line user errors.
        raise ValueError(str(e)) from e
    if len(rest) > 1:
        raise ValueError(f"unexpected argument {rest[1]!r}; every option is a --flag=value.")
    for name in ("checkpoint", "inputs", "output"):
        if not values[name].value:
            raise ValueError(f"--{name} is required.")
    if values.batch_size <= 0:
        raise ValueError(f"--batch_size must be positive, got {values.batch_size}.")
    return Options(checkpoint=values.checkpoint, inputs=values.inputs, output=values.output,
                   vocab=values.vocab, prompt=values.prompt, batch_size=values.batch_size,
                   use_checkpoint_prompt=values.use_checkpoint_prompt)


def check_output_path(path: str) -> None:
    """Fails now, not after the scoring, when `path` cannot be written."""
    if os.path.isdir(path):
        raise ValueError(f"--output {path} is a directory; give a file path.")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"--output directory {directory} does not exist.")


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------

def read_examples(path: str, vocabulary: Optional[Any] = None) -> list[Example]:
    """One Example per non-blank line of the JSONL file `path`; text needs `vocabulary`."""
    if not os.path.isfile(path):
        raise ValueError(f"--inputs file {path} does not exist.")
    examples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                examples.append(_parse_line(line, f"{path}:{number}", vocabulary, number))
    if not examples:
        raise ValueError(f"--inputs file {path} holds no examples.")
    return examples


def _parse_line(line: str, where: str, vocabulary: Optional[Any], number: int) -> Example:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{where}: not valid JSON ({e}).") from e
    if not isinstance(record, dict) or "inputs" not in record or "targets" not in record:
        raise ValueError(f"{where}: expected a JSON object with 'inputs' and 'targets'.")
    return Example(_ids(record["inputs"], vocabulary, f"{where}: inputs"),
                   _ids(record["targets"], vocabulary, f"{where}: targets"), number)


def _ids(value: Any, vocabulary: Optional[Any], where: str) -> list[int]:
    """Token ids of text (tokenized, EOS appended) or of a list of ids (kept as given)."""
    if isinstance(value, str):
        if vocabulary is None:
            raise ValueError(f"{where} is text but no --vocab was given to tokenize it with.")
        return [int(t) for t in vocabulary.encode(value)] + [EOS_ID]
    # bool is an int subclass in Python; true/false in a file are mistakes, not ids.
    if not isinstance(value, list) or not value or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise ValueError(f"{where} must be text or a non-empty list of integer token ids.")
    bad = [t for t in value if t <= PAD_ID]
    if bad:
        # 0 is T5's padding id: the model would mask it out, silently scoring something else.
        raise ValueError(f"{where} has token id {bad[0]}; ids must be >= 1 (0 is padding).")
    return value


def check_ids_fit(examples: Sequence[Example], vocab_size: int) -> None:
    """Every token id must have a row in the model's embedding table."""
    for example in examples:
        for field, ids in (("inputs", example.inputs), ("targets", example.targets)):
            too_big = max(ids)
            if too_big >= vocab_size:
                raise ValueError(f"--inputs line {example.line}: {field} token id {too_big} is "
                                 f"out of range for the model's {vocab_size} embedding rows.")


def _bucket(length: int, minimum: int = 8) -> int:
    """`length` rounded up to a power of two (>= minimum): few distinct shapes to compile."""
    return max(minimum, 1 << (length - 1).bit_length())


def _padded(rows: Sequence[list[int]], num_rows: int) -> np.ndarray:
    """[num_rows, bucketed length] int32; missing rows and positions are padding (0)."""
    length = _bucket(max(len(r) for r in rows))
    out = np.full((num_rows, length), PAD_ID, np.int32)
    for i, row in enumerate(rows):
        out[i, :len(row)] = row
    return out


def make_batch(chunk: Sequence[Example], batch_size: int) -> dict[str, np.ndarray]:
    """A seqio EncDecFeatureConverter-style batch of `batch_size` rows.

    Padding is id 0 with loss weight 0; a short last chunk is filled with all-padding rows, so
    that it reuses the compiled step (their scores are 0 and are dropped).
    """
    inputs = _padded([e.inputs for e in chunk], batch_size)
    targets = _padded([e.targets for e in chunk], batch_size)
    return {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
            # Teacher forcing: the decoder sees the targets shifted right after a 0 (BOS).
            "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
            "decoder_loss_weights": (targets > PAD_ID).astype(np.int32)}


def chunks(examples: Sequence[Example], batch_size: int) -> Iterator[Sequence[Example]]:
    """Consecutive slices of `batch_size` examples (the last may be shorter), in order."""
    for start in range(0, len(examples), batch_size):
        yield examples[start:start + batch_size]


# --------------------------------------------------------------------------------------------
# Prompt and scoring
# --------------------------------------------------------------------------------------------

def check_prompt_fits(prompt: np.ndarray, emb_dim: int, source: str) -> None:
    """The prompt must be [P, d] with the model's d; `source` names it in the error."""
    if prompt.ndim != 2 or prompt.shape[1] != emb_dim:
        raise ValueError(f"{source}: prompt of shape {tuple(prompt.shape)} does not fit the "
                         f"model: expected [P, {emb_dim}] (the model's embedding width).")


def choose_prompt(given: Optional[np.ndarray], given_path: Optional[str], loaded: Any,
                  use_checkpoint_prompt: bool) -> Optional[np.ndarray]:
    """--prompt if given, else the checkpoint's own prompt (if wanted), else None."""
    stored = getattr(loaded, "prompt", None)
    if given is not None:
        if stored is not None:
            print(f"using the prompt from {given_path}, not the one stored in the checkpoint")
        return given
    if stored is not None and use_checkpoint_prompt:
        print(f"using the prompt stored in the checkpoint, shape {list(np.shape(stored))} "
              "(--nouse_checkpoint_prompt to score without it)")
        return np.asarray(stored, np.float32)
    return None


def score_examples(loaded: Any, examples: Sequence[Example], prompt: Optional[np.ndarray] = None,
                   batch_size: int = 16) -> list[dict[str, Any]]:
    """Scores with a `checkpoints.load_checkpoint` result and an optional `[P, d]` prompt."""
    import jax  # pylint: disable=import-outside-toplevel

    from prompt_tuning.model import Transformer  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import Prompt  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training import step as step_lib  # pylint: disable=import-outside-toplevel

    examples = [e if isinstance(e, Example) else Example(*e) for e in examples]
    config, params = loaded.config, dict(loaded.params)
    check_ids_fit(examples, config.vocab_size)
    model = Transformer(config)
    if prompt is not None:
        check_prompt_fits(prompt, config.emb_dim, "--prompt")
        model = Transformer(config, prompt=Prompt(prompt.shape[0]))
        params["prompt"] = {"prompt": jax.numpy.asarray(prompt, jax.numpy.float32)}
    score = jax.jit(step_lib.make_score_step(model))
    results = []
    for chunk in chunks(examples, batch_size):
        out = jax.device_get(score(params, make_batch(chunk, batch_size)))
        for i, example in enumerate(chunk):
            n = len(example.targets)
            results.append({"log_likelihood": float(out["log_likelihood"][i]),
                            "token_log_probs": [float(x) for x in out["token_log_probs"][i][:n]]})
    return results


# --------------------------------------------------------------------------------------------
# Output and main
# --------------------------------------------------------------------------------------------

def write_jsonl_atomically(records: Sequence[dict], path: str) -> None:
    """One JSON line per record at `path`, complete or not at all."""
    check_output_path(path)
    atomic_write.write_text_atomically(path, "".join(json.dumps(r) + "\n" for r in records))


def _load_vocabulary(path: Optional[str]) -> Optional[Any]:
    if not path:
        return None
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
    return vocab.get_vocabulary(path)


def _read_prompt_file(path: Optional[str]) -> Optional[np.ndarray]:
    if not path:
        return None
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
    return files.read_prompt(path)


def main(argv: Sequence[str]) -> None:
    options = parse_flags(argv)
    if options is None:
        return
    # Everything that reads only small files is checked before the checkpoint is loaded.
    check_output_path(options.output)
    vocabulary = _load_vocabulary(options.vocab)
    examples = read_examples(options.inputs, vocabulary)
    given_prompt = _read_prompt_file(options.prompt)
    from prompt_tuning import checkpoints  # pylint: disable=import-outside-toplevel
    loaded = checkpoints.load_checkpoint(options.checkpoint)
    if vocabulary is not None:
        from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
        vocab.check_vocab_fits(vocabulary, loaded.config.vocab_size)
    check_ids_fit(examples, loaded.config.vocab_size)
    if given_prompt is not None:
        check_prompt_fits(given_prompt, loaded.config.emb_dim, options.prompt)
    prompt = choose_prompt(given_prompt, options.prompt, loaded, options.use_checkpoint_prompt)
    results = score_examples(loaded, examples, prompt, options.batch_size)
    write_jsonl_atomically(results, options.output)
    print(f"scored {len(results)} examples -> {options.output}")


if __name__ == "__main__":
    gin_launch.run_cli(lambda: main(sys.argv))
