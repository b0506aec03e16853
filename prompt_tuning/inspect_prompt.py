r"""Shows what a prompt "says": each position's norm and nearest vocabulary tokens (paper, sec. 7).

  python -m prompt_tuning.inspect_prompt --prompt=FILE --checkpoint=PATH [--vocab=SPM] \
      [--top_k=5] [--json]

--prompt is a `[P, d]` prompt file: `.npy`, a PEFT adapter directory, or our export.
--checkpoint is the frozen model the prompt was trained for, in any supported format (T5X legacy
or orbax, our orbax, a Hugging Face directory, `builtin:tiny_t5`); only its input embedding table
`token_embedder/embedding` [vocab, d] is read, never the other weights. Each position's nearest
tokens are the embedding rows of highest cosine similarity, named with --vocab (default: the T5
vocabulary shipped with the package); sentinels are `<extra_id_N>`, and the rows T5 pads its
table with past the vocabulary `<unused_ID>`.

Prints a header line and one line per position:
    3  norm 12.41  ▁positive 0.83 | ▁good 0.41 | ...
--json prints instead {"prompt", "checkpoint", "shape": [P, d], "positions": [{"index", "norm",
"nearest": [{"id", "piece", "cosine"}, ...]}, ...]}.

Every mistake ends as one `error: ...` line (exit 2 for a wrong command line, 1 otherwise).
"""

from __future__ import annotations

import json
from typing import Sequence

from absl import flags

from prompt_tuning import cli, errors, paths

def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("prompt", None, "the prompt: .npy [P, d], PEFT adapter dir, or our "
                        "export.", flag_values=values)
    flags.DEFINE_string("checkpoint", None, "the frozen model: T5X (legacy or orbax), our orbax, "
                        "Hugging Face, or builtin:NAME.", flag_values=values)
    flags.DEFINE_string("vocab", None, "SentencePiece model naming the tokens (default: the "
                        "shipped T5 vocabulary).", flag_values=values)
    flags.DEFINE_integer("top_k", 5, "nearest tokens shown per prompt position.",
                         flag_values=values)
    flags.DEFINE_bool("json", False, "print JSON instead of text.", flag_values=values)


def main(argv: Sequence[str]) -> None:
    from prompt_tuning.checkpoints import embedding_table  # pylint: disable=import-outside-toplevel
    from prompt_tuning.data import vocab  # pylint: disable=import-outside-toplevel
    from prompt_tuning.prompts import files, inspection  # pylint: disable=import-outside-toplevel

    values = cli.parse_flags(argv, define_flags, __doc__)
    for name in ("prompt", "checkpoint"):
        if not values[name].value:
            raise errors.UsageError(f"--{name} is required.")
    if values.top_k < 1:
        raise errors.UsageError(f"--top_k must be at least 1, got {values.top_k}.")
    prompt_path = paths.resolve(values.prompt)
    checkpoint = paths.resolve(values.checkpoint)
    # The small files first: a wrong prompt or vocabulary fails before the table is read.
    prompt = files.read_prompt(prompt_path)  # [P, d]; a [n, P, d] table is refused there
    vocabulary = vocab.get_vocabulary(values.vocab)
    (rows, width), read_embedding = embedding_table.open_embedding(checkpoint)
    if prompt.shape[1] != width:
        raise errors.PromptFileError(
            f"the prompt {prompt_path} is [{prompt.shape[0]}, {prompt.shape[1]}] but the model's "
            f"embeddings are {width} wide ({checkpoint}).")
    if values.top_k > rows:
        raise errors.UsageError(f"--top_k {values.top_k} is more than the model's {rows} "
                                "embedding rows.")
    vocab.check_vocab_fits(vocabulary, rows)  # fewer ids than rows is T5's padding: named
    norms, ids, cosines = inspection.nearest_tokens(prompt, read_embedding(), values.top_k)

    def piece(token_id: int) -> str:
        return inspection.token_piece(token_id, vocabulary.tokenizer.id_to_piece,
                                      vocabulary.vocab_size, vocabulary.extra_ids)

    data = inspection.report(prompt_path, checkpoint, prompt.shape, norms, ids, cosines, piece)
    if values.json:
        print(json.dumps(data, ensure_ascii=False))
    else:
        print("\n".join(inspection.text_lines(data)))


if __name__ == "__main__":
    cli.run(main)
