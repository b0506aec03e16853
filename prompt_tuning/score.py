r"""Scores targets given inputs with a frozen T5 (and optionally a prompt), like T5X's score_batch.

  python -m prompt_tuning.score --checkpoint=PATH --inputs=in.jsonl --output=out.jsonl \
      [--vocab=sentencepiece.model] [--prompt=prompt.npy|PEFT_DIR] [--batch_size=16]

Each input line is {"inputs": ..., "targets": ...}, both token-id lists (taken exactly as given)
or both text (needs --vocab; tokenized, EOS appended). Each output line, in input order, is
{"log_likelihood": sum over target tokens, "token_log_probs": [...]} (padding excluded).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from typing import Any, Iterator, Optional, Sequence

import numpy as np
from absl import flags

from prompt_tuning import gin_launch

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "T5X, orbax (ours) or Hugging Face checkpoint.")
flags.DEFINE_string("inputs", None, "JSONL file of {'inputs', 'targets'}.")
flags.DEFINE_string("output", None, "JSONL file to write.")
flags.DEFINE_string("vocab", None, "SentencePiece model; needed when inputs/targets are text.")
flags.DEFINE_string("prompt", None, "a prompt: .npy [P, d], PEFT adapter dir, or our export.")
flags.DEFINE_integer("batch_size", 16, "examples per forward pass.")


def read_examples(path: str, vocabulary: Optional[Any]) -> list[tuple[list[int], list[int]]]:
    """(input ids, target ids) per line; text is tokenized with EOS appended."""
    if not os.path.isfile(path):
        raise ValueError(f"--inputs file {path} does not exist.")
    examples = []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                pair = [record["inputs"], record["targets"]]
            except (json.JSONDecodeError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{number}: expected a JSON object with 'inputs' and "
                                 f"'targets' ({e}).") from e
            examples.append(tuple(_ids(x, vocabulary, f"{path}:{number}") for x in pair))
    if not examples:
        raise ValueError(f"--inputs file {path} holds no examples.")
    return examples


def _ids(value: Any, vocabulary: Optional[Any], where: str) -> list[int]:
    if isinstance(value, str):
        if vocabulary is None:
            raise ValueError(f"{where}: text given but no --vocab to tokenize it with.")
        return list(vocabulary.encode(value)) + [1]
    if isinstance(value, list) and all(isinstance(t, int) and t >= 0 for t in value) and value:
        return value
    raise ValueError(f"{where}: inputs/targets must be text or a non-empty list of token ids.")


def _padded(rows: Sequence[list[int]], multiple: int = 8) -> np.ndarray:
    length = -(-max(len(r) for r in rows) // multiple) * multiple  # fewer distinct shapes to compile
    return np.asarray([r + [0] * (length - len(r)) for r in rows], np.int32)


def make_batches(examples, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        inputs, targets = _padded([e[0] for e in chunk]), _padded([e[1] for e in chunk])
        yield {"encoder_input_tokens": inputs, "decoder_target_tokens": targets,
               "decoder_input_tokens": np.pad(targets[:, :-1], ((0, 0), (1, 0))),
               "decoder_loss_weights": (targets > 0).astype(np.int32)}


def score_examples(loaded: Any, examples, prompt: Optional[np.ndarray] = None,
                   batch_size: int = 16) -> list[dict[str, Any]]:
    """Scores with a `checkpoints.load_checkpoint` result and an optional `[P, d]` prompt."""
    import jax  # pylint: disable=import-outside-toplevel

    from prompt_tuning.model import Transformer  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import Prompt  # pylint: disable=import-outside-toplevel
    from prompt_tuning.training import step as step_lib  # pylint: disable=import-outside-toplevel

    config, params = loaded.config, dict(loaded.params)
    too_big = max(max(max(e[0]), max(e[1])) for e in examples)
    if too_big >= config.vocab_size:
        raise ValueError(f"token id {too_big} is out of range for the model's {config.vocab_size} "
                         "embedding rows.")
    model = Transformer(config)
    if prompt is not None:
        if prompt.shape[1] != config.emb_dim:
            raise ValueError(f"prompt width {prompt.shape[1]} does not match the model's "
                             f"embedding width {config.emb_dim}.")
        model = Transformer(config, prompt=Prompt(prompt.shape[0]))
        params["prompt"] = {"prompt": jax.numpy.asarray(prompt, jax.numpy.float32)}
    score = jax.jit(step_lib.make_score_step(model))
    results = []
    for batch in make_batches(examples, batch_size):
        out = jax.device_get(score(params, batch))
        for i, n in enumerate((batch["decoder_target_tokens"] > 0).sum(axis=1)):
            results.append({"log_likelihood": float(out["log_likelihood"][i]),
                            "token_log_probs": [float(x) for x in out["token_log_probs"][i][:n]]})
    return results


def write_jsonl_atomically(records: Sequence[dict], path: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"--output directory {directory} does not exist.")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".score-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            for record in records:
                f.write(json.dumps(record) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def main(argv: list[str]) -> None:
    FLAGS(argv)
    for name in ("checkpoint", "inputs", "output"):
        if not getattr(FLAGS, name):
            raise ValueError(f"--{name} is required.")
    vocabulary = None
    if FLAGS.vocab:
        from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
        vocabulary = vocab.get_vocabulary(FLAGS.vocab)
    examples = read_examples(FLAGS.inputs, vocabulary)
    prompt = None
    if FLAGS.prompt:
        from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
        prompt = files.read_prompt(FLAGS.prompt)
    from prompt_tuning import checkpoints  # pylint: disable=import-outside-toplevel
    loaded = checkpoints.load_checkpoint(FLAGS.checkpoint)
    if vocabulary is not None:
        from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
        vocab.check_vocab_fits(vocabulary, loaded.config.vocab_size)
    results = score_examples(loaded, examples, prompt, FLAGS.batch_size)
    write_jsonl_atomically(results, FLAGS.output)
    print(f"scored {len(results)} examples -> {FLAGS.output}")


if __name__ == "__main__":
    gin_launch.run_cli(lambda: main(sys.argv))
