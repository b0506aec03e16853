"""`score --prompt` against Hugging Face PEFT's `PeftModelForSeq2SeqLM` (and plain HF T5 without).

A random tiny T5 1.1 is saved as a Hugging Face directory; PEFT prompt-tuning adapters with known
prompt values are saved with PEFT's own `save_pretrained`. PEFT scores a padded batch (prompt
prepended to the encoder inputs, attention mask extended by ones), and our command scores the same
examples from the saved files, in batches that split the file unevenly.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import peft
import torch

from tests import oracles
from tests.checkpoints import tiny
from tests.launch import runner


PROMPT_LENGTH = 4
TOLERANCE = 1e-3
# Different input and target lengths, so both the encoder and the decoder see padding.
EXAMPLES = [([5, 6, 7, 8, 9, 10, 1], [11, 12, 1]),
            ([20, 1], [21, 22, 23, 24, 25, 1]),
            ([30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 1], [41, 1]),
            ([50, 51, 52, 1], [53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 1]),
            ([70, 71, 72, 73, 74, 1], [127, 2, 1])]


def _write_inputs(path: str) -> str:
    with open(path, "w") as f:
        for inputs, targets in EXAMPLES:
            f.write(json.dumps({"inputs": inputs, "targets": targets}) + "\n")
    return path


def _read_outputs(path: str) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def _padded(rows: list[list[int]]) -> "torch.Tensor":
    length = max(len(r) for r in rows)
    return torch.tensor([r + [0] * (length - len(r)) for r in rows])


def _hf_token_log_probs(model) -> list[np.ndarray]:
    """Per-example target log-probs from one padded batch; `model` is HF T5 or a PEFT wrapper."""
    inputs = _padded([e[0] for e in EXAMPLES])
    targets = _padded([e[1] for e in EXAMPLES])
    with torch.no_grad():
        # labels -> decoder inputs by HF's shift-right (start id 0); -100 marks target padding.
        logits = model(input_ids=inputs, attention_mask=(inputs > 0).long(),
                       labels=targets.masked_fill(targets == 0, -100)).logits
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, targets[..., None])[..., 0].numpy()
    return [picked[i, :len(e[1])] for i, e in enumerate(EXAMPLES)]


def _peft_model(base, prompt_table: np.ndarray, submodules: int | None):
    """PEFT's prompt-tuning wrapper of a copy of `base`, its prompt set to `prompt_table`."""
    config = peft.PromptTuningConfig(task_type=peft.TaskType.SEQ_2_SEQ_LM,
                                     num_virtual_tokens=PROMPT_LENGTH,
                                     num_transformer_submodules=submodules)
    model = peft.get_peft_model(copy.deepcopy(base), config)
    embedding = model.prompt_encoder["default"].embedding
    assert tuple(embedding.weight.shape) == prompt_table.shape
    with torch.no_grad():
        embedding.weight.copy_(torch.from_numpy(prompt_table))
    return model.eval()


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The HF directory, the inputs file, and a prompt table per PEFT submodule setting."""
    root = tmp_path_factory.mktemp("peft_parity")
    model = oracles.build_hf_t5(tiny.CONFIG, seed=3)
    model.save_pretrained(str(root / "hf"))
    rng = np.random.default_rng(0)
    # PEFT's seq2seq default keeps 2P rows (encoder rows first); the decoder rows are never read,
    # so they get different values that would show if we used them.
    table = rng.normal(0.0, 0.5, (2 * PROMPT_LENGTH, tiny.CONFIG.emb_dim)).astype(np.float32)
    return {"root": root, "hf": str(root / "hf"), "table": table, "model": model,
            "inputs": _write_inputs(str(root / "inputs.jsonl")),
            "plain": _hf_token_log_probs(model)}


def _score(setup, name: str, *flags: str) -> list[dict]:
    output = str(setup["root"] / f"{name}.jsonl")
    result = runner.run_in_process("prompt_tuning.score", f"--checkpoint={setup['hf']}",
                                   f"--inputs={setup['inputs']}", f"--output={output}",
                                   "--batch_size=2", *flags)
    assert result.returncode == 0, result.stderr
    assert f"scored {len(EXAMPLES)} examples" in result.stdout
    return _read_outputs(output)


def _max_difference(ours: list[dict], expected: list[np.ndarray]) -> float:
    """Largest |ours - expected| over log-likelihoods and token log-probs; checks lengths."""
    assert len(ours) == len(expected)
    worst = 0.0
    for record, reference in zip(ours, expected):
        assert len(record["token_log_probs"]) == len(reference)
        worst = max(worst, abs(record["log_likelihood"] - float(reference.sum())),
                    float(np.max(np.abs(np.asarray(record["token_log_probs"]) - reference))))
    return worst


@pytest.mark.parametrize("submodules", [None, 1], ids=["peft_default_2p_rows", "one_submodule"])
def test_peft_adapter_prompt_matches_peft(setup, submodules):
    table = setup["table"] if submodules is None else setup["table"][:PROMPT_LENGTH]
    model = _peft_model(setup["model"], table, submodules)
    adapter = str(setup["root"] / f"adapter_{submodules}")
    model.save_pretrained(adapter)
    expected = _hf_token_log_probs(model)

    ours = _score(setup, f"adapter_{submodules}", f"--prompt={adapter}")

    difference = _max_difference(ours, expected)
    assert difference < TOLERANCE, difference
    # The prompt matters: without it the scores are far off.
    assert _max_difference(ours, setup["plain"]) > 100 * TOLERANCE


def test_npy_prompt_matches_peft(setup):
    model = _peft_model(setup["model"], setup["table"], None)
    expected = _hf_token_log_probs(model)
    npy = str(setup["root"] / "prompt.npy")
    np.save(npy, setup["table"][:PROMPT_LENGTH])

    ours = _score(setup, "npy", f"--prompt={npy}")

    assert _max_difference(ours, expected) < TOLERANCE


def test_without_prompt_matches_hugging_face_t5(setup):
    ours = _score(setup, "plain")

    assert _max_difference(ours, setup["plain"]) < TOLERANCE
