r"""What a prompt "says": each position's nearest vocabulary tokens (the paper's section 7).

A trained prompt position is a point in the frozen model's input embedding space; the tokens
whose embeddings point the same way (highest cosine similarity) are the closest reading of it
in words. Lester et al. find class labels ("positive", "entailment") among the nearest tokens of
prompts initialised from them, and semantic clusters elsewhere.

    norms, ids, cosines = nearest_tokens(prompt, embedding, top_k=5)   # [P], [P, k], [P, k]
    data = report("p.npy", "builtin:tiny_t5", prompt.shape, norms, ids, cosines, piece)
    print(*text_lines(data), sep="\n")

Numpy only and pure: reading the prompt, the embedding table and the vocabulary is the caller's.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np


def nearest_tokens(prompt: np.ndarray, embedding: np.ndarray, top_k: int
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each prompt position's L2 norm and its `top_k` nearest embedding rows by cosine.

    Args:
      prompt: [P, d].
      embedding: [V, d], the frozen model's input embedding table.
      top_k: how many tokens per position, 1 <= top_k <= V.

    Returns:
      (norms [P] float32, ids [P, top_k] int64, cosines [P, top_k] float32). Each row of ids is
      sorted by descending cosine, equal cosines by ascending id. A zero row (of the prompt or
      of the table) has cosine 0 with everything rather than NaN.
    """
    prompt = np.asarray(prompt, np.float32)
    embedding = np.asarray(embedding, np.float32)
    if prompt.ndim != 2 or embedding.ndim != 2 or prompt.shape[1] != embedding.shape[1]:
        raise ValueError(f"expected a prompt [P, d] and an embedding [V, d], got "
                         f"{prompt.shape} and {embedding.shape}.")
    vocab = embedding.shape[0]
    if not 1 <= top_k <= vocab:
        raise ValueError(f"top_k must be in [1, {vocab}], got {top_k}.")
    # einsum rather than np.linalg.norm, which squares into a temporary copy of the table.
    norms = np.sqrt(np.einsum("pd,pd->p", prompt, prompt))
    row_norms = np.sqrt(np.einsum("vd,vd->v", embedding, embedding))
    units = prompt / np.where(norms > 0, norms, 1.0)[:, None]
    # Dividing the [P, V] products rather than the table avoids a second [V, d] copy (0.5 GB
    # for XXL's 32128 x 4096 in float32).
    cosines = (units @ embedding.T) / np.where(row_norms > 0, row_norms, 1.0)[None, :]
    np.clip(cosines, -1.0, 1.0, out=cosines)  # rounding can step just past +-1
    ids = np.stack([_top_ids(row, top_k) for row in cosines])
    return (norms.astype(np.float32), ids.astype(np.int64),
            np.take_along_axis(cosines, ids, axis=1).astype(np.float32))


def _top_ids(scores: np.ndarray, top_k: int) -> np.ndarray:
    """The ids of the `top_k` largest scores, descending, ties by ascending id.

    argpartition finds the k-th largest score in O(V); every id at least that high is kept (more
    than k when there are ties at the boundary) so the lowest tied ids win, not arbitrary ones.
    """
    kth = scores[np.argpartition(-scores, top_k - 1)[top_k - 1]]
    candidates = np.flatnonzero(scores >= kth)
    order = np.lexsort((candidates, -scores[candidates]))  # the last key sorts first
    return candidates[order[:top_k]]


def token_piece(token_id: int, id_to_piece: Callable[[int], str], vocab_size: int,
                extra_ids: int) -> str:
    """The name of an embedding row: its SentencePiece piece, or what the row stands for.

    Args:
      token_id: a row of the embedding table.
      id_to_piece: the SentencePiece model's id -> piece.
      vocab_size: the vocabulary's ids, extra ids included (T5: 32,000 pieces + 100 = 32,100).
      extra_ids: how many of those are sentinels. seqio numbers them from the top,
        `<extra_id_N>` = vocab_size - 1 - N, and its tokenizer spells them `▁<extra_id_N>`;
        we give the name the text format uses.

    Rows past the vocabulary (T5 pads its table to 32,128 rows, a multiple of 128, for the TPU)
    never receive a token: `<unused_ID>`.
    """
    if token_id >= vocab_size:
        return f"<unused_{token_id}>"
    if token_id >= vocab_size - extra_ids:
        return f"<extra_id_{vocab_size - 1 - token_id}>"
    return id_to_piece(token_id)


def report(prompt_path: str, checkpoint: str, shape: Sequence[int], norms: np.ndarray,
           ids: np.ndarray, cosines: np.ndarray, piece: Callable[[int], str]) -> dict[str, Any]:
    """The JSON-able result of `nearest_tokens`.

    Returns:
      {"prompt": prompt_path, "checkpoint": checkpoint, "shape": [P, d], "positions": [{"index":
      i, "norm": n, "nearest": [{"id": ..., "piece": ..., "cosine": ...}, ... k]}, ... P]}.
    """
    positions = []
    for index, (norm, row_ids, row_cosines) in enumerate(zip(norms, ids, cosines)):
        nearest = [{"id": int(token), "piece": piece(int(token)), "cosine": float(cosine)}
                   for token, cosine in zip(row_ids, row_cosines)]
        positions.append({"index": index, "norm": float(norm), "nearest": nearest})
    return {"prompt": prompt_path, "checkpoint": checkpoint,
            "shape": [int(n) for n in shape], "positions": positions}


def text_lines(data: dict[str, Any]) -> list[str]:
    """A `report` for people: a header, then `  3  norm 12.41  ▁positive 0.83 | ▁good 0.41`."""
    shape = "[" + ", ".join(str(n) for n in data["shape"]) + "]"
    top_k = len(data["positions"][0]["nearest"]) if data["positions"] else 0
    lines = [f"prompt {data['prompt']} {shape}, checkpoint {data['checkpoint']}: "
             f"{top_k} nearest tokens by cosine"]
    width = max(3, len(str(len(data["positions"]) - 1)))
    for position in data["positions"]:
        nearest = " | ".join(f"{n['piece']} {n['cosine']:.2f}" for n in position["nearest"])
        lines.append(f"{position['index']:>{width}}  norm {position['norm']:5.2f}  {nearest}")
    return lines
