"""Every entry point takes paths relative to the working directory, wherever a checkpoint is read
or written (orbax itself insists on absolute paths: ours are resolved once, at the edge)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from tests.launch import tiny_run
from tests.launch.runner import run_in_process


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tiny_run.SharedRun:
    return tiny_run.shared_run(tmp_path_factory)


@pytest.fixture
def workdir(run, tmp_path, monkeypatch):
    """A working directory holding a copy of the shared run as `runs/tiny`, and the tiny T5."""
    shutil.copytree(run.model_dir, tmp_path / "runs" / "tiny")
    shutil.copytree(tiny_run.TINY_T5_DIR, tmp_path / "models" / "tiny_t5")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def ok(module: str, *args: str):
    result = run_in_process(module, *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "error" not in result.stderr
    return result


def _relative_model_flags() -> list[str]:
    return [f if "INITIAL_CHECKPOINT_PATH" not in f
            else "--gin.INITIAL_CHECKPOINT_PATH='models/tiny_t5'" for f in tiny_run.MODEL_FLAGS]


def test_train_with_relative_model_dir_and_checkpoint(workdir):
    flags = (_relative_model_flags()
             + tiny_run.train_flags("new_run", train_steps=5)[len(tiny_run.MODEL_FLAGS):])
    ok("prompt_tuning.train", *flags)
    assert sorted(os.listdir(workdir / "new_run" / "checkpoints")) == ["5"]
    assert sorted(os.listdir(workdir / "new_run" / "best"))
    with open(workdir / "new_run" / "run.json") as f:
        identity = json.load(f)
    assert identity["model"]["initial_checkpoint_path"] == str(workdir / "models" / "tiny_t5")


def test_resume_from_another_directory_with_an_absolute_path(workdir, monkeypatch):
    """The same run, named relatively then absolutely: one identity, the run resumes."""
    ok("prompt_tuning.train", *tiny_run.train_flags("runs/tiny", train_steps=tiny_run.TRAIN_STEPS
                                                    + 1))
    monkeypatch.chdir("/")
    ok("prompt_tuning.train", *tiny_run.train_flags(str(workdir / "runs" / "tiny"),
                                                    train_steps=tiny_run.TRAIN_STEPS + 2))


def test_export_eval_and_infer_with_relative_paths(workdir):
    ok("prompt_tuning.export_prompt", "--model_dir=runs/tiny", "--output=out/p.npy")
    ok("prompt_tuning.export_prompt", "--prompt=out/p.npy", "--format=peft", "--output=out/peft")
    assert np.load(workdir / "out" / "p.npy").shape == (tiny_run.PROMPT_LENGTH, tiny_run.EMBED_DIM)
    ok("prompt_tuning.eval", *tiny_run.eval_flags("evals", "--gin.MODEL_DIR='runs/tiny'"))
    ok("prompt_tuning.eval", *tiny_run.eval_flags("evals_peft", "--gin.PROMPT_FILE='out/peft'"))
    results = [json.loads((workdir / d / "eval_results.json").read_text())
               for d in ("evals", "evals_peft")]
    assert results[0]["metrics"] == results[1]["metrics"]
    assert results[0]["prompt"].startswith(str(workdir / "runs" / "tiny"))
    ok("prompt_tuning.infer", *tiny_run.infer_flags("preds/p.jsonl", "--gin.NUM_EXAMPLES=3",
                                                    "--gin.PROMPT_FILE='out/p.npy'"))
    assert len((workdir / "preds" / "p.jsonl").read_text().splitlines()) == 3


def test_convert_and_score_with_relative_paths(workdir):
    ok("prompt_tuning.convert_checkpoint", "--input=models/tiny_t5", "--output=models/orbax")
    (workdir / "in.jsonl").write_text(json.dumps({"inputs": "topic: a", "targets": "food"}) + "\n")
    ok("prompt_tuning.export_prompt", "--model_dir=runs/tiny", "--output=p.npy")
    for checkpoint in ("models/orbax", "models/tiny_t5"):
        ok("prompt_tuning.score", f"--checkpoint={checkpoint}", "--inputs=in.jsonl",
           f"--output=scores/{os.path.basename(checkpoint)}.jsonl", "--prompt=p.npy")
    scores = [json.loads((workdir / "scores" / f"{name}.jsonl").read_text())
              for name in ("orbax", "tiny_t5")]
    assert scores[0]["log_likelihood"] == pytest.approx(scores[1]["log_likelihood"], abs=1e-5)


def test_builtin_checkpoint_for_convert_and_score(workdir):
    ok("prompt_tuning.convert_checkpoint", "--input=builtin:tiny_t5", "--output=converted")
    (workdir / "in.jsonl").write_text(json.dumps({"inputs": [5, 1], "targets": [6, 1]}) + "\n")
    ok("prompt_tuning.score", "--checkpoint=builtin:tiny_t5", "--inputs=in.jsonl",
       "--output=a.jsonl")
    ok("prompt_tuning.score", "--checkpoint=converted", "--inputs=in.jsonl", "--output=b.jsonl")
    assert (workdir / "a.jsonl").read_text() == (workdir / "b.jsonl").read_text()
