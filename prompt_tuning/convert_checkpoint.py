r"""Converts a T5X (legacy or orbax), orbax or Hugging Face T5 checkpoint to our format (or to HF).

  python -m prompt_tuning.convert_checkpoint \
      --input=t5_1_1_lm100k_base/checkpoint_1100000 --output=models/t5_1_1_lm100k_base \
      [--size=base] [--dtype=float32|bfloat16] [--overwrite] [--to=orbax|huggingface]

Prints what it found (format, model size, parameter count, dtype) and where it wrote. --size
checks the checkpoint against a named T5 1.1 size instead of inferring the architecture.
--to=huggingface writes config.json + model.safetensors (T5X -> Hugging Face).
On failure: one `error: ...` line on stderr, exit status 1 (2 for bad flags), and nothing at
--output.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from typing import Optional, Sequence

from prompt_tuning.model.config import SIZES, T5Config

ORBAX, HUGGINGFACE = "orbax", "huggingface"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m prompt_tuning.convert_checkpoint",
        description="Convert a T5 checkpoint (T5X, orbax, Hugging Face) to our orbax format.")
    parser.add_argument("--input", required=True, help="checkpoint dir, T5X model dir or file")
    parser.add_argument("--output", required=True, help="directory to write")
    parser.add_argument("--size", choices=sorted(SIZES), help="expected T5 1.1 size")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"],
                        help="cast parameters (default: keep the stored dtype)")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --output")
    parser.add_argument("--to", choices=[ORBAX, HUGGINGFACE], default=ORBAX,
                        help="output format (default: our orbax format)")
    return parser


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
    source, output = os.path.realpath(source), os.path.realpath(output)
    if source == output or source.startswith(output + os.sep) or output.startswith(source + os.sep):
        raise ValueError(f"--output {output} must not contain or lie inside --input {source}.")


def _write_huggingface(loaded, output: str, dtype: Optional[str]) -> None:
    import jax  # pylint: disable=import-outside-toplevel
    import numpy as np  # pylint: disable=import-outside-toplevel
    from flax import traverse_util  # pylint: disable=import-outside-toplevel

    # pylint: disable-next=import-outside-toplevel
    from prompt_tuning.checkpoints import atomic_dir, huggingface

    flat = {k: np.asarray(jax.device_get(v))
            for k, v in traverse_util.flatten_dict(loaded.params, sep="/").items()}
    stored = {v.dtype for v in flat.values()}
    out_dtype = np.dtype(dtype) if dtype else (stored.pop() if len(stored) == 1
                                               else np.dtype(np.float32))
    tmp = atomic_dir.temporary_dir_for(output)
    try:
        huggingface.save_hf_checkpoint(flat, loaded.config, tmp, dtype=out_dtype)
        atomic_dir.replace_dir_atomically(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def convert(args: argparse.Namespace) -> list[str]:
    """Does the conversion; returns the lines to print."""
    from prompt_tuning import checkpoints  # pylint: disable=import-outside-toplevel
    from prompt_tuning.checkpoints import atomic_dir  # pylint: disable=import-outside-toplevel
    from prompt_tuning.model import t5_1_1  # pylint: disable=import-outside-toplevel

    _check_paths(args.input, args.output)
    # Refuse an occupied --output before reading a possibly large checkpoint.
    atomic_dir.check_destination(os.path.abspath(args.output), args.overwrite)
    config = t5_1_1(args.size) if args.size else None
    loaded = checkpoints.load_checkpoint(args.input, config=config, dtype=args.dtype)
    lines = _summary(loaded)
    output = os.path.abspath(args.output)
    if args.to == HUGGINGFACE:
        _write_huggingface(loaded, output, args.dtype)
        if loaded.prompt is not None:
            lines.append("note: the prompt is not written (a Hugging Face T5 has no place for it)")
    else:
        checkpoints.save_checkpoint(loaded.params, loaded.config, output, prompt=loaded.prompt,
                                    overwrite=args.overwrite)
    lines.append(f"wrote {args.to} checkpoint to {output}")
    return lines


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = _parser().parse_args(argv)  # exits with status 2 on bad flags
    from absl import logging  # pylint: disable=import-outside-toplevel
    logging.set_verbosity(logging.ERROR)  # keep orbax's info/warnings off stderr
    try:
        lines = convert(args)
    except (ValueError, OSError) as e:
        message = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"error: {message}", file=sys.stderr)
        return 1
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
