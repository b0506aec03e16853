"""Score inputs: one JSON line per example, `{"inputs": ..., "targets": ...}`, ids or text."""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple, Optional, Sequence

from prompt_tuning import errors, filesystem


class Example(NamedTuple):
    """One input line: token ids of the inputs and targets, its line number (for errors), and
    the name of its prompt (a `"prompt"` field; None: the one prompt, if any)."""

    inputs: list[int]
    targets: list[int]
    line: int = 0
    prompt: Optional[str] = None


def read_examples(path: str, vocabulary: Callable[[], Any]) -> list[Example]:
    """One Example per non-blank line of the JSONL file `path`.

    Args:
      path: the input file.
      vocabulary: returns the vocabulary that text is tokenized with (called only if a line
        holds text). Lists of ids are taken exactly as given (no EOS is added).
    """
    if not filesystem.isfile(path):
        raise errors.UserError(f"--inputs file {path} does not exist.")
    examples = []
    for number, line in filesystem.utf8_lines(path):
        if line.strip():
            examples.append(_parse_line(line, f"{path}:{number}", vocabulary, number))
    if not examples:
        raise errors.UserError(f"--inputs file {path} holds no examples.")
    return examples


def _parse_line(line: str, where: str, vocabulary: Callable[[], Any], number: int) -> Example:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        raise errors.UserError(f"{where}: not valid JSON ({e}).") from e
    if not isinstance(record, dict) or "inputs" not in record or "targets" not in record:
        raise errors.UserError(f"{where}: expected a JSON object with 'inputs' and 'targets'.")
    prompt = record.get("prompt")
    if prompt is not None and (not isinstance(prompt, str) or not prompt):
        raise errors.UserError(f"{where}: 'prompt' must be the name of a prompt, got {prompt!r}.")
    return Example(token_ids(record["inputs"], vocabulary, f"{where}: inputs"),
                   token_ids(record["targets"], vocabulary, f"{where}: targets"), number, prompt)


def token_ids(value: Any, vocabulary: Callable[[], Any], where: str) -> list[int]:
    """Token ids of text (tokenized, EOS appended) or of a list of ids (kept as given)."""
    if isinstance(value, str):
        vocab = vocabulary()
        return [int(t) for t in vocab.encode(value)] + [vocab.eos_id]
    # bool is an int subclass in Python; true/false in a file are mistakes, not ids.
    if not isinstance(value, list) or not value or not all(
            isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise errors.UserError(f"{where} must be text or a non-empty list of integer token ids.")
    bad = [t for t in value if t <= 0]
    if bad:
        # 0 is T5's padding id: the model would mask it out, silently scoring something else.
        raise errors.UserError(f"{where} has token id {bad[0]}; ids must be >= 1 (0 is "
                               "padding).")
    return value


def check_ids_fit(examples: Sequence[Example], vocab_size: int) -> None:
    """Every token id must have a row in the model's embedding table."""
    for example in examples:
        for field, ids in (("inputs", example.inputs), ("targets", example.targets)):
            too_big = max(ids)
            if too_big >= vocab_size:
                raise errors.UserError(f"--inputs line {example.line}: {field} token id {too_big} "
                                       f"is out of range for the model's {vocab_size} embedding "
                                       "rows.")
