"""`python -m prompt_tuning.score` as a user runs it: inputs, order, formats, and every mistake.

Tiny random T5 1.1 checkpoints are written in each real format (T5X legacy and orbax with the
t5x-style writers, our orbax format, a Hugging Face directory) from the same values, so the
command must give the same scores whichever it reads.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from prompt_tuning import checkpoints
from prompt_tuning.checkpoints import huggingface
from prompt_tuning.data import vocab
from prompt_tuning.model import T5Config
from prompt_tuning.prompts import files
from tests.checkpoints import t5x_writers, tiny
from tests.launch import runner

MODULE = "prompt_tuning.score"
# Token-id examples for tiny.CONFIG (vocab 128); lengths differ so batches carry padding.
EXAMPLES = [([5, 6, 7, 1], [8, 9, 1]),
            ([10, 1], [11, 12, 13, 14, 1]),
            ([15, 16, 17, 18, 19, 20, 21, 22, 23, 1], [24, 1]),
            ([25, 26, 1], [27, 28, 29, 30, 31, 32, 33, 34, 35, 1]),
            ([36, 37, 38, 39, 1], [40, 41, 42, 1]),
            ([43, 1], [44, 45, 1]),
            ([46, 47, 48, 49, 50, 51, 1], [127, 2, 3, 4, 5, 6, 1])]
# A model whose embedding has a row for every id of the T5 vocabulary (32,100 ids; 32,128 rows).
T5_VOCAB_CONFIG = T5Config(vocab_size=32128, emb_dim=16, num_heads=2, num_encoder_layers=1,
                           num_decoder_layers=1, head_dim=8, mlp_dim=32)
TEXTS = [("translate English to German: That is good.", "Das ist gut."),
         ("cola sentence: The book was written by John.", "acceptable"),
         ("summarize: a", "")]


def _write_jsonl(path, records) -> str:
    with open(path, "w") as f:
        for record in records:
            f.write((record if isinstance(record, str) else json.dumps(record)) + "\n")
    return str(path)


def _id_records(examples=EXAMPLES) -> list[dict]:
    return [{"inputs": inputs, "targets": targets} for inputs, targets in examples]


def _read_jsonl(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


def _score(checkpoint, inputs, output, *flags) -> list[dict]:
    result = runner.run_in_process(MODULE, f"--checkpoint={checkpoint}", f"--inputs={inputs}",
                                   f"--output={output}", *flags)
    assert result.returncode == 0, result.stderr
    assert f"-> {output}" in result.stdout
    return _read_jsonl(output)


def _assert_same_scores(ours: list[dict], expected: list[dict]) -> None:
    """Equal up to float32 rounding (batch shapes change the order of the sums)."""
    assert len(ours) == len(expected)
    for got, want in zip(ours, expected):
        assert len(got["token_log_probs"]) == len(want["token_log_probs"])
        np.testing.assert_allclose(got["token_log_probs"], want["token_log_probs"], atol=1e-5)
        assert got["log_likelihood"] == pytest.approx(want["log_likelihood"], abs=1e-5)


def _random_params(config: T5Config, seed: int) -> dict[str, np.ndarray]:
    """tiny.random_params with kernels scaled by 1/sqrt(fan-in), like a trained model.

    Unscaled N(0, 1) kernels give attention logits in the hundreds, where float32 rounding
    differences between batch shapes grow to ~1e-3 and would hide real padding bugs.
    """
    params = tiny.random_params(config, seed=seed)
    return {path: (value / np.sqrt(value.shape[0]) if path.endswith("kernel") else value)
            for path, value in params.items()}


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory):
    """The same random tiny.CONFIG parameters in every format, and a prompt."""
    root = tmp_path_factory.mktemp("formats")
    params, prompt = _random_params(tiny.CONFIG, seed=4), tiny.random_prompt()
    paths = {"t5x_legacy": t5x_writers.write_t5x_legacy(str(root / "t5x_legacy"), params, 1000,
                                                        kvstore="file"),
             "t5x_orbax": t5x_writers.write_t5x_orbax(str(root / "t5x_orbax"), params, 1000),
             "orbax": str(root / "orbax"), "huggingface": str(root / "hf")}
    checkpoints.save_checkpoint(tiny.nested(params), tiny.CONFIG, paths["orbax"])
    huggingface.save_hf_checkpoint(params, tiny.CONFIG, paths["huggingface"])
    # A T5X prompt-tuning checkpoint: the frozen model plus the prompt at T5X's path.
    paths["t5x_with_prompt"] = str(root / "t5x_with_prompt")
    t5x_writers.write_t5x_legacy(paths["t5x_with_prompt"], params, 2000, prompt=prompt)
    np.save(root / "prompt.npy", prompt)
    return {"root": root, "paths": paths, "prompt_npy": str(root / "prompt.npy"),
            "inputs": _write_jsonl(root / "inputs.jsonl", _id_records())}


@pytest.fixture(scope="module")
def hf_scores(tiny_checkpoints):
    """Scores of the Hugging Face copy without a prompt, from a fresh interpreter (as a user)."""
    output = tiny_checkpoints["root"] / "huggingface.jsonl"
    checkpoint = tiny_checkpoints["paths"]["huggingface"]
    result = runner.run_subprocess(MODULE, f"--checkpoint={checkpoint}",
                                   f"--inputs={tiny_checkpoints['inputs']}", f"--output={output}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"scored {len(EXAMPLES)} examples -> {output}"
    return _read_jsonl(output)


# --------------------------------------------------------------------------------------------
# What the command computes
# --------------------------------------------------------------------------------------------

def test_every_checkpoint_format_scores_the_same(tiny_checkpoints, hf_scores):
    paths, root = tiny_checkpoints["paths"], tiny_checkpoints["root"]
    scores = {fmt: _score(paths[fmt], tiny_checkpoints["inputs"], root / f"{fmt}.jsonl")
              for fmt in ("t5x_legacy", "t5x_orbax", "orbax")}
    scores["huggingface"] = hf_scores

    for fmt in ("t5x_legacy", "t5x_orbax", "orbax"):
        _assert_same_scores(scores[fmt], scores["huggingface"])
    assert [len(r["token_log_probs"]) for r in scores["huggingface"]] == [
        len(targets) for _, targets in EXAMPLES]
    for record in scores["huggingface"]:
        assert record["log_likelihood"] == pytest.approx(sum(record["token_log_probs"]), abs=1e-4)
        assert all(p < 0 for p in record["token_log_probs"])


def test_output_is_in_input_order_when_batches_split_the_file_unevenly(tiny_checkpoints,
                                                                       hf_scores):
    checkpoint, root = tiny_checkpoints["paths"]["huggingface"], tiny_checkpoints["root"]
    # 7 examples in batches of 3, 3 and 1, each padded to its own longest example.
    batched = _score(checkpoint, tiny_checkpoints["inputs"], root / "batched.jsonl",
                     "--batch_size=3")
    # The file in reverse, one example per batch: no padding across examples at all.
    reversed_inputs = _write_jsonl(root / "reversed.jsonl", _id_records()[::-1])
    one_by_one = _score(checkpoint, reversed_inputs, root / "reversed.out.jsonl", "--batch_size=1")

    assert [len(r["token_log_probs"]) for r in batched] == [len(t) for _, t in EXAMPLES]
    _assert_same_scores(batched, hf_scores)
    _assert_same_scores(one_by_one[::-1], batched)


def test_prompt_stored_in_a_t5x_checkpoint_is_used_unless_refused(tiny_checkpoints, hf_scores):
    paths, root = tiny_checkpoints["paths"], tiny_checkpoints["root"]
    inputs, plain = tiny_checkpoints["inputs"], hf_scores
    with_npy = _score(paths["huggingface"], inputs, root / "npy.jsonl",
                      f"--prompt={tiny_checkpoints['prompt_npy']}")

    stored = runner.run_in_process(MODULE, f"--checkpoint={paths['t5x_with_prompt']}",
                                   f"--inputs={inputs}", f"--output={root / 'stored.jsonl'}")
    refused = _score(paths["t5x_with_prompt"], inputs, root / "refused.jsonl",
                     "--nouse_checkpoint_prompt")

    assert stored.returncode == 0, stored.stderr
    assert "using the prompt stored in the checkpoint, shape [5, 32]" in stored.stdout
    _assert_same_scores(_read_jsonl(root / "stored.jsonl"), with_npy)
    _assert_same_scores(refused, plain)
    assert abs(with_npy[0]["log_likelihood"] - plain[0]["log_likelihood"]) > 1e-2


@pytest.fixture(scope="module")
def t5_vocab_checkpoint(tmp_path_factory):
    root = tmp_path_factory.mktemp("t5_vocab")
    params = _random_params(T5_VOCAB_CONFIG, seed=5)
    huggingface.save_hf_checkpoint(params, T5_VOCAB_CONFIG, str(root / "hf"))
    return {"root": root, "checkpoint": str(root / "hf")}


def test_text_with_vocab_equals_its_token_ids_plus_eos(t5_vocab_checkpoint):
    import sentencepiece

    root = t5_vocab_checkpoint["root"]
    # Tokenized independently of the command, straight with SentencePiece; EOS is id 1.
    pieces = sentencepiece.SentencePieceProcessor(model_file=vocab.DEFAULT_VOCABULARY_PATH)
    ids = [(pieces.encode(i) + [1], pieces.encode(t) + [1]) for i, t in TEXTS]
    text = [{"inputs": i, "targets": t} for i, t in TEXTS]
    text[1]["targets"] = ids[1][1]  # one line mixes text inputs with id targets
    text_path = _write_jsonl(root / "text.jsonl", text)
    ids_path = _write_jsonl(root / "ids.jsonl", _id_records(ids))

    from_text = _score(t5_vocab_checkpoint["checkpoint"], text_path, root / "text.out.jsonl",
                       f"--vocab={vocab.DEFAULT_VOCABULARY_PATH}", "--batch_size=2")
    from_ids = _score(t5_vocab_checkpoint["checkpoint"], ids_path, root / "ids.out.jsonl",
                      "--batch_size=2")
    # Without --vocab, text is tokenized with the T5 vocabulary shipped with the package.
    shipped = _score(t5_vocab_checkpoint["checkpoint"], text_path, root / "shipped.out.jsonl",
                     "--batch_size=2")

    _assert_same_scores(from_text, from_ids)
    _assert_same_scores(shipped, from_ids)
    assert [len(r["token_log_probs"]) for r in from_text] == [len(t) for _, t in ids]
    assert len(from_text[2]["token_log_probs"]) == 1  # empty target text: EOS alone


# --------------------------------------------------------------------------------------------
# Mistakes: one line on stderr, exit code 2 (command line) or 1 (files), nothing written
# --------------------------------------------------------------------------------------------

def _npy(path, value) -> str:
    np.save(path, value)
    return str(path)


def _bad_inputs(directory, lines) -> list[str]:
    return [f"--inputs={_write_jsonl(directory / 'bad.jsonl', lines)}"]


def _bad_bytes(path, lines: list[bytes]) -> list[str]:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return [f"--inputs={path}"]


GOOD = [{"inputs": [5, 1], "targets": [6, 1]}]
# name -> (flags to add, given a scratch directory; words the error must contain)
MISTAKES = {
    "missing_inputs_file": (lambda d: [f"--inputs={d / 'nope.jsonl'}"], "does not exist"),
    "empty_inputs_file": (lambda d: _bad_inputs(d, []), "holds no examples"),
    "malformed_json_line": (lambda d: _bad_inputs(d, GOOD + ['{"inputs": [5, 1], "targets"']),
                            "bad.jsonl:2: not valid JSON"),
    "missing_targets": (lambda d: _bad_inputs(d, [{"inputs": [5, 1]}]),
                        "bad.jsonl:1: expected a JSON object with 'inputs' and 'targets'"),
    "text_with_the_shipped_vocab_on_a_small_model": (
        lambda d: _bad_inputs(d, GOOD + [{"inputs": "hi", "targets": "yo"}]),
        "The vocabulary has 32100 ids (with 100 extra ids) but the model has only 128"),
    "non_integer_ids": (lambda d: _bad_inputs(d, [{"inputs": [5.5, 1], "targets": [6, 1]}]),
                        "non-empty list of integer token ids"),
    "padding_id_in_targets": (lambda d: _bad_inputs(d, [{"inputs": [5, 1], "targets": [6, 0]}]),
                              "targets has token id 0; ids must be >= 1 (0 is padding)"),
    "id_out_of_range": (lambda d: _bad_inputs(d, GOOD * 2 + [{"inputs": [5, 1],
                                                              "targets": [500, 1]}]),
                        "line 3: targets token id 500 is out of range for the model's 128"),
    "invalid_utf8_line": (lambda d: _bad_bytes(d / "bad.jsonl", [b'{"inputs": [5, 1], '
                                                                   b'"targets": [6, 1]}',
                                                                   b'{"inputs": "caf\xe9", '
                                                                   b'"targets": "x"}']),
                          "bad.jsonl:2: not valid UTF-8 (byte 0xe9 at column 16); save the file "
                          "as UTF-8."),
    "prompt_of_wrong_width": (lambda d: [f"--prompt={_npy(d / 'p.npy', np.ones((4, 16)))}"],
                              "does not fit the model: expected [P, 32]"),
    "peft_adapter_of_wrong_width": (
        lambda d: [f"--prompt={files.write_peft(np.ones((4, 16)), str(d / 'adapter'))}"],
        "does not fit the model: expected [P, 32]"),
    "prompt_of_int_dtype": (lambda d: [f"--prompt={_npy(d / 'p.npy', np.ones((4, 32), np.int32))}"],
                            "the prompt's dtype must be floating, got int32"),
    "prompt_not_2d": (lambda d: [f"--prompt={_npy(d / 'p.npy', np.ones((4, 32, 1), np.float32))}"],
                      "expected a prompt of shape (P, d), got (4, 32, 1)"),
    "prompt_not_npy": (lambda d: [f"--prompt={_write_jsonl(d / 'p.npy', ['hello'])}"],
                       "is not a numpy .npy file"),
    "missing_prompt": (lambda d: [f"--prompt={d / 'none.npy'}"], "No prompt file"),
    "not_a_checkpoint": (lambda d: [f"--checkpoint={_write_jsonl(d / 'x.txt', ['hi'])}"],
                         "is not a checkpoint"),
    "vocab_bigger_than_embedding": (lambda d: [f"--vocab={vocab.DEFAULT_VOCABULARY_PATH}"],
                                    "but the model has only 128 embedding rows"),
    "missing_vocab_file": (lambda d: [f"--vocab={d / 'none.model'}"], "No SentencePiece"),
    "unknown_flag": (lambda d: ["--prompt_file=x"], "Unknown command line flag 'prompt_file'"),
    "positional_argument": (lambda d: ["scores.jsonl"], "unexpected argument 'scores.jsonl'"),
    "zero_batch_size": (lambda d: ["--batch_size=0"], "--batch_size must be positive"),
    "output_is_a_directory": (lambda d: [f"--output={d}"], "is a directory"),
    "output_below_a_file": (lambda d: [f"--output={_write_jsonl(d / 'f.txt', ['x'])}/s.jsonl"],
                            "f.txt is a file, not a directory"),
}
# The mistakes of the command line itself (exit code 2); the others are about files (1).
USAGE_MISTAKES = {"unknown_flag", "positional_argument", "zero_batch_size"}


def _run_mistake(tiny_checkpoints, scratch, extra, output) -> runner.Result:
    good_inputs = _write_jsonl(scratch / "good.jsonl", GOOD)
    # Later flags win in absl, so a mistake's own --inputs / --checkpoint replaces the good one.
    return runner.run_in_process(MODULE, f"--checkpoint={tiny_checkpoints['paths']['huggingface']}",
                                 f"--inputs={good_inputs}", f"--output={output}", *extra)


def _assert_one_line_error(result: runner.Result, words: str, code: int = 1) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert words in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(MISTAKES))
def test_mistake_is_one_line_and_writes_nothing(tiny_checkpoints, tmp_path, name):
    make_flags, words = MISTAKES[name]
    scratch, out_dir = tmp_path / "scratch", tmp_path / "out"
    scratch.mkdir()
    out_dir.mkdir()
    extra = make_flags(scratch)
    output = out_dir / "scores.jsonl"

    absent = _run_mistake(tiny_checkpoints, scratch, extra, output)
    output.write_text("earlier results\n")
    present = _run_mistake(tiny_checkpoints, scratch, extra, output)

    code = 2 if name in USAGE_MISTAKES else 1
    _assert_one_line_error(absent, words, code)
    _assert_one_line_error(present, words, code)
    assert output.read_text() == "earlier results\n"
    assert os.listdir(out_dir) == ["scores.jsonl"]  # no temporary file left behind


@pytest.mark.parametrize("how", ["same_path", "relative", "symlink", "hard_link"])
def test_output_that_is_the_inputs_file_is_refused_before_reading(tiny_checkpoints, tmp_path,
                                                                    how, monkeypatch):
    inputs = tmp_path / "in.jsonl"
    inputs.write_bytes(b"\xff not even UTF-8: the file must not be read\n")
    output = {"same_path": inputs, "relative": "in.jsonl", "symlink": tmp_path / "link.jsonl",
              "hard_link": tmp_path / "hard.jsonl"}[how]
    if how == "symlink":
        os.symlink(inputs, output)
    if how == "hard_link":
        os.link(inputs, output)
    monkeypatch.chdir(tmp_path)
    checkpoint = tiny_checkpoints["paths"]["huggingface"]
    result = runner.run_in_process(MODULE, f"--checkpoint={checkpoint}", f"--inputs={inputs}",
                                   f"--output={output}")
    _assert_one_line_error(result, f"is the --inputs file {inputs}: the scores would replace the "
                           "examples; give another --output.", code=2)
    assert inputs.read_bytes() == b"\xff not even UTF-8: the file must not be read\n"


def test_output_in_a_missing_directory_is_created(tiny_checkpoints, tmp_path):
    output = tmp_path / "nodir" / "scores.jsonl"
    result = _run_mistake(tiny_checkpoints, tmp_path, [], output)

    assert result.returncode == 0, result.stderr
    assert len(_read_jsonl(output)) == len(GOOD)


def test_flag_mistake_in_a_fresh_interpreter_is_one_line(tiny_checkpoints, tmp_path):
    output = tmp_path / "scores.jsonl"
    result = runner.run_subprocess(MODULE, f"--checkpoint={tiny_checkpoints['paths']['orbax']}",
                                   f"--inputs={tiny_checkpoints['inputs']}", f"--output={output}",
                                   "--batch_size=two")

    _assert_one_line_error(result, "flag --batch_size=two", code=2)
    assert not output.exists()


def test_help_lists_the_flags():
    result = runner.run_in_process(MODULE, "--help")

    assert result.returncode == 0
    for flag in ("--checkpoint", "--inputs", "--output", "--vocab", "--prompt", "--batch_size"):
        assert flag in result.stdout


def test_scoring_text_in_a_fresh_interpreter_imports_no_tensorflow(t5_vocab_checkpoint):
    """Tokenizing text needs SentencePiece only: TensorFlow's import (seconds, hundreds of MiB)
    is for reading datasets."""
    import subprocess
    import sys

    root = t5_vocab_checkpoint["root"]
    inputs = _write_jsonl(root / "text_notf.jsonl",
                          [{"inputs": i, "targets": t} for i, t in TEXTS])
    output = root / "text_notf.out.jsonl"
    argv = [MODULE, f"--checkpoint={t5_vocab_checkpoint['checkpoint']}", f"--inputs={inputs}",
            f"--output={output}"]
    code = ("import atexit, runpy, sys\n"
            "atexit.register(lambda: print('tensorflow imported:', 'tensorflow' in sys.modules))\n"
            f"sys.argv = {argv!r}\n"
            f"runpy.run_module({MODULE!r}, run_name='__main__')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=runner.REPO, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "tensorflow imported: False" in proc.stdout
    assert len(_read_jsonl(output)) == len(TEXTS)
