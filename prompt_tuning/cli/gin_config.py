"""T5X-style launching: `--gin_file`, `--gin_bindings`, `--gin.NAME=VALUE`, `--gin_search_paths`.

The package's configs (`prompt_tuning/configs/`) are always searchable, under two spellings:
`models/t5_1_1_base_prompt.gin` and, as the reference's scripts write it with the package's
parent on `--gin_search_paths`, `prompt_tuning/configs/models/t5_1_1_base_prompt.gin`.

Differences from T5X, each to remove a trap:
* gin files are parsed in a canonical order by kind (models/, prompts/, runs/, accelerators/,
  then anything else; command-line order within a kind), so a prompt file cannot be silently
  overwritten by a model file given after it; two prompt initializer files are refused.
* a macro that no binding uses (`--gin.TRAIN_STEP=10`) is refused, with a close match.
* T5X's configurable names in bindings (`utils.DatasetConfig.split`,
  `partitioning.PjitPartitioner.num_partitions`, ...) are rewritten to ours, or refused by name
  where nothing here corresponds (`t5x_compat`); MIXTURE_OR_TASK_MODULE is imported, as in T5X.
* every mistake is one `errors.UsageError`, before anything is read or written.
"""

from __future__ import annotations

import difflib
import functools
import logging
import os
import re
import tokenize
from typing import Any, Iterable, Sequence

import gin
from absl import flags

from prompt_tuning import atomic_write, errors, filesystem, shapes_only
from prompt_tuning.cli import t5x_compat

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(PACKAGE_DIR, "configs")
_KIND_ORDER = ("models/", "prompts/", "runs/", "accelerators/")
_MACRO = "gin.macro"


def default_search_paths() -> list[str]:
    """Where gin files are looked for after the user's paths: configs/ and the package's parent
    (so `prompt_tuning/configs/...` resolves too, wherever the package is installed)."""
    return [CONFIG_DIR, os.path.dirname(PACKAGE_DIR)]


def define_flags(values: flags.FlagValues) -> None:
    """The gin flags of train, eval and infer (T5X's names), and `--tfds_data_dir`."""
    flags.DEFINE_multi_string("gin_file", [], "gin files (searched in --gin_search_paths and "
                              "the package's configs/).", flag_values=values)
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. 'TRAIN_STEPS = 100'; "
                              "--gin.NAME=VALUE is the same.", flag_values=values)
    flags.DEFINE_list("gin_search_paths", [], "extra directories to find gin files in.",
                      flag_values=values)
    define_data_flags(values)


def define_data_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_string("tfds_data_dir", None, "where TFDS datasets are prepared.",
                        flag_values=values)
    flags.DEFINE_list("seqio_additional_cache_dirs", [], "directories holding seqio caches of "
                      "tasks (read when USE_CACHED_TASKS is True), as in T5X.", flag_values=values)


def apply_data_flags(values: flags.FlagValues) -> None:
    """Points seqio/TFDS at `--tfds_data_dir` (made absolute; it must exist) and adds
    `--seqio_additional_cache_dirs` to seqio's cache directories. A dry run reads no data, so
    it neither looks at nor uses them (`shapes_only`)."""
    if shapes_only.active():
        return
    if values.tfds_data_dir:
        from prompt_tuning import paths  # pylint: disable=import-outside-toplevel
        directory = paths.resolve(values.tfds_data_dir)
        if not filesystem.isdir(directory):
            raise errors.UsageError(f"--tfds_data_dir {directory} is not a directory.")
        from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel
        seqio.set_tfds_data_dir_override(directory)
    if values.seqio_additional_cache_dirs:
        from prompt_tuning import paths  # pylint: disable=import-outside-toplevel
        from prompt_tuning.data.tensorflow_quiet import seqio  # pylint: disable=import-outside-toplevel
        seqio.set_global_cache_dirs([paths.resolve(d) for d in values.seqio_additional_cache_dirs])


def rewrite_gin_args(argv: Sequence[str]) -> list[str]:
    """`--gin.NAME=VALUE` -> `--gin_bindings=NAME = VALUE` (absl has no such flag)."""
    out = []
    for arg in argv:
        if arg.startswith("--gin."):
            body = arg[len("--gin."):]
            if "=" not in body or not body.split("=", 1)[0]:
                raise errors.UsageError(
                    f"Bad gin override {arg!r}: expected --gin.NAME=VALUE, e.g. "
                    "--gin.TRAIN_STEPS=1000 or --gin.MODEL_DIR=\"'/tmp/run'\".")
            name, value = body.split("=", 1)
            out.append(f"--gin_bindings={name} = {value}")
        else:
            out.append(arg)
    return out


def apply_flags(values: flags.FlagValues, command: str = "train") -> None:
    """Applies `--tfds_data_dir`, then parses the gin files and bindings of the command line
    (`command`: "train", "eval" or "infer", for T5X's names of its configurables)."""
    apply_data_flags(values)
    parse(values.gin_file, values.gin_bindings, values.gin_search_paths, command)


def _kind_rank(path: str) -> int:
    normalized = path.replace(os.sep, "/")
    for rank, kind in enumerate(_KIND_ORDER):
        if normalized.startswith(kind) or f"/{kind}" in normalized:
            return rank
    return len(_KIND_ORDER)


def canonical_order(gin_files: Sequence[str]) -> list[str]:
    """Model files, then prompt files, then run files, then others (stable within a kind)."""
    return sorted(gin_files, key=_kind_rank)


def resolve_gin_file(name: str, search_paths: Sequence[str]) -> str:
    if os.path.isfile(name):
        return os.path.abspath(name)
    for directory in search_paths:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate):
            return candidate
    raise errors.UsageError(f"Unknown gin file {name!r}: not found in {list(search_paths)}.")


_INCLUDE = re.compile(r"""^\s*include\s+['"]([^'"]+)['"]""", re.MULTILINE)


def _prompt_files(gin_files: Sequence[str], search_paths: Sequence[str]) -> dict[str, str]:
    """{real path: how it came in} of every prompts/ file the command line reaches, includes too."""
    found: dict[str, str] = {}
    visited: set[str] = set()

    def visit(name: str, via: str) -> None:
        try:
            path = os.path.realpath(resolve_gin_file(name, search_paths))
        except errors.UsageError:
            return  # gin reports a missing include itself
        if path in visited:
            return
        visited.add(path)
        if _kind_rank(name) == _KIND_ORDER.index("prompts/"):
            found.setdefault(path, name if via == name else f"{name}, included by {via}")
        # Every file given or included is read here first: a byte that is not UTF-8 is
        # named with its file and line (gin would say only which byte).
        for included in _INCLUDE.findall(filesystem.read_text(path, errors.UsageError)):
            visit(included, via)

    for name in gin_files:
        visit(name, name)
    return found


def check_one_prompt_file(gin_files: Sequence[str], search_paths: Sequence[str]) -> None:
    """Refuses two prompt initializers: whichever gin parsed last would win without a word.

    Canonical order settles a prompt file against a model file, but not against a run file that
    itself includes a prompt file (runs/embedded_default.gin does).
    """
    found = _prompt_files(gin_files, search_paths)
    if len(found) > 1:
        raise errors.UsageError(f"More than one prompt initializer file: "
                                f"{'; '.join(found.values())}. Give one prompts/ file (or bind "
                                "PromptConfig.init in your own file).")


def _references(value: Any) -> Iterable[gin.config.ConfigurableReference]:
    if isinstance(value, gin.config.ConfigurableReference):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _references(item)
    elif isinstance(value, (list, tuple, set)):
        for item in value:
            yield from _references(item)


_MACRO_BINDING = re.compile(r"^\s*([A-Za-z_]\w*)\s*=")


@functools.lru_cache(maxsize=None)  # the package's files do not change while it runs
def shipped_macros() -> frozenset[str]:
    """The macros the package's own gin files define. Many are optional and some are aliases
    (CHECKPOINT_PATH of INITIAL_CHECKPOINT_PATH, RANDOM_SEED of SEED): one a user bypasses, by
    binding the configurable or the other name, goes unused, which is fine."""
    found = set()
    for root, _, names in os.walk(CONFIG_DIR):
        for name in names:
            if name.endswith(".gin"):
                with open(os.path.join(root, name)) as f:
                    found.update(m.group(1) for m in map(_MACRO_BINDING.match, f) if m)
    return frozenset(found)


def _macro_values() -> dict[str, Any]:
    config = gin.config._CONFIG  # pylint: disable=protected-access
    return {scope: bindings.get("value") for (scope, selector), bindings in config.items()
            if selector == _MACRO}


def check_macros_used(command_line: Sequence[str] = ()) -> None:
    """Refuses a macro that no binding refers to: a misspelling would otherwise be ignored.

    `command_line`: the macros the user set in --gin bindings; those the shipped files define
    are checked only when set there.
    """
    config = gin.config._CONFIG  # pylint: disable=protected-access
    defined = set(_macro_values()) - {"MIXTURE_OR_TASK_MODULE"}  # used by parse() itself
    used = {ref.scoped_selector.rsplit("/", 1)[0]
            for bindings in config.values() for value in bindings.values()
            for ref in _references(value) if ref.selector == _MACRO}
    shipped = shipped_macros()
    unused = sorted(name for name in defined - used
                    if name not in shipped or name in command_line)
    if unused:
        name = unused[0]
        why = t5x_compat.UNSUPPORTED_MACROS.get(name)
        if why:
            raise errors.UsageError(f"gin macro {name} is T5X's and is not supported: {why}.")
        close = difflib.get_close_matches(name, sorted(used), n=1, cutoff=0.6)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise errors.UsageError(f"gin macro {name} is set but nothing in this command's config "
                                f"uses it.{hint}")


def parse(gin_files: Sequence[str], gin_bindings: Sequence[str],
          search_paths: Sequence[str] = (), command: str = "train") -> None:
    """Parses files (canonical order) and bindings, then checks the result (see module doc).

    Bindings that name T5X's configurables are rewritten to ours for `command`
    (`t5x_compat`); MIXTURE_OR_TASK_MODULE, when set, is imported (T5X's way to register tasks).
    """
    bindings = [b for b in (t5x_compat.translate(b, command) for b in gin_bindings) if b]
    paths = [p for entry in search_paths for p in entry.split(",") if p] + default_search_paths()
    for path in paths:
        gin.add_config_file_search_path(path)
    files = [resolve_gin_file(f, paths) for f in canonical_order(gin_files)]
    check_one_prompt_file(gin_files, paths)
    command_line_macros = [m.group(1) for m in map(_MACRO_BINDING.match, gin_bindings) if m]
    # gin logs "Path not found" at ERROR for every search path it tries before the one that
    # holds an include; a truly missing include still raises, so those lines are only noise.
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.CRITICAL)
    try:
        # Finalizing runs gin's checks: a macro left at %gin.REQUIRED, or a reference to an
        # unknown configurable, fails here, before any work, instead of reaching the code as a
        # placeholder object.
        gin.parse_config_files_and_bindings(files, bindings, finalize_config=True)
    except (ValueError, SyntaxError, NameError, ImportError, KeyError, TypeError,
            tokenize.TokenError) as e:
        required = required_macro_message(_one_line(e))
        if required:
            # `--gin.TRAIN_STEP=10` leaves TRAIN_STEPS unset: name the typo and its closest
            # name rather than the macro it failed to set.
            check_macros_used(command_line_macros)
        raise errors.UsageError(required or f"Bad gin config: {_gin_error_text(e)}") from e
    finally:
        root.setLevel(level)
    t5x_compat.import_task_module(_macro_values().get("MIXTURE_OR_TASK_MODULE"))
    check_macros_used(command_line_macros)


def build(configurable: Any, run_file: str = "runs/prompt_finetune.gin") -> Any:
    """Calls a configurable (e.g. `TrainConfig`) with what gin binds to it.

    A macro left at %gin.REQUIRED surfaces here as gin's own message; it becomes one usage
    line naming the macro. Errors raised by the config's own checks pass through unchanged.
    `run_file` is the shipped file that configures it, named when nothing does.
    """
    # Selectors carry the importing file's module alias (`...training.train_config.TrainConfig`).
    name = configurable.__qualname__
    bound = any(selector == name or selector.endswith("." + name)
                for _, selector in gin.config._CONFIG)  # pylint: disable=protected-access
    try:
        configured = gin.get_configurable(configurable)
    except ValueError:  # no gin file imported it
        configured = None
    if configured is None or not bound:  # no config was given at all
        raise errors.UsageError(f"no config for {configurable.__name__}: give the command's gin "
                                f"files, e.g. --gin_file={run_file} (--help shows an example).")
    try:
        return configured()
    except (ValueError, TypeError) as e:
        if isinstance(e, errors.UserError):
            raise
        required = required_macro_message(_one_line(e))
        if required:
            raise errors.UsageError(required) from e
        raise errors.UsageError(f"Bad gin config: {_one_line(e)}") from e


def _gin_error_text(error: BaseException) -> str:
    """One line for a gin parse error (a tokenizer error is a tuple: say what it means)."""
    if isinstance(error, tokenize.TokenError):
        return f"{error.args[0]} (unbalanced brackets or quotes in a file or --gin. value?)"
    return _one_line(error)


def required_macro_message(message: str) -> str | None:
    """`required macro X is not set ...` when gin reports a macro left at %gin.REQUIRED."""
    required = re.search(r"(\w+)/macro\.value set to `?%gin\.REQUIRED", message)
    if not required:
        return None
    name = required.group(1)
    return f"required macro {name} is not set (use --gin.{name}=...)"


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def save_operative_config(model_dir: str, name: str = "config.gin") -> str:
    return atomic_write.write_text_atomically(filesystem.join(model_dir, name),
                                              gin.operative_config_str())
