"""Prompt files: reading and writing the formats a trained prompt is exchanged in.

- `.npy` `[P, d]` float32, as the reference releases its prompts (`sst2.npy`, `(100, 768)`); the
  reference also writes numpy files without the suffix (`encoder.prompt.prompt.prompt`), so a
  file counts as numpy by its content. Our export adds a metadata JSON beside it.
- An export directory: `prompt.npy` + `prompt.json`.
- A Hugging Face PEFT prompt-tuning adapter: a directory with `adapter_model.safetensors` (one
  float32 tensor `prompt_embeddings`) and `adapter_config.json`, or the `.safetensors` file
  itself. PEFT's seq2seq default saves 2P rows (an encoder and an unused decoder copy); we read
  the first P.

Nothing is ever unpickled, and every write goes to a temporary path that is renamed when done
(`atomic_write`). A prompt holding NaN or infinity is refused on read.

What we write carries the prompt's checksum (`prompt_tuning.checksums`): the metadata JSON's
`checksum` and, in a PEFT adapter, the safetensors header's `prompt_embeddings.sha256`; a read
checks it, so damaged bytes are an error rather than another prompt. Files without one (the
reference's prompts, adapters saved by PEFT, our exports before checksums) are read as they are.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, Mapping, Optional

import numpy as np

from prompt_tuning import atomic_write, checksums, filesystem, out_of_space, paths
from prompt_tuning.errors import PromptFileError

NPY_MAGIC = b"\x93NUMPY"
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"
PEFT_PICKLED_WEIGHTS = "adapter_model.bin"
PEFT_KEY = "prompt_embeddings"
PEFT_PROMPT_TYPES = ("PROMPT_TUNING", "P_TUNING")
# The PEFT release whose adapter_config.json keys we write.
PEFT_FORMAT_VERSION = "0.21.2"
EXPORT_PROMPT = "prompt.npy"
EXPORT_METADATA = "prompt.json"
CHECKSUM = "checksum"  # the metadata JSON's key: {"sha256", "dtype", "shape"}
PEFT_CHECKSUM = f"{PEFT_KEY}.sha256"  # the safetensors header's key
REQUIRED_METADATA = ("model", "prompt_length", "embed_dim", "dtype", "init", "task", "step",
                     "dev_metric")


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def read_prompt(path: str, prompt_length: Optional[int] = None,
                embed_dim: Optional[int] = None) -> np.ndarray:
    """Reads a prompt from any supported format.

    Args:
      path: a numpy file (any name), an `adapter_model.safetensors` file, a PEFT adapter
        directory, or an export directory (`prompt.npy` + `prompt.json`).
      prompt_length: the expected P, if known. It also resolves a PEFT file of 2P rows that
        has no adapter_config.json beside it.
      embed_dim: the expected d, if known.

    Returns:
      [P, d] float32.
    """
    path = paths.resolve(os.fspath(path))
    if filesystem.isdir(path):
        value = _read_dir(path, prompt_length)
    elif filesystem.isfile(path):
        if path.endswith(".safetensors"):
            config = filesystem.join(filesystem.dirname(path), PEFT_CONFIG)
            value = _read_peft(path, config, prompt_length)
        else:
            value = _read_npy(path)
            _verify(value, path, _recorded_checksum(metadata_path(path)), metadata_path(path))
    else:
        raise PromptFileError(f"No prompt file or directory at {path}.")
    return _checked(value, path, prompt_length, embed_dim)


def _checked(value: np.ndarray, path: str, prompt_length: Optional[int],
             embed_dim: Optional[int]) -> np.ndarray:
    """The prompt as contiguous float32 [P, d], after checking its dtype and shape."""
    if not _is_floating(value.dtype):
        raise PromptFileError(f"{path}: the prompt's dtype must be floating, got {value.dtype}.")
    expected = (prompt_length if prompt_length is not None else "P",
                embed_dim if embed_dim is not None else "d")
    wrong_length = prompt_length is not None and value.shape[:1] != (prompt_length,)
    wrong_dim = embed_dim is not None and value.shape[1:] != (embed_dim,)
    if value.ndim != 2 or min(value.shape) == 0 or wrong_length or wrong_dim:
        shown = "(" + ", ".join(str(e) for e in expected) + ")"
        raise PromptFileError(f"{path}: expected a prompt of shape {shown}, got {value.shape}.")
    value = np.ascontiguousarray(value, np.float32)
    check_finite(value, path)
    return value


def check_finite(prompt: np.ndarray, source: str) -> None:
    """Refuses a prompt holding NaN or infinity (a diverged run, a damaged file)."""
    bad = ~np.isfinite(prompt)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise PromptFileError(f"{source}: the prompt holds {int(bad.sum())} non-finite values "
                              f"(NaN or infinity), the first in row {row}; it cannot be used.")


def _is_floating(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating) or dtype.name == "bfloat16"


def _read_dir(path: str, prompt_length: Optional[int]) -> np.ndarray:
    weights = filesystem.join(path, PEFT_WEIGHTS)
    if filesystem.isfile(weights):
        return _read_peft(weights, filesystem.join(path, PEFT_CONFIG), prompt_length)
    exported = filesystem.join(path, EXPORT_PROMPT)
    if filesystem.isfile(exported):
        value = _read_npy(exported)
        metadata = filesystem.join(path, EXPORT_METADATA)
        _check_export_metadata(metadata, value)
        _verify(value, exported, _recorded_checksum(metadata), metadata)
        return value
    if filesystem.isfile(filesystem.join(path, PEFT_PICKLED_WEIGHTS)):
        raise PromptFileError(f"{path} holds only {PEFT_PICKLED_WEIGHTS}; we never unpickle files. "
                              "Re-save the adapter with safe_serialization=True.")
    raise PromptFileError(f"{path} is not a prompt directory: expected {PEFT_WEIGHTS} "
                          f"(a PEFT adapter) or {EXPORT_PROMPT} (an export).")


def _read_npy(path: str) -> np.ndarray:
    """A numpy array from a file recognised by its content, whatever its name."""
    data = filesystem.read_bytes(path)
    if data[:len(NPY_MAGIC)] != NPY_MAGIC:
        raise PromptFileError(f"{path} is not a numpy .npy file (expected a [P, d] array, a PEFT "
                              "adapter or an export directory).")
    try:
        value = np.load(io.BytesIO(data), allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise PromptFileError(f"{path} holds pickled Python objects; a prompt must be a plain "
                                  "float array (we never unpickle files).") from e
        raise PromptFileError(f"{path} is not a readable .npy file: {e}") from e
    except (OSError, EOFError) as e:
        raise PromptFileError(f"{path} is not a readable .npy file: {e}") from e
    if not isinstance(value, np.ndarray):
        raise PromptFileError(f"{path} does not hold a single array.")
    return value


def _check_export_metadata(path: str, value: np.ndarray) -> None:
    """Refuses an export whose prompt.json disagrees with its prompt.npy."""
    if not filesystem.isfile(path):
        return
    metadata = _read_json(path)
    for key, actual in (("prompt_length", value.shape[0]),
                        ("embed_dim", value.shape[-1] if value.ndim else None)):
        if isinstance(metadata.get(key), int) and metadata[key] != actual:
            raise PromptFileError(f"{path} says {key}={metadata[key]} but {EXPORT_PROMPT} has "
                                  f"shape {value.shape}.")


def _read_json(path: str) -> dict:
    try:
        data = json.loads(filesystem.read_text(path))
    except (OSError, ValueError) as e:
        raise PromptFileError(f"{path} is not readable JSON: {e}") from e
    if not isinstance(data, dict):
        raise PromptFileError(f"{path} must hold a JSON object, got {type(data).__name__}.")
    return data


def _recorded_checksum(path: str) -> Optional[dict]:
    """The checksum an export's metadata JSON records, or None (no such file, a foreign file,
    an export written before checksums)."""
    try:
        data = json.loads(filesystem.read_text(path))
    except (OSError, ValueError):
        return None
    recorded = data.get(CHECKSUM) if isinstance(data, dict) else None
    return recorded if isinstance(recorded, dict) and "sha256" in recorded else None


def _verify(value: np.ndarray, path: str, recorded: Optional[dict], where: str) -> None:
    """Refuses `value` read from `path` if it differs from the checksum `where` records."""
    if recorded is None or checksums.digest(value) == recorded:
        return
    raise PromptFileError(f"{path} is damaged: its array does not match the checksum recorded in "
                          f"{where} when it was exported; export it again (export_prompt), or, if "
                          f"you replaced {filesystem.basename(path)} on purpose, delete {where}.")


def _read_peft(weights: str, config_path: str, prompt_length: Optional[int]) -> np.ndarray:
    """`prompt_embeddings` of a PEFT adapter, cut to its encoder rows."""
    from safetensors import SafetensorError  # pylint: disable=import-outside-toplevel
    from safetensors.numpy import load  # pylint: disable=import-outside-toplevel

    config = _read_json(config_path) if filesystem.isfile(config_path) else {}
    peft_type = config.get("peft_type")
    if peft_type is not None and peft_type not in PEFT_PROMPT_TYPES:
        raise PromptFileError(f"{config_path} describes a {peft_type} adapter, not one of "
                              f"{list(PEFT_PROMPT_TYPES)}.")
    try:
        data = filesystem.read_bytes(weights)  # a prompt: kilobytes to a few MB
        tensors = load(data)
        header = _safetensors_metadata(data)
    except (SafetensorError, OSError, TypeError, ValueError) as e:
        raise PromptFileError(f"{weights} is not a readable safetensors file: {e}") from e
    if PEFT_KEY not in tensors:
        raise PromptFileError(f"{weights} has no tensor {PEFT_KEY!r}; it holds {sorted(tensors)}.")
    value = tensors[PEFT_KEY]
    recorded = header.get(PEFT_CHECKSUM)
    if recorded is not None and checksums.sha256(value) != recorded:
        raise PromptFileError(f"{weights} is damaged: {PEFT_KEY} does not match the checksum "
                              "written into its header when it was exported; export it again "
                              "(export_prompt --format=peft).")
    if value.ndim != 2:
        return value  # _checked reports the shape.
    return _encoder_rows(value, config, weights, prompt_length)


def _safetensors_metadata(data: bytes) -> dict:
    """The `__metadata__` of a safetensors file's header (8-byte length, then JSON)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + size])
    return header.get("__metadata__") or {}


def _encoder_rows(value: np.ndarray, config: Mapping[str, Any], path: str,
                  prompt_length: Optional[int]) -> np.ndarray:
    """The first P rows when PEFT saved one copy per transformer submodule (2P for seq2seq)."""
    tokens = config.get("num_virtual_tokens")
    if isinstance(tokens, int) and tokens > 0:
        submodules = config.get("num_transformer_submodules")
        if submodules is None:  # PEFT's own default, resolved when the model was built.
            submodules = 2 if config.get("task_type") == "SEQ_2_SEQ_LM" else 1
        if value.shape[0] != tokens * submodules:
            raise PromptFileError(f"{path}: adapter_config.json says {tokens} virtual tokens x "
                                  f"{submodules} submodules but {PEFT_KEY} has "
                                  f"{value.shape[0]} rows.")
        return value[:tokens]
    if prompt_length is not None and value.shape[0] == 2 * prompt_length:
        # No config: PEFT's seq2seq default (2 submodules); the encoder rows come first.
        return value[:prompt_length]
    return value


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

def _validated(prompt: Any) -> np.ndarray:
    """[P, d] contiguous float32 from a floating array with P, d > 0."""
    dtype = np.dtype(getattr(prompt, "dtype", np.asarray(prompt).dtype))
    if not _is_floating(dtype):
        raise PromptFileError(f"The prompt's dtype must be floating, got {dtype}.")
    value = np.ascontiguousarray(np.asarray(prompt), np.float32)
    if value.ndim != 2 or min(value.shape) == 0:
        raise PromptFileError(f"The prompt must be [P, d] with P, d > 0, got shape {value.shape}.")
    check_finite(value, "the prompt to write")
    return value


def _metadata_json(value: np.ndarray, metadata: Optional[Mapping[str, Any]],
                   required: tuple[str, ...]) -> str:
    """The metadata as JSON, with the prompt's own shape and dtype filled in and checked."""
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        raise PromptFileError(f"metadata must be a dict, got {type(metadata).__name__}.")
    missing = [key for key in required if key not in metadata]
    if missing:
        raise PromptFileError(f"metadata is missing keys {missing} (use None when unknown).")
    actual = {"prompt_length": int(value.shape[0]), "embed_dim": int(value.shape[1]),
              "dtype": "float32"}
    for key, expected in actual.items():
        if metadata.get(key) is not None and metadata[key] != expected:
            raise PromptFileError(f"metadata {key}={metadata[key]!r} but the prompt has "
                                  f"{key}={expected!r}.")
    # The checksum last: one recorded by the file this prompt was converted from is replaced.
    completed = {**metadata, **actual, CHECKSUM: checksums.digest(value)}
    for key, item in completed.items():
        if not isinstance(key, str):
            raise PromptFileError(f"metadata keys must be strings, got {key!r}.")
        try:
            json.dumps(item, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise PromptFileError(f"metadata {key!r} is not JSON-serializable "
                                  f"({type(item).__name__}: {e}).") from e
    return json.dumps(completed, indent=2, sort_keys=True) + "\n"


def _npy_bytes(value: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, value, allow_pickle=False)
    return buffer.getvalue()


def metadata_path(path: str) -> str:
    """Where write_npy puts the metadata of `path`: `rte.npy` -> `rte.json`."""
    return (path[:-len(".npy")] if path.endswith(".npy") else path) + ".json"


def write_npy(prompt: Any, path: str, metadata: Mapping[str, Any]) -> str:
    """Writes `prompt` as a float32 `.npy` file and its metadata as `<path minus .npy>.json`.

    Args:
      prompt: [P, d] floating array.
      path: the .npy path (its parent directory is created).
      metadata: at least the keys in REQUIRED_METADATA (model, prompt_length, embed_dim,
        dtype, init, task, step, dev_metric; None when unknown), JSON-serializable.
        prompt_length, embed_dim and dtype are filled in from the prompt.

    Returns:
      `path`. Each file appears complete or not at all.
    """
    path = os.fspath(path)
    if filesystem.isdir(path):
        raise PromptFileError(f"{path} is a directory; give a .npy file path.")
    value = _validated(prompt)
    text = _metadata_json(value, metadata, REQUIRED_METADATA)
    # What an export killed midway left here goes: temporaries first (they may hold the space
    # this write needs), a replaced directory once the new files are in place.
    for written in (path, metadata_path(path)):
        atomic_write.remove_leftovers(written, old=False)
    try:
        atomic_write.write_files_atomically({path: _npy_bytes(value), metadata_path(path): text})
    except OSError as e:
        raise _write_failed(path, e) from e
    for written in (path, metadata_path(path)):
        atomic_write.remove_leftovers(written)
    return path


def _write_failed(path: str, error: BaseException) -> BaseException:
    """One line for a write that failed: the path and, for a full disk, what to do."""
    full = out_of_space.reason(error)
    if full:
        return PromptFileError(f"{path}: {full}: the prompt could not be written (nothing "
                               f"half-written is left); {out_of_space.HINT}.")
    if isinstance(error, OSError):
        return error
    return PromptFileError(f"{path}: the prompt could not be written: {error}")


def peft_adapter_config(prompt_length: int, embed_dim: int,
                        base_model_name_or_path: Optional[str] = None) -> dict[str, Any]:
    """adapter_config.json for an encoder-only (one submodule) seq2seq prompt-tuning adapter.

    The keys are those PEFT 0.21.2 writes for `PromptTuningConfig`, so `PeftModel.from_pretrained`
    takes it as is; num_layers and num_attention_heads are left null for PEFT to fill from the
    base model's config.
    """
    return {
        "auto_mapping": None,
        "base_model_name_or_path": base_model_name_or_path,
        "inference_mode": True,
        "modules_to_save": None,
        "num_attention_heads": None,
        "num_layers": None,
        # One copy: the encoder's. PEFT's seq2seq default (2) adds decoder rows that prompt
        # tuning never reads.
        "num_transformer_submodules": 1,
        "num_virtual_tokens": int(prompt_length),
        "peft_type": "PROMPT_TUNING",
        "peft_version": PEFT_FORMAT_VERSION,
        "prompt_tuning_init": "RANDOM",
        "prompt_tuning_init_text": None,
        "revision": None,
        "task_type": "SEQ_2_SEQ_LM",
        "token_dim": int(embed_dim),
        "tokenizer_kwargs": None,
        "tokenizer_name_or_path": None,
    }


def write_peft(prompt: Any, directory: str, base_model_name_or_path: Optional[str] = None,
               metadata: Optional[Mapping[str, Any]] = None, overwrite: bool = False) -> str:
    """Writes `prompt` as a PEFT prompt-tuning adapter directory.

    The directory holds `adapter_model.safetensors` (`prompt_embeddings` [P, d] float32,
    metadata {"format": "pt", "prompt_embeddings.sha256": its checksum}), `adapter_config.json`
    (see `peft_adapter_config`) and, when `metadata` is given, our `prompt.json` (PEFT ignores
    it).

    Args:
      prompt: [P, d] floating array.
      directory: the adapter directory; built in a temporary sibling and renamed into place.
      base_model_name_or_path: the Hugging Face model the prompt was trained for, if known.
      metadata: JSON-serializable dict (prompt_length, embed_dim, dtype are filled in).
      overwrite: replace a non-empty `directory`.

    Returns:
      `directory`.
    """
    from safetensors import SafetensorError  # pylint: disable=import-outside-toplevel
    from safetensors.numpy import save  # pylint: disable=import-outside-toplevel

    directory = os.fspath(directory)
    value = _validated(prompt)
    if base_model_name_or_path is not None and not isinstance(base_model_name_or_path, str):
        raise PromptFileError(f"base_model_name_or_path must be a string or None, got "
                              f"{base_model_name_or_path!r}.")
    config = peft_adapter_config(value.shape[0], value.shape[1], base_model_name_or_path)
    text = None if metadata is None else _metadata_json(value, metadata, ())
    atomic_write.check_destination(directory, overwrite, "the adapter directory",
                                   PromptFileError)
    atomic_write.remove_leftovers(directory, old=False)  # see write_npy
    try:
        with atomic_write.atomic_directory(directory) as tmp:
            files = {filesystem.join(tmp, PEFT_WEIGHTS): save(
                {PEFT_KEY: value},
                metadata={"format": "pt", PEFT_CHECKSUM: checksums.sha256(value)}),
                filesystem.join(tmp, PEFT_CONFIG):
                json.dumps(config, indent=2, sort_keys=True) + "\n"}
            if text is not None:
                files[filesystem.join(tmp, EXPORT_METADATA)] = text
            for path, data in files.items():
                filesystem.write_bytes(path, data.encode() if isinstance(data, str) else data)
    except (OSError, SafetensorError) as e:
        raise _write_failed(directory, e) from e
    atomic_write.remove_leftovers(directory)
    return directory
