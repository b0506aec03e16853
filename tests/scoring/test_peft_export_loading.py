"""The README's way to use an exported prompt in Hugging Face: `convert_checkpoint
--to=huggingface`, `export_prompt --format=peft`, then transformers + PEFT load the adapter
(`PeftModel.from_pretrained(T5ForConditionalGeneration.from_pretrained(HF_DIR), ADAPTER)` and
`AutoPeftModelForSeq2SeqLM.from_pretrained(ADAPTER)`), and score as `score --prompt` does."""

from __future__ import annotations

import json
import os

import numpy as np
import peft
import pytest
import torch
import transformers

from prompt_tuning import paths
from prompt_tuning.prompts import files
from tests.launch import runner
from tests.scoring.test_peft_parity import (TOLERANCE, _hf_token_log_probs,
                                            _max_difference, _read_outputs, _write_inputs)

TINY_T5_DIR = os.path.join(paths.ASSETS_DIR, "tiny_t5")
PROMPT_LENGTH, WIDTH = 5, 64  # the tiny T5's d


def _exported_prompt(tmp_path, model: str | None) -> str:
    """A trained-looking prompt as `export_prompt --format=npy` writes it (metadata naming the
    checkpoint it was trained with), or a bare `.npy` (model None)."""
    prompt = np.random.default_rng(1).normal(0, 0.5, (PROMPT_LENGTH, WIDTH)).astype(np.float32)
    path = str(tmp_path / "prompt.npy")
    if model is None:
        np.save(path, prompt)
    else:
        files.write_npy(prompt, path, {"model": model, "prompt_length": PROMPT_LENGTH,
                                       "embed_dim": WIDTH, "dtype": "float32",
                                       "init": "from_sampled_vocab",
                                       "task": "taskless_builtin_topic", "step": 100,
                                       "dev_metric": None})
    return path


def _export_peft(prompt: str, output: str, *extra: str) -> runner.Result:
    result = runner.run_in_process("prompt_tuning.export_prompt", f"--prompt={prompt}",
                                   "--format=peft", f"--output={output}", *extra)
    assert result.returncode == 0, result.stderr
    return result


def _our_scores(tmp_path, prompt: str) -> list[dict]:
    output = str(tmp_path / "ours.jsonl")
    result = runner.run_in_process("prompt_tuning.score", "--checkpoint=builtin:tiny_t5",
                                   f"--inputs={_write_inputs(str(tmp_path / 'in.jsonl'))}",
                                   f"--output={output}", f"--prompt={prompt}")
    assert result.returncode == 0, result.stderr
    return _read_outputs(output)


def _base_of(adapter: str) -> str | None:
    with open(os.path.join(adapter, "adapter_config.json")) as f:
        return json.load(f)["base_model_name_or_path"]


def test_the_readme_way_with_a_converted_checkpoint(tmp_path):
    hf_dir, adapter = str(tmp_path / "hf"), str(tmp_path / "adapter")
    converted = runner.run_in_process("prompt_tuning.convert_checkpoint", "--input=builtin:tiny_t5",
                                      f"--output={hf_dir}", "--to=huggingface")
    assert converted.returncode == 0, converted.stderr
    prompt = _exported_prompt(tmp_path, model=None)  # a bare .npy: no model recorded
    exported = _export_peft(prompt, adapter, f"--base_model={hf_dir}")
    assert exported.stderr == "" and _base_of(adapter) == hf_dir

    # The tiny T5 is stored in bfloat16, which transformers keeps unless told: we score in
    # float32 (as the README says to load it).
    base = transformers.T5ForConditionalGeneration.from_pretrained(hf_dir, dtype=torch.float32)
    by_hand = peft.PeftModel.from_pretrained(base, adapter).eval()
    automatic = peft.AutoPeftModelForSeq2SeqLM.from_pretrained(adapter,
                                                               dtype=torch.float32).eval()

    ours = _our_scores(tmp_path, prompt)
    for model in (by_hand, automatic):
        assert _max_difference(ours, _hf_token_log_probs(model)) < TOLERANCE
    # The prompt is used: the base model alone scores otherwise.
    assert _max_difference(ours, _hf_token_log_probs(base)) > 100 * TOLERANCE


def test_a_prompt_of_the_builtin_model_names_its_shipped_directory(tmp_path):
    prompt, adapter = _exported_prompt(tmp_path, "builtin:tiny_t5"), str(tmp_path / "adapter")
    _export_peft(prompt, adapter)
    assert _base_of(adapter) == TINY_T5_DIR
    automatic = peft.AutoPeftModelForSeq2SeqLM.from_pretrained(adapter,
                                                               dtype=torch.float32).eval()
    assert _max_difference(_our_scores(tmp_path, prompt), _hf_token_log_probs(automatic)) < (
        TOLERANCE)


@pytest.mark.parametrize("model", [None, "gs://t5-data/t5_1_1_lm100k_base/checkpoint_1100000"])
def test_no_resolvable_base_is_said_in_one_note(tmp_path, model):
    prompt, adapter = _exported_prompt(tmp_path, model), str(tmp_path / "adapter")
    exported = _export_peft(prompt, adapter)
    assert _base_of(adapter) is None
    assert exported.stderr == (
        f"note: the adapter names no base model: {model or 'the checkpoint'} is not a Hugging "
        "Face T5 directory. For AutoPeftModelForSeq2SeqLM, convert it with convert_checkpoint "
        "--to=huggingface and export again with --base_model=THAT_DIR.\n")


def test_a_base_model_that_is_not_a_hugging_face_directory(tmp_path):
    prompt, adapter = _exported_prompt(tmp_path, None), str(tmp_path / "adapter")
    result = runner.run_in_process("prompt_tuning.export_prompt", f"--prompt={prompt}",
                                   "--format=peft", f"--output={adapter}",
                                   f"--base_model={tmp_path}")
    assert (result.returncode, result.stderr) == (2, (
        f"error: --base_model {tmp_path} is not a Hugging Face T5 directory (config.json + "
        "model.safetensors); convert_checkpoint --to=huggingface writes one.\n"))
    assert not os.path.exists(adapter)
