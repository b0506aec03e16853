"""Every path on gs://, against a local Cloud Storage emulator found through STORAGE_EMULATOR_HOST.

A user's whole workflow with nothing on the local disk: convert a checkpoint into the bucket,
train from it into a gs:// MODEL_DIR, SIGKILL the run after its first checkpoint and resume it
(the prompt ends bit-identical to an uninterrupted local run), evaluate, infer, export (.npy and
PEFT) and score, every input and output a gs:// URL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from prompt_tuning import errors
from prompt_tuning.run_dir import object_lock
from tests.launch import runner, tiny_run

pytestmark = pytest.mark.slow


def _gcs_flags(flags: list[str], checkpoint: str) -> list[str]:
    return [f for f in flags if "INITIAL_CHECKPOINT_PATH" not in f] + [
        f"--gin.INITIAL_CHECKPOINT_PATH='{checkpoint}'"]


def _run(gcs, cwd, module: str, *args: str) -> runner.Result:
    env = {**os.environ, **gcs.env, "TF_CPP_MIN_LOG_LEVEL": "3", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    return runner.Result(proc.returncode, proc.stdout, proc.stderr)


def _train_killed_after_first_checkpoint(gcs, cwd, flags: list[str], model_dir: str) -> None:
    env = {**os.environ, **gcs.env, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, "-m", "prompt_tuning.train", *flags], cwd=cwd,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = f"checkpoints/{tiny_run.CHECKPOINT_PERIOD}/commit_success.txt"
    deadline = time.monotonic() + 300
    try:
        while not any(name.endswith(marker) for name in gcs.objects(model_dir)):
            assert proc.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_whole_workflow_on_gcs(gcs, tmp_path, tmp_path_factory):
    bucket = gcs.bucket()
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    checkpoint, model_dir = f"{bucket}/models/tiny", f"{bucket}/runs/topic"

    converted = _run(gcs, cwd, "prompt_tuning.convert_checkpoint", "--input=builtin:tiny_t5",
                     f"--output={checkpoint}")
    assert converted.returncode == 0, converted.stderr
    assert f"{checkpoint.split('/', 3)[-1]}/model_config.json" in gcs.objects(checkpoint)

    # The shared test run's command line, with the model and MODEL_DIR in the bucket.
    shared = tiny_run.shared_run(tmp_path_factory)
    flags = _gcs_flags(tiny_run.shared_run_flags(model_dir, shared.user_gin_dir), checkpoint)
    _train_killed_after_first_checkpoint(gcs, cwd, flags, model_dir)
    resumed = _run(gcs, cwd, "prompt_tuning.train", *flags)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resumed {model_dir} at step" in resumed.stderr
    names = gcs.objects(model_dir)
    assert "run.lock" not in " ".join(names)  # released
    steps = sorted({int(n.split("/")[3]) for n in names if n.split("/")[2] == "checkpoints"})
    period, keep = tiny_run.CHECKPOINT_PERIOD, tiny_run.KEEP
    assert steps == list(range(tiny_run.TRAIN_STEPS, 0, -period))[:keep][::-1]  # keep-N

    # The same run, uninterrupted, on the local disk: the same best prompt, bit for bit.
    local_dir = shared.model_dir
    for run_dir, out in ((model_dir, f"{bucket}/exports/best.npy"),
                         (local_dir, str(tmp_path / "local_best.npy"))):
        exported = _run(gcs, cwd, "prompt_tuning.export_prompt", f"--model_dir={run_dir}",
                        "--step=best", f"--output={out}")
        assert exported.returncode == 0, exported.stderr
    with open(tmp_path / "local_best.npy", "rb") as f:
        local_prompt = f.read()
    assert gcs.read(f"{bucket}/exports/best.npy") == local_prompt
    metadata = json.loads(gcs.read(f"{bucket}/exports/best.json"))
    assert metadata["step"] == json.loads(
        (tmp_path / "local_best.json").read_text())["step"]

    evaluated = _run(gcs, cwd, "prompt_tuning.eval",
                     *_gcs_flags(tiny_run.eval_flags(f"{bucket}/evals/topic"), checkpoint),
                     f"--gin.MODEL_DIR='{model_dir}'")
    assert evaluated.returncode == 0, evaluated.stderr
    results = json.loads(gcs.read(f"{bucket}/evals/topic/eval_results.json"))
    assert results["score"] == pytest.approx(metadata["dev_metric"])

    inferred = _run(gcs, cwd, "prompt_tuning.infer",
                    *_gcs_flags(tiny_run.infer_flags(f"{bucket}/out/infer.jsonl"), checkpoint),
                    f"--gin.PROMPT_FILE='{bucket}/exports/best.npy'")
    assert inferred.returncode == 0, inferred.stderr
    lines = gcs.read(f"{bucket}/out/infer.jsonl").decode().splitlines()
    assert lines and all("prediction" in json.loads(line) for line in lines)

    peft = _run(gcs, cwd, "prompt_tuning.export_prompt", f"--prompt={bucket}/exports/best.npy",
                "--format=peft", f"--output={bucket}/exports/peft")
    assert peft.returncode == 0, peft.stderr
    example = {"inputs": "sentence: the soup was cold", "targets": "food"}
    with open(tmp_path / "in.jsonl", "w") as f:
        f.write(json.dumps(example) + "\n")
    scores = {}
    for prompt in (f"{bucket}/exports/peft", str(tmp_path / "local_best.npy")):
        inputs = str(tmp_path / "in.jsonl")
        output = f"{bucket}/out/{len(scores)}.jsonl"
        scored = _run(gcs, cwd, "prompt_tuning.score", f"--checkpoint={checkpoint}",
                      f"--prompt={prompt}", f"--inputs={inputs}", f"--output={output}")
        assert scored.returncode == 0, scored.stderr
        scores[prompt] = json.loads(gcs.read(output))["log_likelihood"]
    assert len(set(scores.values())) == 1  # the gs:// adapter scores as the local prompt
    assert list(cwd.iterdir()) == []  # nothing was written to a directory named after a URL


@pytest.mark.parametrize("module,args", [
    ("prompt_tuning.score", ["--checkpoint=builtin:tiny_t5", "--inputs=in.jsonl",
                             "--output=s3://bucket/out.jsonl"]),
    ("prompt_tuning.export_prompt", ["--prompt=s3://bucket/p.npy", "--output=p2.npy"]),
    ("prompt_tuning.convert_checkpoint", ["--input=builtin:tiny_t5",
                                          "--output=hdfs://nn/models/tiny"]),
])
def test_unsupported_scheme_is_one_line(gcs, tmp_path, module, args):
    (tmp_path / "in.jsonl").write_text('{"inputs": [1], "targets": [1]}\n')
    result = _run(gcs, tmp_path, module, *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith(
        "is not supported; give a local path or a gs:// URL.")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_missing_gcs_checkpoint_is_named(gcs, tmp_path):
    bucket = gcs.bucket()
    (tmp_path / "in.jsonl").write_text('{"inputs": [1], "targets": [1]}\n')
    result = _run(gcs, tmp_path, "prompt_tuning.score", f"--checkpoint={bucket}/nothing",
                  "--inputs=in.jsonl", "--output=out.jsonl")
    assert result.returncode == 1
    assert f"checkpoint path {bucket}/nothing does not exist" in result.stderr


def test_object_lock_one_writer(gcs):
    """The gs:// run lock: a live owner refuses others; a dead or silent one is taken over."""
    model_dir = gcs.bucket() + "/runs/locked"
    first = object_lock.ObjectLock(model_dir)
    first.acquire()
    second = object_lock.ObjectLock(model_dir)
    with pytest.raises(errors.RunDirError, match="is in use by process"):
        second.check()
    with pytest.raises(errors.RunDirError, match="is in use by process"):
        second.acquire()
    first.release()
    assert not gcs.objects(model_dir)
    second.acquire()
    second.release()

    lock_path = f"{model_dir}/run.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    stale = {"pid": int(dead.stdout), "host": os.uname().nodename, "started": "then",
             "heartbeat": time.time(), "token": "x"}
    silent = {**stale, "pid": 1, "host": "another-host",
              "heartbeat": time.time() - object_lock.LEASE_S - 5}
    live = {**silent, "heartbeat": time.time()}
    for owner, taken in ((stale, True), (silent, True), (live, False)):
        object_lock._create(lock_path, json.dumps(owner).encode())  # pylint: disable=protected-access
        newcomer = object_lock.ObjectLock(model_dir)
        if taken:
            newcomer.acquire()
            assert newcomer.took_over == f"process {owner['pid']} on host {owner['host']}"
            newcomer.release()
        else:
            with pytest.raises(errors.RunDirError, match="another-host"):
                newcomer.acquire()
    assert [n for n in gcs.objects(model_dir) if "takeover" in n] == []


def test_server_registers_prompts_from_gcs(gcs, tmp_path):
    """The serving engine reads a prompt registered by gs:// URL as it reads a local one."""
    from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel
    from prompt_tuning.serving import MultiPromptModel  # pylint: disable=import-outside-toplevel
    from prompt_tuning.serving.programs import Limits  # pylint: disable=import-outside-toplevel

    prompt = np.random.default_rng(0).normal(size=(5, tiny_run.EMBED_DIM)).astype(np.float32)
    remote, local = f"{gcs.bucket()}/prompts/p.npy", str(tmp_path / "p.npy")
    for path in (remote, local):
        files.write_npy(prompt, path, dict.fromkeys(files.REQUIRED_METADATA))
    engine = MultiPromptModel.load("builtin:tiny_t5", limits=Limits(
        max_batch=2, max_input_length=16, max_target_length=8, max_decode_length=8))
    assert engine.register("remote", remote) == engine.register("local", local) == (5, 64)
    request = ("sentence: the soup was cold", "food")
    remote_score, local_score = engine.score([("remote", *request), ("local", *request)])
    assert remote_score == local_score
    with pytest.raises(errors.UserError, match="No prompt file or directory"):
        engine.register("missing", f"{remote}.gone")
    assert sorted(engine.prompts) == ["local", "remote"]
