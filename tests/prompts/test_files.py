"""Prompt files: .npy (+ metadata), export directories, and PEFT adapters checked with real PEFT."""

import hashlib
import json
import os
import resource
import warnings

import numpy as np
import pytest

from prompt_tuning.model import T5Config
from prompt_tuning.prompts import files
from tests import oracles

P, D = 4, 16
CONFIG = T5Config(vocab_size=64, emb_dim=D, num_heads=2, num_encoder_layers=1,
                  num_decoder_layers=1, head_dim=8, mlp_dim=32, relpos_num_buckets=8,
                  relpos_max_distance=16)
METADATA = {"model": "builtin:tiny_t5", "prompt_length": P, "embed_dim": D, "dtype": "float32",
            "init": "from_sampled_vocab", "task": "rte", "step": 1200, "dev_metric": 71.5}


def _prompt(rows=P, cols=D, seed=0):
    return np.random.default_rng(seed).normal(size=(rows, cols)).astype(np.float32)


def _sha256(prompt):
    """The checksum's definition, written out: sha256 of dtype, shape and C-order bytes."""
    return hashlib.sha256(f"{prompt.dtype.str}{list(prompt.shape)}".encode()
                          + prompt.tobytes()).hexdigest()


def _checksum(prompt):
    return {"sha256": _sha256(prompt), "dtype": "float32", "shape": list(prompt.shape)}


def test_npy_round_trip_with_metadata(tmp_path):
    prompt = _prompt()
    path = str(tmp_path / "out" / "rte.npy")
    assert files.write_npy(prompt, path, {**METADATA, "dev_metrics": {"accuracy": 71.5}}) == path
    assert sorted(os.listdir(tmp_path / "out")) == ["rte.json", "rte.npy"]  # No temp files left.
    loaded = files.read_prompt(path, prompt_length=P, embed_dim=D)
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, prompt)
    np.testing.assert_array_equal(np.load(path, allow_pickle=False), prompt)
    with open(tmp_path / "out" / "rte.json") as f:
        assert json.load(f) == {**METADATA, "dev_metrics": {"accuracy": 71.5},
                                "checksum": _checksum(prompt)}


def test_metadata_shape_keys_come_from_the_prompt(tmp_path):
    path = str(tmp_path / "p.npy")
    files.write_npy(_prompt(), path, {**METADATA, "prompt_length": None, "embed_dim": None,
                                      "dtype": None})
    with open(files.metadata_path(path)) as f:
        written = json.load(f)
    assert (written["prompt_length"], written["embed_dim"], written["dtype"]) == (P, D, "float32")


def test_export_directory(tmp_path):
    prompt = _prompt()
    files.write_npy(prompt, str(tmp_path / "export" / "prompt.npy"), METADATA)
    np.testing.assert_array_equal(files.read_prompt(str(tmp_path / "export")), prompt)
    with open(tmp_path / "export" / "prompt.json", "w") as f:
        json.dump({**METADATA, "prompt_length": P + 1}, f)
    with pytest.raises(files.PromptFileError, match="says prompt_length=5"):
        files.read_prompt(str(tmp_path / "export"))


def test_reference_style_suffixless_numpy_file(tmp_path):
    # The reference's training-time export: np.save into a file object, no .npy suffix.
    prompt = _prompt(seed=1)
    path = tmp_path / "checkpoint_1000" / "encoder.prompt.prompt.prompt"
    path.parent.mkdir()
    with open(path, "wb") as f:
        np.save(f, prompt)
    np.testing.assert_array_equal(files.read_prompt(str(path), prompt_length=P), prompt)


def test_float64_and_float16_are_read_as_float32(tmp_path):
    for dtype in (np.float64, np.float16):
        path = tmp_path / f"{np.dtype(dtype).name}.npy"
        np.save(path, _prompt().astype(dtype))
        loaded = files.read_prompt(str(path))
        assert loaded.dtype == np.float32
        np.testing.assert_array_equal(loaded, _prompt().astype(dtype).astype(np.float32))


def test_npy_read_errors(tmp_path):
    np.save(tmp_path / "p.npy", _prompt())
    with pytest.raises(files.PromptFileError, match=r"expected .* shape \(5, d\), got \(4, 16\)"):
        files.read_prompt(str(tmp_path / "p.npy"), prompt_length=5)
    with pytest.raises(files.PromptFileError, match=r"expected .* shape \(P, 8\), got \(4, 16\)"):
        files.read_prompt(str(tmp_path / "p.npy"), embed_dim=8)
    np.save(tmp_path / "int.npy", np.zeros((P, D), np.int32))
    with pytest.raises(files.PromptFileError, match="dtype must be floating, got int32"):
        files.read_prompt(str(tmp_path / "int.npy"))
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(files.PromptFileError, match="pickled Python objects"):
        files.read_prompt(str(tmp_path / "obj.npy"))
    np.save(tmp_path / "empty.npy", np.zeros((0, D), np.float32))
    with pytest.raises(files.PromptFileError, match=r"got \(0, 16\)"):
        files.read_prompt(str(tmp_path / "empty.npy"))
    np.save(tmp_path / "3d.npy", np.zeros((1, P, D), np.float32))
    with pytest.raises(files.PromptFileError, match=r"got \(1, 4, 16\)"):
        files.read_prompt(str(tmp_path / "3d.npy"))
    (tmp_path / "notes.txt").write_text("not a prompt")
    with pytest.raises(files.PromptFileError, match="is not a numpy .npy file"):
        files.read_prompt(str(tmp_path / "notes.txt"))
    with pytest.raises(files.PromptFileError, match="No prompt file or directory"):
        files.read_prompt(str(tmp_path / "missing.npy"))
    with pytest.raises(files.PromptFileError, match="is not a prompt directory"):
        files.read_prompt(str(tmp_path))


def test_write_errors_leave_nothing_behind(tmp_path):
    path = str(tmp_path / "p.npy")
    cases = [
        (_prompt(), {k: v for k, v in METADATA.items() if k != "task"}, r"missing keys \['task'\]"),
        (_prompt(), {**METADATA, "dev_metric": np.float32(0.5)}, "'dev_metric' is not JSON"),
        (_prompt(), {**METADATA, "step": object()}, "'step' is not JSON"),
        (_prompt(), {**METADATA, "prompt_length": 7}, "prompt_length=7 but the prompt has"),
        (np.zeros((0, D), np.float32), METADATA, r"P, d > 0, got shape \(0, 16\)"),
        (np.zeros((P, D), np.int64), METADATA, "dtype must be floating, got int64"),
    ]
    for prompt, metadata, message in cases:
        with pytest.raises(files.PromptFileError, match=message):
            files.write_npy(prompt, path, metadata)
    assert os.listdir(tmp_path) == []
    with pytest.raises(files.PromptFileError, match=r"P, d > 0, got shape \(0, 16\)"):
        files.write_peft(np.zeros((0, D), np.float32), str(tmp_path / "peft"))
    assert os.listdir(tmp_path) == []


def test_write_peft_refuses_non_empty_directory(tmp_path):
    target = tmp_path / "adapter"
    target.mkdir()
    (target / "other.txt").write_text("keep me")
    with pytest.raises(files.PromptFileError, match="not empty; pass overwrite=True"):
        files.write_peft(_prompt(), str(target))
    assert os.listdir(target) == ["other.txt"]
    files.write_peft(_prompt(seed=2), str(target), metadata=METADATA, overwrite=True)
    assert sorted(os.listdir(target)) == sorted([files.PEFT_CONFIG, files.PEFT_WEIGHTS,
                                                 files.EXPORT_METADATA])
    assert sorted(os.listdir(tmp_path)) == ["adapter"]  # No temp or old directories left.
    np.testing.assert_array_equal(files.read_prompt(str(target)), _prompt(seed=2))


def _flip_bytes(path, offset_from_end=40, count=8):
    """Flips `count` bytes inside the array data at the end of a file, as a bad disk would."""
    with open(path, "r+b") as f:
        f.seek(-offset_from_end, os.SEEK_END)
        data = f.read(count)
        f.seek(-offset_from_end, os.SEEK_END)
        f.write(bytes(b ^ 0x5A for b in data))


def test_flipped_bytes_in_what_we_exported_are_refused(tmp_path):
    prompt = _prompt(seed=4)
    npy, directory = str(tmp_path / "rte.npy"), str(tmp_path / "export")
    peft_dir = str(tmp_path / "peft")
    files.write_npy(prompt, npy, METADATA)
    files.write_npy(prompt, os.path.join(directory, files.EXPORT_PROMPT), METADATA)
    files.write_peft(prompt, peft_dir, metadata=METADATA)
    weights = os.path.join(peft_dir, files.PEFT_WEIGHTS)
    for path in (npy, os.path.join(directory, files.EXPORT_PROMPT), weights):
        _flip_bytes(path)
    for path, damaged in ((npy, npy), (directory, directory + "/prompt.npy"),
                          (peft_dir, weights), (weights, weights)):
        with pytest.raises(files.PromptFileError, match=f"{damaged} is damaged: .*checksum"):
            files.read_prompt(path)


def test_files_without_a_checksum_are_read_as_they_are(tmp_path):
    """The reference's .npy prompts, adapters PEFT saved, exports of an earlier release."""
    prompt = _prompt(seed=5)
    np.save(tmp_path / "sst2.npy", prompt)
    _save_safetensors(tmp_path / "adapter_model.safetensors", {files.PEFT_KEY: prompt},
                      {"format": "pt"})
    (tmp_path / "old").mkdir()
    np.save(tmp_path / "old" / "prompt.npy", prompt)
    (tmp_path / "old" / "prompt.json").write_text(json.dumps(METADATA))
    for path in ("sst2.npy", "adapter_model.safetensors", "old"):
        _flip_bytes(tmp_path / (path if path != "old" else "old/prompt.npy"))
        read = files.read_prompt(str(tmp_path / path))
        assert read.shape == (P, D) and not np.array_equal(read, prompt)  # nothing to check


def test_a_full_disk_is_one_line_naming_the_path(tmp_path):
    """A real write past the process's file-size limit (EFBIG, as ENOSPC for a full disk)."""
    prompt = _prompt(rows=64, cols=64)  # 16 KiB: over the limit below
    metadata = {**METADATA, "prompt_length": 64, "embed_dim": 64}
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # Python ignores SIGXFSZ
    try:
        with pytest.raises(files.PromptFileError) as npy:
            files.write_npy(prompt, str(tmp_path / "p.npy"), metadata)
        with pytest.raises(files.PromptFileError) as peft:
            files.write_peft(prompt, str(tmp_path / "peft"), metadata=metadata)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(npy.value) == (f"{tmp_path}/p.npy: File too large: the prompt could not be written "
                              "(nothing half-written is left); free some space (or raise the "
                              "quota or file-size limit) and run the same command again.")
    assert str(peft.value).startswith(f"{tmp_path}/peft: File too large: the prompt could not")
    assert os.listdir(tmp_path) == []


def test_an_export_removes_what_a_killed_export_left(tmp_path):
    """A kill during an export leaves atomic_write's temporaries (and, for a directory replaced
    over a previous export, the old one); the next export to the same place removes them."""
    (tmp_path / ".rte.npy.tmp-k1lled01").write_bytes(b"\x93NUMPY half written")
    (tmp_path / ".rte.json.tmp-k1lled02").write_text('{"model": ')
    for leftover in ("peft.tmp-k1lled03", "peft.old-k1lled04"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / files.PEFT_WEIGHTS).write_bytes(b"half")
    (tmp_path / "rte2.npy.tmp-notours").write_text("another file's name: kept")
    prompt = _prompt(seed=6)
    files.write_npy(prompt, str(tmp_path / "rte.npy"), METADATA)
    files.write_peft(prompt, str(tmp_path / "peft"), metadata=METADATA)
    assert sorted(os.listdir(tmp_path)) == ["peft", "rte.json", "rte.npy", "rte2.npy.tmp-notours"]
    np.testing.assert_array_equal(files.read_prompt(str(tmp_path / "peft")), prompt)


def _save_safetensors(path, tensors, metadata=None):
    from safetensors.numpy import save_file
    save_file(tensors, str(path), metadata=metadata)


def test_safetensors_errors(tmp_path):
    _save_safetensors(tmp_path / "other.safetensors", {"weight": _prompt()})
    with pytest.raises(files.PromptFileError, match="no tensor 'prompt_embeddings'.*'weight'"):
        files.read_prompt(str(tmp_path / "other.safetensors"))
    good = tmp_path / "good" / files.PEFT_WEIGHTS
    good.parent.mkdir()
    _save_safetensors(good, {files.PEFT_KEY: _prompt()}, {"format": "pt"})
    data = good.read_bytes()
    truncated = tmp_path / "truncated" / files.PEFT_WEIGHTS
    truncated.parent.mkdir()
    truncated.write_bytes(data[:len(data) - 10])
    with pytest.raises(files.PromptFileError, match="not a readable safetensors file"):
        files.read_prompt(str(truncated.parent))
    _save_safetensors(good, {files.PEFT_KEY: np.zeros((P, D), np.int32)})
    with pytest.raises(files.PromptFileError, match="dtype must be floating, got int32"):
        files.read_prompt(str(good))
    (good.parent / files.PEFT_CONFIG).write_text(json.dumps({"peft_type": "LORA"}))
    with pytest.raises(files.PromptFileError, match="describes a LORA adapter"):
        files.read_prompt(str(good.parent))
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / files.PEFT_PICKLED_WEIGHTS).write_bytes(b"\x80\x04")
    with pytest.raises(files.PromptFileError, match="we never unpickle"):
        files.read_prompt(str(tmp_path / "pickled"))


# -------------------------------------------------------------------------------------------
# Interop with the real PEFT library
# -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def peft():
    import peft as peft_module  # pylint: disable=import-outside-toplevel
    return peft_module


def test_reads_peft_seq2seq_adapter_with_2p_rows(peft, tmp_path):
    model = peft.get_peft_model(oracles.build_hf_t5(CONFIG, seed=0), peft.PromptTuningConfig(
        task_type=peft.TaskType.SEQ_2_SEQ_LM, num_virtual_tokens=P))
    theirs = model.prompt_encoder["default"].embedding.weight.detach().numpy().copy()
    assert theirs.shape == (2 * P, D)  # PEFT's seq2seq default: encoder and decoder copies.
    model.save_pretrained(str(tmp_path / "adapter"))
    np.testing.assert_array_equal(
        files.read_prompt(str(tmp_path / "adapter"), prompt_length=P, embed_dim=D), theirs[:P])
    # The config alone tells P.
    np.testing.assert_array_equal(files.read_prompt(str(tmp_path / "adapter")), theirs[:P])
    # The weights file alone: P comes from the caller.
    lone = tmp_path / "lone"
    lone.mkdir()
    os.replace(tmp_path / "adapter" / files.PEFT_WEIGHTS, lone / "prompt.safetensors")
    np.testing.assert_array_equal(
        files.read_prompt(str(lone / "prompt.safetensors"), prompt_length=P), theirs[:P])


def test_peft_loads_our_adapter_exactly(peft, tmp_path):
    prompt = _prompt(seed=3)
    directory = str(tmp_path / "ours")
    files.write_peft(prompt, directory, base_model_name_or_path="google/t5-v1_1-small",
                     metadata=METADATA)
    with open(os.path.join(directory, files.PEFT_CONFIG)) as f:
        config = json.load(f)
    fields = set(peft.PromptTuningConfig.__dataclass_fields__)
    assert set(config) <= fields, set(config) - fields
    base = oracles.build_hf_t5(CONFIG, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = peft.PeftModel.from_pretrained(base, directory)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "nexpected" in m or "unknown" in m.lower()], messages
    assert loaded.peft_config["default"].num_transformer_submodules == 1
    assert loaded.peft_config["default"].base_model_name_or_path == "google/t5-v1_1-small"
    weight = loaded.prompt_encoder["default"].embedding.weight.detach().numpy()
    assert weight.dtype == np.float32
    np.testing.assert_array_equal(weight, prompt)
    from safetensors import safe_open
    with safe_open(os.path.join(directory, files.PEFT_WEIGHTS), framework="np") as f:
        assert f.metadata() == {"format": "pt", "prompt_embeddings.sha256": _sha256(prompt)}
        assert list(f.keys()) == [files.PEFT_KEY]
