"""Hugging Face T5 (`config.json` + `model.safetensors`, sharded or not) <-> our parameter tree.

Only T5 1.1-style checkpoints (gated-GELU MLP, untied `lm_head`) map onto our model. Nothing is
ever unpickled: `pytorch_model.bin` files are refused with a pointer to safetensors.
"""

from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

import numpy as np

from prompt_tuning import filesystem
from prompt_tuning.errors import CheckpointError
from prompt_tuning.model.config import T5Config

PyTree = Any
CONFIG_FILE = "config.json"
SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def is_hf_checkpoint(path: str) -> bool:
    return filesystem.isdir(path) and filesystem.exists(filesystem.join(path, CONFIG_FILE)) and (
        filesystem.exists(filesystem.join(path, SINGLE_FILE))
        or filesystem.exists(filesystem.join(path, INDEX_FILE)))


def config_from_hf(hf_config: Mapping[str, Any]) -> T5Config:
    """Our `T5Config` from a Hugging Face T5 `config.json` dict."""
    proj = hf_config.get("feed_forward_proj", "relu")
    if proj not in ("gated-gelu", "gated-gelu_new"):
        raise CheckpointError(
            f"Hugging Face config has feed_forward_proj={proj!r}; only T5 1.1-style 'gated-gelu' "
            "models (e.g. google/t5-v1_1-*, google/t5-*-lm-adapt) are supported.")
    return T5Config(
        vocab_size=int(hf_config["vocab_size"]),
        emb_dim=int(hf_config["d_model"]),
        num_heads=int(hf_config["num_heads"]),
        num_encoder_layers=int(hf_config["num_layers"]),
        num_decoder_layers=int(hf_config.get("num_decoder_layers") or hf_config["num_layers"]),
        head_dim=int(hf_config["d_kv"]),
        mlp_dim=int(hf_config["d_ff"]),
        relpos_num_buckets=int(hf_config.get("relative_attention_num_buckets", 32)),
        relpos_max_distance=int(hf_config.get("relative_attention_max_distance", 128)),
        layer_norm_epsilon=float(hf_config.get("layer_norm_epsilon", 1e-6)),
    )


def config_to_hf(config: T5Config) -> dict[str, Any]:
    """A Hugging Face `config.json` dict for `config` (T5 1.1: gated-gelu, untied head)."""
    return {
        "architectures": ["T5ForConditionalGeneration"], "model_type": "t5",
        "vocab_size": config.vocab_size, "d_model": config.emb_dim, "d_kv": config.head_dim,
        "d_ff": config.mlp_dim, "num_layers": config.num_encoder_layers,
        "num_decoder_layers": config.num_decoder_layers, "num_heads": config.num_heads,
        "relative_attention_num_buckets": config.relpos_num_buckets,
        "relative_attention_max_distance": config.relpos_max_distance,
        "dropout_rate": config.dropout_rate, "layer_norm_epsilon": config.layer_norm_epsilon,
        "feed_forward_proj": "gated-gelu", "tie_word_embeddings": False,
        "is_encoder_decoder": True, "pad_token_id": 0, "eos_token_id": 1,
        "decoder_start_token_id": 0,
    }


def _attention_names(prefix: str, hf_prefix: str) -> Iterator[tuple[str, str, bool]]:
    for ours, theirs in (("query", "q"), ("key", "k"), ("value", "v"), ("out", "o")):
        yield f"{prefix}/{ours}/kernel", f"{hf_prefix}.{theirs}.weight", True


def _mlp_names(prefix: str, hf_prefix: str) -> Iterator[tuple[str, str, bool]]:
    for name in ("wi_0", "wi_1", "wo"):
        yield f"{prefix}/{name}/kernel", f"{hf_prefix}.{name}.weight", True


def name_map(config: T5Config) -> list[tuple[str, str, bool]]:
    """(our '/'-joined path, Hugging Face key, transpose?) for every parameter.

    torch `Linear.weight` is `[out, in]`; our kernels are `[in, out]`, hence the transposes.
    The relative position table is `[buckets, heads]` in HF and `[heads, buckets]` here.
    """
    names = [("token_embedder/embedding", "shared.weight", False),
             ("decoder/logits_dense/kernel", "lm_head.weight", True),
             ("encoder/encoder_norm/scale", "encoder.final_layer_norm.weight", False),
             ("decoder/decoder_norm/scale", "decoder.final_layer_norm.weight", False)]
    for stack in ("encoder", "decoder"):
        names.append((f"{stack}/relpos_bias/rel_embedding",
                      f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight", True))
    for i in range(config.num_encoder_layers):
        ours, hf = f"encoder/layers_{i}", f"encoder.block.{i}.layer"
        names.append((f"{ours}/pre_attention_layer_norm/scale", f"{hf}.0.layer_norm.weight", False))
        names += _attention_names(f"{ours}/attention", f"{hf}.0.SelfAttention")
        names.append((f"{ours}/pre_mlp_layer_norm/scale", f"{hf}.1.layer_norm.weight", False))
        names += _mlp_names(f"{ours}/mlp", f"{hf}.1.DenseReluDense")
    for i in range(config.num_decoder_layers):
        ours, hf = f"decoder/layers_{i}", f"decoder.block.{i}.layer"
        names.append((f"{ours}/pre_self_attention_layer_norm/scale", f"{hf}.0.layer_norm.weight",
                      False))
        names += _attention_names(f"{ours}/self_attention", f"{hf}.0.SelfAttention")
        names.append((f"{ours}/pre_cross_attention_layer_norm/scale", f"{hf}.1.layer_norm.weight",
                      False))
        names += _attention_names(f"{ours}/encoder_decoder_attention", f"{hf}.1.EncDecAttention")
        names.append((f"{ours}/pre_mlp_layer_norm/scale", f"{hf}.2.layer_norm.weight", False))
        names += _mlp_names(f"{ours}/mlp", f"{hf}.2.DenseReluDense")
    return names


def hf_to_flat(tensors: Mapping[str, np.ndarray], config: T5Config) -> dict[str, np.ndarray]:
    """HF state dict (numpy) -> {our '/'-joined path: array}. Raises on missing keys."""
    missing = [hf for _, hf, _ in name_map(config) if hf not in tensors]
    if "lm_head.weight" in missing:
        raise CheckpointError(
            "Hugging Face checkpoint has no 'lm_head.weight': it ties the output layer to the "
            "input embedding (T5 1.0 style); T5 1.1 checkpoints have an untied head.")
    if missing:
        raise CheckpointError(f"Hugging Face checkpoint is missing {len(missing)} tensors, "
                              f"e.g. {missing[:3]}; is it a T5 1.1 model of this size?")
    return {ours: (np.asarray(tensors[hf]).T if transpose else np.asarray(tensors[hf]))
            for ours, hf, transpose in name_map(config)}


def flat_to_hf(flat: Mapping[str, np.ndarray], config: T5Config) -> dict[str, np.ndarray]:
    """{our path: array} -> HF state dict (numpy, contiguous), the inverse of `hf_to_flat`."""
    out = {}
    for ours, hf, transpose in name_map(config):
        value = np.asarray(flat[ours])
        out[hf] = np.ascontiguousarray(value.T if transpose else value)
    # HF also stores the (tied) per-stack copies of the embedding.
    out["encoder.embed_tokens.weight"] = out["shared.weight"]
    out["decoder.embed_tokens.weight"] = out["shared.weight"]
    return out


def read_hf_config(path: str) -> T5Config:
    config_path = filesystem.join(path, CONFIG_FILE)
    try:
        return config_from_hf(json.loads(filesystem.read_text(config_path)))
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"Cannot read Hugging Face config {config_path}: {e}") from e


def _safetensors_files(path: str) -> list[str]:
    index_path = filesystem.join(path, INDEX_FILE)
    if filesystem.exists(index_path):
        try:
            weight_map = json.loads(filesystem.read_text(index_path))["weight_map"]
        except (OSError, json.JSONDecodeError, KeyError) as e:
            raise CheckpointError(f"Cannot read safetensors index {index_path}: {e}") from e
        return [filesystem.join(path, name) for name in sorted(set(weight_map.values()))]
    return [filesystem.join(path, SINGLE_FILE)]


def read_hf_tensors(path: str) -> dict[str, np.ndarray]:
    """Every tensor of a (possibly sharded) safetensors checkpoint, in its stored dtype."""
    from safetensors import SafetensorError
    from safetensors.numpy import load, load_file

    tensors: dict[str, np.ndarray] = {}
    for file in _safetensors_files(path):
        if not filesystem.exists(file):
            raise CheckpointError(f"Safetensors shard {file} is listed but missing.")
        try:
            # A local file is mapped; an object is read whole (one shard at a time).
            tensors.update(load(filesystem.read_bytes(file)) if filesystem.is_remote(file)
                           else load_file(file))
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"Cannot read {file} (truncated or not safetensors?): {e}") from e
    return tensors


def load_hf_checkpoint(path: str) -> tuple[T5Config, dict[str, np.ndarray]]:
    """(config, {our path: array}) from a Hugging Face T5 directory."""
    if filesystem.exists(filesystem.join(path, "pytorch_model.bin")) and not is_hf_checkpoint(path):
        raise CheckpointError(f"{path} holds only pytorch_model.bin; we never unpickle files. "
                              "Convert it to safetensors (model.save_pretrained(...)) first.")
    config = read_hf_config(path)
    return config, hf_to_flat(read_hf_tensors(path), config)


def save_hf_checkpoint(flat: Mapping[str, np.ndarray], config: T5Config, path: str,
                       dtype: np.dtype = np.dtype(np.float32)) -> None:
    """Writes `config.json` + `model.safetensors` (in `dtype`) into the directory `path`."""
    from safetensors.numpy import save

    filesystem.makedirs(path)
    tensors = {k: np.asarray(v).astype(dtype) for k, v in flat_to_hf(flat, config).items()}
    # safetensors refuses shared buffers; the tied copies are separate arrays here.
    tensors = {k: np.array(v, copy=True) for k, v in tensors.items()}
    filesystem.write_bytes(filesystem.join(path, SINGLE_FILE),
                           save(tensors, metadata={"format": "pt"}))
    filesystem.write_bytes(filesystem.join(path, CONFIG_FILE),
                           json.dumps(config_to_hf(config), indent=2).encode())
