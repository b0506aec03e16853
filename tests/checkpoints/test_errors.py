"""Every way a checkpoint can be wrong gives a one-line CheckpointError, never a traceback."""

import os

import numpy as np
import pytest

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import CheckpointError
from tests.checkpoints import t5x_writers, tiny


def _truncate(path, keep=0.5):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def _one_line(error):
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_path(tmp_path):
    with pytest.raises(CheckpointError, match=r"nowhere does not exist"):
        checkpoints.detect_format(str(tmp_path / "nowhere"))


@pytest.mark.parametrize("content", [None, "notes.txt", "config.json"])
def test_not_a_checkpoint(tmp_path, content):
    if content:
        (tmp_path / content).write_text("{}")
    with pytest.raises(CheckpointError, match=r"is not a checkpoint: expected a T5X checkpoint "
                                              r"dir, an orbax dir with model_config.json, or a "
                                              r"Hugging Face dir with config.json \+ "
                                              r"model.safetensors"):
        checkpoints.load_checkpoint(str(tmp_path))


def test_pickle_only_hugging_face_dir_is_refused(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"not unpickled")
    with pytest.raises(CheckpointError, match=r"only pytorch_model.bin; we never unpickle"):
        checkpoints.load_checkpoint(str(tmp_path))


def test_vocabulary_mismatch_has_its_own_message(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    with pytest.raises(CheckpointError) as error:
        checkpoints.load_checkpoint(step_dir, config=tiny.CONFIG.replace(vocab_size=256))
    assert _one_line(error) == (
        "checkpoint vocabulary size does not match the chosen model: token_embedder/embedding "
        "is (128, 32) in the checkpoint (128 tokens) but (256, 32) for the model (embed 32, 2+2 "
        "layers, 2 heads x 16, mlp 64) with vocab_size=256.")


def test_layer_count_mismatch_lists_missing_parameters(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    with pytest.raises(CheckpointError) as error:
        checkpoints.load_checkpoint(step_dir, config=tiny.CONFIG.replace(num_decoder_layers=3))
    assert _one_line(error).startswith(
        "checkpoint does not match the chosen model size (checkpoint has 2+2 layers, the model "
        "2+3): missing from the checkpoint: decoder/layers_2/")


def test_unexpected_parameters_are_listed(tmp_path):
    params = tiny.random_params()
    params["encoder/layers_0/mlp/wi_0/bias"] = np.zeros(64, np.float32)
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), params, step=1)
    with pytest.raises(CheckpointError,
                       match=r"unexpected in the checkpoint: encoder/layers_0/mlp/wi_0/bias"):
        checkpoints.load_checkpoint(step_dir)


def test_t5_1_0_mlp_is_named(tmp_path):
    params = tiny.random_params()
    params["encoder/layers_0/mlp/wi/kernel"] = params.pop("encoder/layers_0/mlp/wi_0/kernel")
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), params, step=1)
    with pytest.raises(CheckpointError, match=r"T5 1.0 model; only T5 1.1"):
        checkpoints.load_checkpoint(step_dir)


def test_prompt_width_mismatch(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1,
                                            prompt=np.zeros((5, 16), np.float32))
    with pytest.raises(CheckpointError, match=r"prompt is \(5, 16\) but the model's prompts are "
                                              r"\[prompt_length, 32\]"):
        checkpoints.load_checkpoint(step_dir)


def test_truncated_msgpack(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    _truncate(os.path.join(step_dir, "checkpoint"))
    with pytest.raises(CheckpointError, match=r"cannot read T5X checkpoint file .*truncated"):
        checkpoints.load_checkpoint(step_dir)


def test_truncated_zarr_chunk(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    _truncate(os.path.join(step_dir, "target.encoder.layers_1.mlp.wo.kernel", "0.0"))
    with pytest.raises(CheckpointError) as error:
        checkpoints.load_checkpoint(step_dir)
    assert _one_line(error).startswith(
        "cannot read encoder/layers_1/mlp/wo/kernel (truncated or damaged zarr chunk?)")


def test_missing_zarr_chunk(tmp_path):
    # zarr would read a missing chunk as zeros; an interrupted copy must not load silently.
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    os.remove(os.path.join(step_dir, "target.token_embedder.embedding", "1.0"))
    with pytest.raises(CheckpointError, match=r"token_embedder/embedding is missing 1 of 2 chunk "
                                              r"files .*\(e.g. 1.0\): an incomplete copy\?"):
        checkpoints.load_checkpoint(step_dir)


def test_missing_zarr_dir(tmp_path):
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    os.rename(os.path.join(step_dir, "target.token_embedder.embedding"),
              os.path.join(tmp_path, "moved"))
    with pytest.raises(CheckpointError, match=r"cannot open token_embedder/embedding at "):
        checkpoints.load_checkpoint(step_dir)


def test_truncated_safetensors(tmp_path):
    from tests import oracles  # pylint: disable=import-outside-toplevel
    oracles.build_hf_t5(tiny.CONFIG).save_pretrained(str(tmp_path))
    _truncate(str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"truncated or not safetensors"):
        checkpoints.load_checkpoint(str(tmp_path))


@pytest.mark.parametrize("victim", ["_METADATA", "manifest.ocdbt"])
def test_truncated_orbax(tmp_path, victim):
    path = str(tmp_path / "m")
    checkpoints.save_checkpoint(tiny.random_params(), tiny.CONFIG, path)
    _truncate(os.path.join(path, "params", victim), keep=0.3)
    with pytest.raises(CheckpointError) as error:
        checkpoints.load_checkpoint(path)
    assert _one_line(error).startswith(f"cannot read orbax checkpoint {path}/params (truncated")


def test_bad_model_config(tmp_path):
    path = str(tmp_path / "m")
    checkpoints.save_checkpoint(tiny.random_params(), tiny.CONFIG, path)
    (tmp_path / "m" / "model_config.json").write_text('{"emb_dim": 32, "n_layers": 2}')
    with pytest.raises(CheckpointError, match=r"is not a T5Config: unknown fields \['n_layers'\]"):
        checkpoints.load_checkpoint(path)


def test_shardings_tree_must_cover_the_parameters(tmp_path):
    import jax  # pylint: disable=import-outside-toplevel
    step_dir = t5x_writers.write_t5x_legacy(str(tmp_path), tiny.random_params(), step=1)
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    with pytest.raises(ValueError, match=r"shardings has no entry for decoder/"):
        checkpoints.load_checkpoint(step_dir, shardings={"encoder": device})


def test_a_sharding_must_fit_every_parameter(tmp_path):
    import jax  # pylint: disable=import-outside-toplevel
    from jax.sharding import NamedSharding, PartitionSpec  # pylint: disable=import-outside-toplevel
    checkpoints.save_checkpoint(tiny.random_params(), tiny.CONFIG, str(tmp_path / "m"))
    mesh = jax.sharding.Mesh(jax.devices()[:1], ("model",))
    with pytest.raises(ValueError, match=r"shardings\['decoder/decoder_norm/scale'\] = .* does "
                                         r"not fit its shape \(32,\)"):
        checkpoints.load_checkpoint(str(tmp_path / "m"),
                                    shardings=NamedSharding(mesh, PartitionSpec(None, "model")))
