r"""Converts a T5X (legacy or orbax), orbax or Hugging Face T5 checkpoint to our format (or to HF).

  python -m prompt_tuning.convert_checkpoint \
      --input=t5_1_1_lm100k_base/checkpoint_1100000 --output=models/t5_1_1_lm100k_base \
      [--size=base] [--dtype=float32|bfloat16] [--overwrite] [--to=orbax|huggingface]

Prints what it found (format, model size, parameter count, dtype) and where it wrote. --size
checks the checkpoint against a named T5 1.1 size instead of inferring the architecture.
--to=huggingface writes config.json + model.safetensors (T5X -> Hugging Face). --input may also
be a built-in checkpoint (`builtin:tiny_t5`).
On failure: one `error: ...` line on stderr, exit status 1 (2 for a wrong command line), and
nothing at --output.
"""

from __future__ import annotations

import os
from typing import Optional, Sequence

from absl import flags

from prompt_tuning import atomic_write, cli, errors, filesystem, paths
from prompt_tuning.model.config import SIZES, T5Config

ORBAX, HUGGINGFACE = "orbax", "huggingface"


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("input", None, "checkpoint dir, T5X model dir or file, or builtin:NAME.",
                        flag_values=values)
    flags.DEFINE_string("output", None, "directory to write.", flag_values=values)
    flags.DEFINE_enum("size", None, sorted(SIZES), "expected T5 1.1 size.", flag_values=values)
    flags.DEFINE_enum("dtype", None, ["float32", "bfloat16"], "cast parameters (default: keep "
                      "the stored dtype).", flag_values=values)
    flags.DEFINE_bool("overwrite", False, "replace a non-empty --output.", flag_values=values)
    flags.DEFINE_enum("to", ORBAX, [ORBAX, HUGGINGFACE], "output format.", flag_values=values)


def describe_model(config: T5Config) -> str:
    """"t5_1_1 'base' (vocab ..., embed ...)" or the dimensions of an unnamed size."""
    from prompt_tuning.checkpoints import architecture  # pylint: disable=import-outside-toplevel

    dims = (f"vocab {config.vocab_size}, embed {config.emb_dim}, {config.num_encoder_layers}+"
            f"{config.num_decoder_layers} layers, {config.num_heads} heads x {config.head_dim}, "
            f"mlp {config.mlp_dim}")
    name = architecture.size_name(config)
    return f"t5_1_1 {name!r} ({dims})" if name else f"{dims} (not a named T5 1.1 size)"


def _summary(loaded) -> list[str]:
    import jax  # pylint: disable=import-outside-toplevel

    from prompt_tuning.model import param_count  # pylint: disable=import-outside-toplevel

    dtypes = sorted({str(x.dtype) for x in jax.tree.leaves(loaded.params)})
    step = "" if loaded.step is None else f", step {loaded.step}"
    lines = [f"format: {loaded.format} ({loaded.path}{step})",
             f"model: {describe_model(loaded.config)}",
             f"parameters: {param_count(loaded.params):,} ({', '.join(dtypes)})"]
    if loaded.prompt is not None:
        lines.append(f"prompt: {list(loaded.prompt.shape)}")
    return lines


def _check_paths(source: str, output: str) -> None:
    def canonical(path: str) -> str:
        return path.rstrip("/") if filesystem.is_remote(path) else os.path.realpath(path)

    source, output = canonical(source), canonical(output)
    if source == output or source.startswith(output + "/") or output.startswith(source + "/"):
        raise errors.UsageError(f"--output {output} must not contain or lie inside --input "
                                f"{source}.")


def _write_huggingface(loaded, output: str, dtype: Optional[str]) -> None:
    import jax  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    from flax import traverse_util  # pylint: disable=import-outside-toplevel

    from prompt_tuning.checkpoints import huggingface  # pylint: disable=import-outside-toplevel

    flat = {k: np.asarray(jax.device_get(v))
            for k, v in traverse_util.flatten_dict(loaded.params, sep="/").items()}
    stored = {v.dtype for v in flat.values()}
    out_dtype = np.dtype(dtype) if dtype else (stored.pop() if len(stored) == 1
                                               else np.dtype(np.float32))
    with atomic_write.atomic_directory(output) as tmp:
        huggingface.save_hf_checkpoint(flat, loaded.config, tmp, dtype=out_dtype)


def convert(source: str, output: str, size: Optional[str], dtype: Optional[str], to: str,
            overwrite: bool) -> list[str]:
    """Does the conversion; returns the lines to print."""
    from prompt_tuning import checkpoints  # pylint: disable=import-outside-toplevel
    from prompt_tuning.checkpoints import formats  # pylint: disable=import-outside-toplevel
    from prompt_tuning.model import t5_1_1  # pylint: disable=import-outside-toplevel

    _, directory = formats.resolve_checkpoint(source)
    _check_paths(directory, output)
    # Refuse an occupied --output before reading a possibly large checkpoint.
    atomic_write.check_destination(output, overwrite, "--output")
    loaded = checkpoints.load_checkpoint(source, config=t5_1_1(size) if size else None,
                                         dtype=dtype)
    lines = _summary(loaded)
    if to == HUGGINGFACE:
        _write_huggingface(loaded, output, dtype)
        if loaded.prompt is not None:
            lines.append("note: the prompt is not written (a Hugging Face T5 has no place for it)")
    else:
        checkpoints.save_checkpoint(loaded.params, loaded.config, output, prompt=loaded.prompt,
                                    overwrite=overwrite)
    lines.append(f"wrote {to} checkpoint to {output}")
    return lines


def main(argv: Sequence[str]) -> None:
    values = cli.parse_flags(argv, define_flags, __doc__)
    for name in ("input", "output"):
        if not values[name].value:
            raise errors.UsageError(f"--{name} is required.")
    from absl import logging  # pylint: disable=import-outside-toplevel
    logging.set_verbosity(logging.ERROR)  # keep orbax's info/warnings off stderr
    output = paths.resolve(values.output)
    paths.check_output_dir(output, "--output")
    print("\n".join(convert(values.input, output, values.size, values.dtype, values.to,
                            values.overwrite)))


if __name__ == "__main__":
    cli.run(main)
