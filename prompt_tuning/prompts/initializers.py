"""Soft-prompt initializers: each factory returns a Flax initializer `init(rng, shape, dtype)`.

Every factory is a plain top-level function with keyword arguments, so gin can configure it
(`PromptConfig.init = @initializers.from_sampled_vocab`), and every initializer it returns has
Flax's signature `init(rng, shape, dtype=jnp.float32) -> [prompt_length, embed]`. Initializers
compose: the class-label, text and file initializers fill the rows they cannot fill from another
initializer (`fallback`).

`embedding` arguments are the frozen model's token embedding table `[vocab, embed]`, either an
array (numpy or jax) or a zero-argument callable returning one, so gin can pass a table that is
only read when the prompt is initialised. Token ids and table rows are looked up in Python, so
the initializers are deterministic given `rng` and work under
`jax.jit(init, static_argnums=1)(rng, shape)`.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence, Union

import jax
import jax.numpy as jnp
import numpy as np

from prompt_tuning import notes

Array = Union[jax.Array, np.ndarray]
Initializer = Callable[..., jax.Array]
Embedding = Union[Array, Callable[[], Array]]

DEFAULT_POPULATION_SIZE = 5000


def check_shape(shape: Sequence[int], name: str, embed_dim: Optional[int] = None
                ) -> tuple[int, int]:
    """(prompt_length, embed) from a Flax `shape`, or a ValueError naming `name` and the problem."""
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: shape must be [prompt_length, embed] integers, got {shape!r}.")
    if len(dims) != 2:
        raise ValueError(f"{name}: shape must be 2-D [prompt_length, embed], got {dims}.")
    if dims[0] <= 0 or dims[1] <= 0:
        raise ValueError(f"{name}: prompt_length and embed must be positive, got shape {dims}.")
    if embed_dim is not None and dims[1] != embed_dim:
        raise ValueError(f"{name}: shape {dims} has embed {dims[1]} but the source has "
                         f"embed {embed_dim}.")
    return dims


def _resolve_embedding(embedding: Embedding, name: str) -> Array:
    """The `[vocab, embed]` table, calling `embedding` first if it is a lazy loader."""
    table = embedding() if callable(embedding) else embedding
    if not hasattr(table, "shape") or not hasattr(table, "dtype"):
        table = np.asarray(table)
    if len(table.shape) != 2 or table.shape[0] == 0 or table.shape[1] == 0:
        raise ValueError(f"{name}: the embedding table must be a non-empty [vocab, embed] array, "
                         f"got shape {tuple(table.shape)}.")
    return table


def _lookup(table: Array, ids: Sequence[int], name: str) -> jax.Array:
    """[len(ids), embed] float32 rows of `table`, gathered with static ids."""
    bad = [i for i in ids if not 0 <= i < table.shape[0]]
    if bad:
        raise ValueError(f"{name}: token id {bad[0]} is outside the embedding table's "
                         f"{table.shape[0]} rows (is the vocabulary the model's?).")
    # Indexing with a static numpy index gathers eagerly for a numpy table, so only the rows we
    # use become constants of a jitted init, not the whole table.
    return jnp.asarray(table[np.asarray(ids, np.int32)], jnp.float32)


def _tokenize(vocabulary: Any, text: str) -> list[int]:
    """Sub-word ids of `text` without EOS (seqio vocabularies' `encode` adds none)."""
    return [int(i) for i in vocabulary.encode(text)]


def random_uniform(scale: float = 0.5) -> Initializer:
    """U[-scale, scale], the paper's random initialisation (Lester et al. 2021, scale 0.5).

    The reference code's default, `flax.linen.initializers.uniform(scale=0.5)`, draws from
    U[0, 0.5): every value is non-negative, which is not what the paper describes. We follow
    the paper.

    gin:
      PromptConfig.init = @initializers.random_uniform
      initializers.random_uniform.scale = 0.5

    Returns:
      init(rng, shape [P, embed], dtype) -> [P, embed].
    """
    if not scale > 0:
        raise ValueError(f"random_uniform: scale must be positive, got {scale!r}.")

    def init(rng: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        shape = check_shape(shape, "random_uniform")
        return jax.random.uniform(rng, shape, dtype, minval=-scale, maxval=scale)

    return init


def from_sampled_vocab(embedding: Embedding,
                       population_size: int = DEFAULT_POPULATION_SIZE) -> Initializer:
    """Rows drawn without replacement from the first `population_size` token embeddings.

    T5's SentencePiece ids are roughly ordered by frequency, so the first 5,000 rows are the
    paper's "5,000 most common tokens". If P exceeds the population (a tiny vocabulary, or
    P > population_size), rows are drawn WITH replacement, as the reference does, because
    there are not enough distinct rows; the population is capped at the table's size.

    gin (the embedding is filled in from the frozen model by `PromptConfig.initializer`):
      PromptConfig.init = @initializers.from_sampled_vocab
      initializers.from_sampled_vocab.population_size = 5000

    Args:
      embedding: [vocab, embed] table, or a zero-argument callable returning it.
      population_size: how many leading rows to sample from.

    Returns:
      init(rng, shape [P, embed], dtype) -> [P, embed].
    """
    if isinstance(population_size, bool) or not isinstance(population_size, int) \
            or population_size <= 0:
        raise ValueError(f"from_sampled_vocab: population_size must be a positive integer, "
                         f"got {population_size!r}.")

    def init(rng: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        table = _resolve_embedding(embedding, "from_sampled_vocab")
        length, _ = check_shape(shape, "from_sampled_vocab", table.shape[1])
        population = jnp.asarray(table[:population_size], jnp.float32)
        replace = length > population.shape[0]
        ids = jax.random.choice(rng, population.shape[0], (length,), replace=replace)
        return jnp.take(population, ids, axis=0).astype(dtype)

    return init


def _with_fallback(rows: jax.Array, fallback: Initializer, rng: jax.Array,
                   shape: tuple[int, int], dtype: Any) -> jax.Array:
    """`rows` [n, embed] on top of `fallback`'s [P, embed] (called with the full shape)."""
    if rows.shape[0] == shape[0]:
        return rows.astype(dtype)
    rest = jnp.asarray(fallback(rng, shape, dtype))
    if rest.shape != shape:
        raise ValueError(f"The fallback initializer returned shape {rest.shape}, expected {shape}.")
    return rest.at[:rows.shape[0]].set(rows.astype(rest.dtype)).astype(dtype)


def from_class_labels(embedding: Embedding, vocabulary: Any, class_labels: Sequence[str],
                      fallback: Optional[Initializer] = None) -> Initializer:
    """Row i is the mean embedding of class label i's sub-word pieces; the rest from `fallback`.

    The paper's best initialisation: labels like "entailment" that split into several pieces
    get the average of those pieces' embeddings. Rows past the labels come from `fallback`
    (default: `from_sampled_vocab(embedding)`), which is called with the full shape and whose
    first rows are then replaced.

    gin (embedding and vocabulary are filled in from the frozen model by `PromptConfig.initializer`):
      PromptConfig.init = @initializers.from_class_labels
      initializers.from_class_labels.class_labels = ['entailment', 'not_entailment']

    Args:
      embedding: [vocab, embed] table, or a zero-argument callable returning it.
      vocabulary: a seqio / SentencePiece vocabulary with `encode(str) -> ids` (no EOS).
      class_labels: the label strings, one prompt row each.
      fallback: initializer for the remaining rows.

    Returns:
      init(rng, shape [P, embed], dtype) -> [P, embed].
    """
    if isinstance(class_labels, str) or not class_labels:
        raise ValueError(f"from_class_labels: class_labels must be a non-empty list of strings, "
                         f"got {class_labels!r}.")
    pieces = []
    for label in class_labels:
        ids = _tokenize(vocabulary, label)
        if not ids:
            raise ValueError(f"from_class_labels: class label {label!r} has no tokens.")
        pieces.append(ids)

    def init(rng: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        table = _resolve_embedding(embedding, "from_class_labels")
        shape = check_shape(shape, "from_class_labels", table.shape[1])
        if len(pieces) > shape[0]:
            raise ValueError(f"from_class_labels: {len(pieces)} class labels do not fit in a "
                             f"prompt of length {shape[0]}.")
        # [num_labels, embed]: the mean over each label's pieces.
        rows = jnp.stack([_lookup(table, ids, "from_class_labels").mean(axis=0)
                          for ids in pieces])
        return _with_fallback(rows, fallback or from_sampled_vocab(table), rng, shape, dtype)

    return init


def from_text(embedding: Embedding, vocabulary: Any, text: str,
              fallback: Optional[Initializer] = None) -> Initializer:
    """Row i is the embedding of token i of `text` (truncated to P); the rest from `fallback`.

    gin:
      PromptConfig.init = @initializers.from_text
      initializers.from_text.text = 'Classify whether the premise entails the hypothesis:'

    Args:
      embedding: [vocab, embed] table, or a zero-argument callable returning it.
      vocabulary: a seqio / SentencePiece vocabulary with `encode(str) -> ids` (no EOS).
      text: the text whose token embeddings start the prompt.
      fallback: initializer for the rows past the text (default: from_sampled_vocab).

    Returns:
      init(rng, shape [P, embed], dtype) -> [P, embed].
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"from_text: text must be a non-empty string, got {text!r}.")
    ids = _tokenize(vocabulary, text)
    if not ids:
        raise ValueError(f"from_text: text {text!r} has no tokens.")

    def init(rng: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        table = _resolve_embedding(embedding, "from_text")
        shape = check_shape(shape, "from_text", table.shape[1])
        rows = _lookup(table, ids[:shape[0]], "from_text")  # [min(len(ids), P), embed]
        return _with_fallback(rows, fallback or from_sampled_vocab(table), rng, shape, dtype)

    return init


def from_array(array: Array) -> Initializer:
    """A fixed prompt, e.g. a trained one; `shape` must equal the array's [P, embed].

    From gin, use `from_file` (a path); from Python, `Prompt(length, init=from_array(x))`.

    Args:
      array: [P, embed] floating array.

    Returns:
      init(rng, shape [P, embed], dtype) -> the array cast to dtype (rng unused).
    """
    dtype = np.dtype(getattr(array, "dtype", np.asarray(array).dtype))
    if not (np.issubdtype(dtype, np.floating) or dtype.name == "bfloat16"):
        raise ValueError(f"from_array: the prompt's dtype must be floating, got {dtype}.")
    value = np.asarray(array, np.float32)
    if value.ndim != 2:
        raise ValueError(f"from_array: the prompt must be 2-D [P, embed], got shape {value.shape}.")

    def init(rng: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        del rng  # A fixed value.
        shape = check_shape(shape, "from_array")
        if shape != value.shape:
            raise ValueError(f"from_array: expected a prompt of shape {shape}, got {value.shape}.")
        return jnp.asarray(value).astype(dtype)

    return init


def from_file(path: str, embedding: Embedding,
              fallback: Optional[Initializer] = None) -> Initializer:
    """A saved prompt: `.npy` [P_file, embed], a PEFT adapter (dir or .safetensors), or our export.

    The file is read when the prompt is initialised; its width must be the model's. Its P_file
    may differ from the prompt's P (transfer from another task's prompt, SPoT-style):
    - P == P_file: the file's rows, exactly (bit for bit).
    - P < P_file: the file's first P rows, rows [0, P); the rest are dropped.
    - P > P_file: the file's rows first, then rows [P_file, P) of `fallback` (default:
      `from_sampled_vocab(embedding)`, the paper's sampled vocabulary), which is called with
      the full shape and whose first P_file rows are replaced, as `from_class_labels` does.
    When P differs, one `note:` line on stderr (process 0) says which.

    A PEFT adapter saved with 2P rows (encoder and decoder copies) gives its P encoder rows;
    see `prompt_tuning.prompts.files.read_prompt`.

    gin (the embedding is filled in from the frozen model by `PromptConfig.initializer`):
      PromptConfig.init = @initializers.from_file
      initializers.from_file.path = '/prompts/rte.npy'
      initializers.from_file.fallback = @initializers.random_uniform()   # optional

    Args:
      path: the prompt file or directory.
      embedding: [vocab, embed] table, or a zero-argument callable returning it (only the
        default fallback reads it, and only when P > P_file).
      fallback: initializer for the rows past the file's.

    Returns:
      init(rng, shape [P, embed], dtype) -> [P, embed] (rng only used by the fallback).
    """
    from prompt_tuning import errors, filesystem, paths  # pylint: disable=import-outside-toplevel

    if (not isinstance(path, (str, os.PathLike))
            or not filesystem.exists(paths.resolve(os.fspath(path)))):
        raise errors.PromptFileError(f"from_file: no prompt file at {path!r} (PROMPT_FILE).")
    path = paths.resolve(path)

    def init(rng: jax.Array, shape: Sequence[int], dtype: Any = jnp.float32) -> jax.Array:
        from prompt_tuning.prompts import files  # pylint: disable=import-outside-toplevel

        length, embed = check_shape(shape, "from_file")
        value = files.read_prompt(path, embed_dim=embed)  # [P_file, embed]; any P_file
        rest = fallback or from_sampled_vocab(embedding)
        if value.shape[0] != length:
            notes.note(_resize_note(path, value.shape[0], length, rest))
        rows = jnp.asarray(value[:length])  # [min(P_file, P), embed]
        return _with_fallback(rows, rest, rng, (length, embed), dtype)

    return init


def _resize_note(path: str, file_rows: int, length: int, fallback: Initializer) -> str:
    """What a prompt of `length` rows takes from a file of `file_rows` rows, in one line."""
    if length < file_rows:
        return (f"prompt file {path} has {file_rows} rows; PROMPT_LENGTH={length} keeps the "
                f"first {length}.")
    return (f"prompt file {path} has {file_rows} rows; PROMPT_LENGTH={length} keeps them first "
            f"and adds {length - file_rows} rows from {_name(fallback)}.")


def _name(init: Initializer) -> str:
    """`from_sampled_vocab` for the initializer a factory of that name returned."""
    qualname = getattr(init, "__qualname__", None)
    return qualname.split(".")[0] if isinstance(qualname, str) else repr(init)


