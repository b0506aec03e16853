r"""Scores targets given inputs with a frozen T5 (and optionally a prompt), like T5X's score_batch.

  python -m prompt_tuning.score --checkpoint=PATH --inputs=in.jsonl --output=out.jsonl \
      [--vocab=sentencepiece.model] [--prompt=prompt.npy|PEFT_DIR] [--batch_size=16]
  python -m prompt_tuning.score ... --prompt=rte=rte.npy --prompt=sst2=sst2.npy  # many prompts

--checkpoint is any supported format: a T5X checkpoint (legacy msgpack + zarr, or orbax), our
orbax format, a Hugging Face T5 1.1 directory, or `builtin:tiny_t5`. Each input line is
{"inputs": ..., "targets": ...}; each of the two is a list of token ids (taken exactly as given:
no EOS is added) or text (tokenized with --vocab, by default the T5 vocabulary shipped with the
package; EOS appended). Each output line, in input order, is
{"log_likelihood": sum over target tokens, "token_log_probs": [one per target token]}.

--prompt is a `[P, d]` float `.npy` file, a PEFT prompt-tuning adapter directory, or our
export directory; it is prepended to the encoder inputs, as PEFT's `PeftModelForSeq2SeqLM` does.
Without --prompt, a prompt stored in the checkpoint (a prompt-tuning checkpoint) is used, as
T5X would; --nouse_checkpoint_prompt scores the frozen model alone. With named prompts
(--prompt=NAME=PATH, repeatable), each input line picks one with a "prompt": NAME field (it may
be left out when only one is given); batches mix prompts of any lengths, and every example scores
as it would with its prompt alone.

Every mistake ends as one `error: ...` line (exit 2 for a wrong command line, 1 otherwise),
before anything is written; the output appears complete or not at all.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any, Optional, Sequence

from absl import flags

from prompt_tuning import atomic_write, cli, errors, filesystem, paths
from prompt_tuning.cli import distributed


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("checkpoint", None, "T5X (legacy or orbax), our orbax, Hugging Face, or "
                        "builtin:NAME checkpoint.", flag_values=values)
    flags.DEFINE_string("inputs", None, "JSONL file of {'inputs': ..., 'targets': ...}.",
                        flag_values=values)
    flags.DEFINE_string("output", None, "JSONL file to write.", flag_values=values)
    flags.DEFINE_string("vocab", None, "SentencePiece model for text inputs/targets (default: "
                        "the shipped T5 vocabulary).", flag_values=values)
    flags.DEFINE_multi_string("prompt", [], "a prompt: .npy [P, d], PEFT adapter dir, or our "
                              "export; NAME=PATH (repeatable) names it, and each input line's "
                              "'prompt' field picks one.", flag_values=values)
    flags.DEFINE_integer("batch_size", 16, "examples per forward pass.", flag_values=values)
    flags.DEFINE_bool("use_checkpoint_prompt", True, "without --prompt, score with the prompt "
                      "stored in the checkpoint, if any.", flag_values=values)
    flags.DEFINE_integer("num_partitions", 1, "devices per model replica (the rest split the "
                         "batch), as training's NUM_PARTITIONS.", flag_values=values)
    distributed.define_flags(values)


def main(argv: Sequence[str]) -> None:
    from prompt_tuning import runtime, scoring  # pylint: disable=import-outside-toplevel
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel

    values = cli.parse_flags(argv, define_flags, __doc__)
    distributed.initialize(values)
    for name in ("checkpoint", "inputs", "output"):
        if not values[name].value:
            raise errors.UsageError(f"--{name} is required.")
    if values.batch_size <= 0:
        raise errors.UsageError(f"--batch_size must be positive, got {values.batch_size}.")
    output, inputs = paths.resolve(values.output), paths.resolve(values.inputs)
    paths.check_output_file(output, "--output")
    check_not_the_inputs(output, inputs)
    # Everything that reads only small files is checked before the checkpoint is loaded.
    vocabulary = functools.lru_cache(None)(lambda: vocab.get_vocabulary(values.vocab))
    if values.vocab:
        vocabulary()
    unnamed, named = parse_prompt_flags(values.prompt)
    examples = scoring.read_examples(inputs, vocabulary)
    examples = assign_prompts(examples, named)
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
    given_prompt = files.read_prompt(unnamed) if unnamed else None
    read = {name: files.read_prompt(path) for name, path in named.items()}
    from prompt_tuning.partitioning import PartitioningConfig  # pylint: disable=import-outside-toplevel
    placement = runtime.Placement.of(PartitioningConfig(num_partitions=values.num_partitions))
    placement.check_batch_size(values.batch_size)
    frozen, shardings = placement.load_frozen(
        runtime.ModelConfig(values.checkpoint, vocabulary_path=values.vocab, dropout_rate=0.0),
        check_vocabulary=False)
    if vocabulary.cache_info().currsize:  # text was tokenized: the vocabulary must fit
        vocab.check_vocab_fits(vocabulary(), frozen.config.vocab_size)
    scoring.check_ids_fit(examples, frozen.config.vocab_size)
    if given_prompt is not None:
        runtime.check_prompt_width(given_prompt, frozen, unnamed)
    bank, prompt = None, None
    if named:
        from prompt_tuning.prompts import PromptBank  # pylint: disable=import-outside-toplevel
        bank = PromptBank(frozen.config.emb_dim)
        for name, value in read.items():
            bank.add(name, value, named[name])
    else:
        prompt = scoring.choose_prompt(given_prompt, unnamed, frozen,
                                       values.use_checkpoint_prompt)
    results = scoring.score_examples(frozen, examples, prompt, values.batch_size, placement,
                                     shardings, bank)
    if placement.is_primary:
        atomic_write.write_text_atomically(output, "".join(json.dumps(r) + "\n" for r in results))
    print(f"scored {len(results)} examples -> {output}")


def check_not_the_inputs(output: str, inputs: str) -> None:
    """Refuses an --output that is the --inputs file (by another name or a symbolic link too):
    writing the scores would replace the examples."""
    if filesystem.is_remote(output) or filesystem.is_remote(inputs):
        same = output.rstrip("/") == inputs.rstrip("/")
    else:
        same = os.path.realpath(output) == os.path.realpath(inputs)
        if not same and os.path.exists(output) and os.path.exists(inputs):
            same = os.path.samefile(output, inputs)  # a hard link
    if same:
        raise errors.UsageError(f"--output {output} is the --inputs file {inputs}: the scores "
                                "would replace the examples; give another --output.")


def parse_prompt_flags(specs: Sequence[str]) -> tuple[Optional[str], dict[str, str]]:
    """(the one unnamed prompt path or None, {name: path}) from --prompt values.

    `NAME=PATH` names a prompt, unless the whole value is an existing path (a file name may hold
    '='); a bare PATH is today's single prompt and must then be the only --prompt.
    """
    unnamed, named = [], {}
    for spec in specs:
        resolved = paths.resolve(spec)
        if "=" in spec and not filesystem.exists(resolved):
            name, path = spec.split("=", 1)
            if not name.strip() or not path:
                raise errors.UsageError(f"--prompt={spec}: expected NAME=PATH or PATH.")
            if name in named:
                raise errors.UsageError(f"--prompt names {name!r} twice.")
            named[name] = paths.resolve(path)
        else:
            unnamed.append(resolved)
    if unnamed and (named or len(unnamed) > 1):
        raise errors.UsageError("several prompts must be named: --prompt=NAME=PATH for each, and "
                                "a 'prompt': NAME field on each input line.")
    return (unnamed[0] if unnamed else None), named


def assign_prompts(examples: Sequence[Any], named: dict[str, str]) -> list[Any]:
    """Each example's prompt name, checked against the named prompts (one alone is the
    default for lines without a 'prompt' field)."""
    out = []
    for example in examples:
        name = example.prompt
        if name is None and len(named) == 1:
            name = next(iter(named))
        if named and name is None:
            raise errors.UserError(f"--inputs line {example.line}: no 'prompt' field; with "
                                   f"several prompts each line names one of {sorted(named)}.")
        if name is not None and name not in named:
            from prompt_tuning.prompts.bank import unknown_prompt_message  # pylint: disable=import-outside-toplevel
            known = list(named)
            raise errors.UserError(f"--inputs line {example.line}: "
                                   + (unknown_prompt_message(name, known) if known else
                                      f"names prompt {name!r}, but no --prompt=NAME=PATH was "
                                      "given."))
        out.append(example._replace(prompt=name))
    return out


if __name__ == "__main__":
    cli.run(main)
