"""`score` with several named prompts: every line scores as with its own prompt alone, in input
order, whatever the batch mixes; and each mistake about prompt names is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.launch import runner
from tests.prompts import random_prompts

MODULE = "prompt_tuning.score"
CHECKPOINT = "builtin:tiny_t5"
LENGTHS = {"short": 3, "mid": 7, "long": 12}
LINES = [("long", "sentence: the soup was cold", "food"),
         ("short", "sentence: a long flight home", "travel"),
         ("mid", "sentence: the band played all night", "music"),
         ("short", "sentence: ok", "positive"),
         ("long", "sentence: rain again on the trip", "travel"),
         ("mid", "sentence: the striker scored twice", "sports"),
         ("mid", "sentence: we loved it", "positive")]


@pytest.fixture(scope="module")
def prompts(tmp_path_factory) -> dict[str, str]:
    return random_prompts.write(str(tmp_path_factory.mktemp("prompts")), LENGTHS)


def _write(path, lines, with_names=True) -> str:
    with open(path, "w") as f:
        for name, inputs, targets in lines:
            record = {"inputs": inputs, "targets": targets}
            if with_names:
                record["prompt"] = name
            f.write(json.dumps(record) + "\n")
    return str(path)


def _read(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def _score(*args) -> runner.Result:
    return runner.run_in_process(MODULE, f"--checkpoint={CHECKPOINT}", *args)


def test_each_line_scores_as_with_its_prompt_alone(tmp_path, prompts):
    inputs = _write(tmp_path / "in.jsonl", LINES)
    output = tmp_path / "out.jsonl"
    result = _score(f"--inputs={inputs}", f"--output={output}", "--batch_size=4",
                    *[f"--prompt={n}={p}" for n, p in prompts.items()])
    assert result.returncode == 0, result.stderr
    mixed = _read(output)
    assert len(mixed) == len(LINES)
    for name, path in prompts.items():
        mine = [i for i, line in enumerate(LINES) if line[0] == name]
        alone_in = _write(tmp_path / f"{name}.jsonl", [LINES[i] for i in mine], with_names=False)
        alone_out = tmp_path / f"{name}.out.jsonl"
        assert _score(f"--inputs={alone_in}", f"--output={alone_out}", f"--prompt={path}",
                      "--batch_size=1").returncode == 0
        for i, alone in zip(mine, _read(alone_out)):
            np.testing.assert_allclose(mixed[i]["log_likelihood"], alone["log_likelihood"],
                                       atol=2e-5, rtol=0)
            np.testing.assert_allclose(mixed[i]["token_log_probs"], alone["token_log_probs"],
                                       atol=2e-5, rtol=0)
    # The prompts differ in what they make of the same kind of input.
    assert len({round(r["log_likelihood"], 3) for r in mixed}) > 3


def test_one_named_prompt_is_the_default_for_lines_without_a_name(tmp_path, prompts):
    inputs = _write(tmp_path / "in.jsonl", LINES[:2], with_names=False)
    output = tmp_path / "out.jsonl"
    result = _score(f"--inputs={inputs}", f"--output={output}", f"--prompt=mid={prompts['mid']}")
    assert result.returncode == 0, result.stderr
    assert len(_read(output)) == 2


@pytest.mark.parametrize("lines, names, flags, message", [
    (LINES, True, ["short", "mid"], "--inputs line 1: Unknown prompt 'long'; registered: "
                                    "['short', 'mid']."),
    (LINES[:2], False, ["short", "mid"], "--inputs line 1: no 'prompt' field; with several "
                                         "prompts each line names one of ['mid', 'short']."),
    (LINES[:2], True, [], "--inputs line 1: names prompt 'long', but no --prompt=NAME=PATH was "
                          "given."),
])
def test_prompt_name_mistakes_are_one_line(tmp_path, prompts, lines, names, flags, message):
    inputs = _write(tmp_path / "in.jsonl", lines, with_names=names)
    output = tmp_path / "out.jsonl"
    result = _score(f"--inputs={inputs}", f"--output={output}",
                    *[f"--prompt={n}={prompts[n]}" for n in flags])
    assert (result.returncode, result.stderr) == (1, f"error: {message}\n")
    assert not output.exists()


@pytest.mark.parametrize("flags, message", [
    (["--prompt={short}", "--prompt=mid={mid}"],
     "several prompts must be named: --prompt=NAME=PATH for each, and a 'prompt': NAME field "
     "on each input line."),
    (["--prompt=mid={short}", "--prompt=mid={mid}"], "--prompt names 'mid' twice."),
    (["--prompt==/x.npy"], "--prompt==/x.npy: expected NAME=PATH or PATH."),
])
def test_prompt_flag_mistakes_are_usage_errors(tmp_path, prompts, flags, message):
    inputs = _write(tmp_path / "in.jsonl", LINES[:1])
    output = tmp_path / "out.jsonl"
    result = _score(f"--inputs={inputs}", f"--output={output}",
                    *[f.format(**prompts) for f in flags])
    assert (result.returncode, result.stderr) == (2, f"error: {message}\n")


def test_a_named_prompt_of_another_width_is_one_line(tmp_path, prompts):
    narrow = tmp_path / "narrow.npy"
    np.save(narrow, np.zeros((4, 32), np.float32))
    inputs = _write(tmp_path / "in.jsonl", [("narrow", "x", "y")])
    output = tmp_path / "out.jsonl"
    result = _score(f"--inputs={inputs}", f"--output={output}", f"--prompt=narrow={narrow}",
                    f"--prompt=mid={prompts['mid']}")
    assert result.returncode == 1
    assert result.stderr == (f"error: {narrow}: a prompt of shape [4, 32] does not fit the "
                             "model: expected [P, 64] (the model's embedding width).\n")
