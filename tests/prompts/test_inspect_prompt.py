"""`python -m prompt_tuning.inspect_prompt`: a prompt's nearest vocabulary tokens, with real parts.

The prompts are built from the frozen model's own embedding rows (scaled), so the nearest token
of such a row must be that token, with cosine 1 and a known norm. The embedding oracle is the
package's whole-model loader; the command reads only the table. Most runs are in-process
(tests/launch/runner.py); one is the real command in a subprocess.
"""

from __future__ import annotations

import json
import os
import re

import jax.numpy as jnp
import numpy as np
import pytest
from safetensors.numpy import save_file

from prompt_tuning import checkpoints, paths
from prompt_tuning.checkpoints import huggingface
from prompt_tuning.data import vocab
from prompt_tuning.model import T5Config, abstract_params
from prompt_tuning.prompts import files, inspection
from tests.checkpoints import t5x_writers, tiny
from tests.launch.runner import Result, run_in_process, run_subprocess

MODULE = "prompt_tuning.inspect_prompt"
TINY = "builtin:tiny_t5"
ROWS, WIDTH = 32128, 64  # the tiny model's table: T5's padded vocabulary, d = 64
# A model of the same vocabulary but 8 wide and one layer, for writing every checkpoint format.
SMALL = T5Config(vocab_size=ROWS, emb_dim=8, num_heads=1, num_encoder_layers=1,
                 num_decoder_layers=1, head_dim=4, mlp_dim=8)


@pytest.fixture(scope="module")
def embedding() -> np.ndarray:
    loaded = checkpoints.load_checkpoint(TINY)
    return np.asarray(loaded.params["token_embedder"]["embedding"], np.float32)


@pytest.fixture(scope="module")
def vocabulary():
    return vocab.get_vocabulary()


def _ids(vocabulary, *words: str) -> list[int]:
    ids = [vocabulary.encode(word) for word in words]
    assert all(len(i) == 1 for i in ids), ids  # each word is one piece
    return [i[0] for i in ids]


def _known_rows(embedding: np.ndarray, vocabulary) -> tuple[np.ndarray, list[int], list[float]]:
    """(prompt, the row each position copies (None: a zero row), each row's scale)."""
    positive, good = _ids(vocabulary, "positive", "good")
    extra_3 = vocabulary.vocab_size - 1 - 3  # seqio's <extra_id_3>
    ids = [positive, good, extra_3, ROWS - 1, None]
    scales = [3.0, 0.5, 1.0, 2.0, 0.0]
    prompt = np.stack([scale * embedding[i] if i is not None else np.zeros(WIDTH, np.float32)
                       for i, scale in zip(ids, scales)]).astype(np.float32)
    return prompt, ids, scales


def _save(tmp_path, prompt: np.ndarray, name: str = "prompt.npy") -> str:
    path = str(tmp_path / name)
    np.save(path, prompt)
    return path


def _json(*args: str) -> dict:
    result = run_in_process(MODULE, *args, "--json")
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    return json.loads(result.stdout)


def _cosines_by_hand(prompt: np.ndarray, embedding: np.ndarray) -> np.ndarray:
    p, e = prompt.astype(np.float64), embedding.astype(np.float64)
    return (p @ e.T) / np.linalg.norm(p, axis=1)[:, None] / np.linalg.norm(e, axis=1)[None, :]


def test_rows_of_the_embedding_find_their_own_token(tmp_path, embedding, vocabulary):
    prompt, ids, scales = _known_rows(embedding, vocabulary)
    path = _save(tmp_path, prompt)
    data = _json(f"--prompt={path}", f"--checkpoint={TINY}", "--top_k=3")
    assert set(data) == {"prompt", "checkpoint", "shape", "positions"}
    assert (data["prompt"], data["checkpoint"], data["shape"]) == (path, TINY, [5, WIDTH])
    assert [p["index"] for p in data["positions"]] == list(range(5))
    for position, token, scale in zip(data["positions"], ids, scales):
        assert set(position) == {"index", "norm", "nearest"}
        assert len(position["nearest"]) == 3
        assert all(set(n) == {"id", "piece", "cosine"} for n in position["nearest"])
        expected_norm = 0.0 if token is None else scale * np.linalg.norm(embedding[token])
        assert position["norm"] == pytest.approx(expected_norm, rel=1e-5)
        if token is not None:
            first = position["nearest"][0]
            assert first["id"] == token
            assert first["cosine"] == pytest.approx(1.0, abs=1e-5)
    pieces = [p["nearest"][0]["piece"] for p in data["positions"][:4]]
    assert pieces == ["▁positive", "▁good", "<extra_id_3>", f"<unused_{ROWS - 1}>"]
    # A zero row is like nothing: cosine 0 with every token, so the lowest ids, not NaN.
    assert data["positions"][4]["nearest"] == [
        {"id": i, "piece": vocabulary.tokenizer.id_to_piece(i), "cosine": 0.0} for i in range(3)]
    assert [n["piece"] for n in data["positions"][4]["nearest"]] == ["<pad>", "</s>", "<unk>"]


def test_top_k_is_sorted_by_cosine_as_numpy_computes_it(tmp_path, embedding, vocabulary):
    prompt = np.random.default_rng(0).normal(size=(6, WIDTH)).astype(np.float32)
    data = _json(f"--prompt={_save(tmp_path, prompt)}", f"--checkpoint={TINY}", "--top_k=7")
    expected = _cosines_by_hand(prompt, embedding)
    for position, row in zip(data["positions"], expected):
        order = np.argsort(-row, kind="stable")[:7]
        got_ids = [n["id"] for n in position["nearest"]]
        got_cosines = [n["cosine"] for n in position["nearest"]]
        assert got_ids == order.tolist()
        np.testing.assert_allclose(got_cosines, row[order], atol=1e-5)
        assert got_cosines == sorted(got_cosines, reverse=True)
        assert [n["piece"] for n in position["nearest"]] == [
            vocabulary.tokenizer.id_to_piece(i) for i in got_ids]
        assert position["norm"] == pytest.approx(np.linalg.norm(prompt[position["index"]]),
                                                 rel=1e-5)


def test_ties_go_to_the_lower_id_even_at_the_top_k_boundary():
    embedding = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 1], [0, 0]], np.float32)
    prompt = np.array([[2, 0], [0, 0]], np.float32)
    norms, ids, cosines = inspection.nearest_tokens(prompt, embedding, top_k=2)
    np.testing.assert_allclose(norms, [2, 0])
    assert ids.tolist() == [[0, 2], [0, 1]]  # rows 0 and 2 tie at 1; the zero row ties at 0
    np.testing.assert_allclose(cosines, [[1, 1], [0, 0]])
    _, ids, cosines = inspection.nearest_tokens(prompt, embedding, top_k=4)
    assert ids[0].tolist() == [0, 2, 4, 1]  # then 1/sqrt(2), then the 0s from the lowest id
    np.testing.assert_allclose(cosines[0], [1, 1, 2 ** -0.5, 0], atol=1e-6)


def test_text_output(tmp_path, monkeypatch, embedding, vocabulary):
    prompt, _, _ = _known_rows(embedding, vocabulary)
    monkeypatch.chdir(tmp_path)
    _save(tmp_path, prompt, "p.npy")
    result = run_in_process(MODULE, "--prompt=p.npy", f"--checkpoint={TINY}", "--top_k=2")
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == (f"prompt {tmp_path / 'p.npy'} [5, {WIDTH}], checkpoint {TINY}: "
                        "2 nearest tokens by cosine")
    assert len(lines) == 6
    norm = 3.0 * np.linalg.norm(embedding[_ids(vocabulary, "positive")[0]])
    assert re.fullmatch(rf"  0  norm {norm:5.2f}  ▁positive 1\.00 \| \S+ -?0\.\d\d", lines[1])
    assert lines[3].startswith("  2  norm ") and " <extra_id_3> 1.00 | " in lines[3]
    assert lines[5] == "  4  norm  0.00  <pad> 0.00 | </s> 0.00"


def test_peft_adapter_and_export_give_the_same_answer(tmp_path, embedding, vocabulary):
    prompt, _, _ = _known_rows(embedding, vocabulary)
    npy = _json(f"--prompt={_save(tmp_path, prompt)}", f"--checkpoint={TINY}")
    peft_dir = files.write_peft(prompt, str(tmp_path / "peft"))
    export = files.write_npy(prompt, str(tmp_path / "export" / "prompt.npy"),
                             {key: None for key in files.REQUIRED_METADATA})
    for path in (peft_dir, os.path.dirname(export)):
        data = _json(f"--prompt={path}", f"--checkpoint={TINY}")
        assert data["prompt"] == path
        assert data["positions"] == npy["positions"]


def _table_only_hf_dir(directory, table: np.ndarray) -> str:
    """A Hugging Face directory whose safetensors hold the embedding table and nothing else."""
    os.makedirs(directory)
    save_file({"shared.weight": table}, os.path.join(directory, huggingface.SINGLE_FILE))
    with open(os.path.join(directory, huggingface.CONFIG_FILE), "w") as f:
        json.dump(huggingface.config_to_hf(SMALL), f)
    return str(directory)


def _write(kind: str, directory, params: dict) -> str:
    if kind == "t5x_legacy":
        step_dir = t5x_writers.write_t5x_legacy(str(directory), params, step=10)
        # Another array gone: a whole-model read fails, the table alone is still read.
        os.rename(os.path.join(step_dir, "target.decoder.logits_dense.kernel"),
                  os.path.join(step_dir, "moved"))
        with pytest.raises(checkpoints.CheckpointError):
            checkpoints.load_checkpoint(step_dir)
        return step_dir
    if kind == "t5x_orbax":
        return t5x_writers.write_t5x_orbax(str(directory), params, step=10)
    if kind == "orbax":
        checkpoints.save_checkpoint(tiny.nested(params), SMALL, str(directory))
        return str(directory)
    if kind == "huggingface":
        huggingface.save_hf_checkpoint(params, SMALL, str(directory))
        return str(directory)
    path = _table_only_hf_dir(directory, params["token_embedder/embedding"])
    with pytest.raises(checkpoints.CheckpointError):  # no lm_head, no layers
        checkpoints.load_checkpoint(path)
    return path


@pytest.fixture(scope="module")
def small_params() -> dict[str, np.ndarray]:
    """SMALL's parameters, random; the table stored in bfloat16 as T5X checkpoints do.

    (Shapes from `abstract_params`: initialising a 32128-row model takes seconds on a CPU.)
    """
    rng = np.random.default_rng(0)
    shapes = tiny.flat(abstract_params(SMALL))
    params = {name: rng.normal(size=struct.shape).astype(np.float32)
              for name, struct in shapes.items()}
    params["token_embedder/embedding"] = params["token_embedder/embedding"].astype(jnp.bfloat16)
    return params


@pytest.mark.parametrize("kind", ["t5x_legacy", "t5x_orbax", "orbax", "huggingface",
                                  "huggingface_table_only"])
def test_every_checkpoint_format(tmp_path, kind, small_params):
    params = small_params
    table = params["token_embedder/embedding"].astype(np.float32)
    path = _write(kind, tmp_path / kind, params)
    ids = [1465, 32099, 3]
    prompt = table[ids] * np.array([[2.0], [0.5], [1.0]], np.float32)
    data = _json(f"--prompt={_save(tmp_path, prompt)}", f"--checkpoint={path}", "--top_k=4")
    expected = _cosines_by_hand(prompt, table)
    for position, token, row in zip(data["positions"], ids, expected):
        order = np.argsort(-row, kind="stable")[:4]
        assert [n["id"] for n in position["nearest"]] == [token, *order[1:].tolist()]
        np.testing.assert_allclose([n["cosine"] for n in position["nearest"]], row[order],
                                   atol=1e-5)
    assert [p["nearest"][0]["piece"] for p in data["positions"]] == [
        "▁positive", "<extra_id_0>", "▁"]


# --------------------------------------------------------------------------------------------
# Mistakes: one `error:` line each, the right exit code, nothing on stdout
# --------------------------------------------------------------------------------------------

def _refused(result: Result, code: int, line: str) -> None:
    assert result.stderr == f"error: {line}\n", result.stderr[-3000:]
    assert result.returncode == code
    assert result.stdout == ""


def test_mistakes(tmp_path, embedding, vocabulary):
    prompt = _save(tmp_path, _known_rows(embedding, vocabulary)[0])
    narrow = _save(tmp_path, np.ones((3, 32), np.float32), "narrow.npy")
    stacked = _save(tmp_path, np.ones((2, 3, WIDTH), np.float32), "table.npy")
    text = tmp_path / "notes.txt"
    text.write_text("not a prompt\n")
    few_rows = _table_only_hf_dir(tmp_path / "few_rows", np.ones((128, WIDTH), np.float32))
    missing = str(tmp_path / "missing")
    ok = [f"--prompt={prompt}", f"--checkpoint={TINY}"]
    cases = [
        ([f"--checkpoint={TINY}"], 2, "--prompt is required."),
        ([f"--prompt={prompt}"], 2, "--checkpoint is required."),
        ([*ok, "--top_k=0"], 2, "--top_k must be at least 1, got 0."),
        ([*ok, f"--top_k={ROWS + 1}"], 2,
         f"--top_k {ROWS + 1} is more than the model's {ROWS} embedding rows."),
        ([f"--prompt={missing}.npy", f"--checkpoint={TINY}"], 1,
         f"No prompt file or directory at {missing}.npy."),
        ([f"--prompt={text}", f"--checkpoint={TINY}"], 1,
         f"{text} is not a numpy .npy file (expected a [P, d] array, a PEFT adapter or an export "
         "directory)."),
        ([f"--prompt={stacked}", f"--checkpoint={TINY}"], 1,
         f"{stacked}: expected a prompt of shape (P, d), got (2, 3, {WIDTH})."),
        ([f"--prompt={prompt}", f"--checkpoint={missing}"], 1,
         f"checkpoint path {missing} does not exist."),
        ([f"--prompt={narrow}", f"--checkpoint={TINY}"], 1,
         f"the prompt {narrow} is [3, 32] but the model's embeddings are {WIDTH} wide ({TINY})."),
        ([*ok, f"--vocab={missing}"], 1,
         f"No SentencePiece vocabulary file at {missing!r} (VOCABULARY_PATH, --vocab)."),
        ([f"--prompt={prompt}", f"--checkpoint={few_rows}"], 1,
         "The vocabulary has 32100 ids (with 100 extra ids) but the model has only 128 "
         "embedding rows: vocabulary and model do not match."),
    ]
    for args, code, line in cases:
        _refused(run_in_process(MODULE, *args), code, line)
    result = run_in_process(MODULE, *ok, f"--vocab={text}")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: {str(text)!r} is not a SentencePiece model: ")
    assert result.stderr.count("\n") == 1


def test_the_real_command(tmp_path, embedding, vocabulary):
    path = _save(tmp_path, _known_rows(embedding, vocabulary)[0])
    result = run_subprocess(MODULE, f"--prompt={path}", f"--checkpoint={TINY}", "--top_k=1",
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert len(lines) == 6 and lines[0].startswith(f"prompt {path} [5, {WIDTH}]")
    assert [line.split()[-2] for line in lines[1:]] == [
        "▁positive", "▁good", "<extra_id_3>", f"<unused_{ROWS - 1}>", "<pad>"]


def test_a_smaller_vocabulary_names_its_own_sentinels_and_the_unused_rows(tmp_path, embedding):
    import sentencepiece as spm  # pylint: disable=import-outside-toplevel

    with open(os.path.join(paths.ASSETS_DIR, "builtin", "train.tsv")) as f:
        sentences = [line.split("\t")[1] for line in f.read().splitlines()[1:]]
    model = str(tmp_path / "small")
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_prefix=model,
                                   vocab_size=200, minloglevel=2)
    small = vocab.get_vocabulary(model + ".model")  # 200 pieces + 100 extra ids = 300
    assert small.vocab_size == 300
    ids = [100, 299, 296, 300]
    data = _json(f"--prompt={_save(tmp_path, embedding[ids])}", f"--checkpoint={TINY}",
                 f"--vocab={model}.model", "--top_k=1")
    assert [p["nearest"][0]["id"] for p in data["positions"]] == ids
    assert [p["nearest"][0]["piece"] for p in data["positions"]] == [
        small.tokenizer.id_to_piece(100), "<extra_id_0>", "<extra_id_3>", "<unused_300>"]
