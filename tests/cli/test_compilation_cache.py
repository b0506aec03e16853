"""Every command keeps JAX's persistent compilation cache: a second launch of the same job
compiles nothing (its programs are read from the cache), and the cache can be moved or turned off."""

from __future__ import annotations

import json
import os

from prompt_tuning import checkpoints
from prompt_tuning.cli import compilation_cache
from tests.checkpoints import tiny
from tests.launch import runner


def test_where_the_cache_goes():
    home = os.path.expanduser("~")
    assert compilation_cache.cache_dir({}) == os.path.join(home, ".cache", "prompt_tuning", "xla")
    assert compilation_cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == "/x/prompt_tuning/xla"
    assert compilation_cache.cache_dir({"JAX_COMPILATION_CACHE_DIR": "/j"}) == "/j"
    assert compilation_cache.cache_dir({"PT_COMPILATION_CACHE_DIR": "rel",
                                        "JAX_COMPILATION_CACHE_DIR": "/j"}) == os.path.abspath("rel")
    for off in ("", "off", "0", "none"):
        assert compilation_cache.cache_dir({"PT_COMPILATION_CACHE_DIR": off}) is None


def _files(directory) -> set[str]:
    return {os.path.join(root, name) for root, _, names in os.walk(directory) for name in names}


def test_second_launch_compiles_nothing(tmp_path):
    checkpoint = str(tmp_path / "ckpt")
    checkpoints.save_checkpoint(tiny.nested(tiny.random_params()), tiny.CONFIG, checkpoint)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"inputs": [5, 6, 7, 1], "targets": [8, 9, 1]}) + "\n"
                              for _ in range(3)))
    cache = tmp_path / "cache"
    env = {"PT_COMPILATION_CACHE_DIR": str(cache)}

    def score(output: str) -> list[str]:
        result = runner.run_subprocess("prompt_tuning.score", f"--checkpoint={checkpoint}",
                                       f"--inputs={inputs}", f"--output={output}", env=env)
        assert result.returncode == 0, result.stderr
        return (tmp_path / output).read_text().splitlines()

    first = score(str(tmp_path / "a.jsonl"))
    entries = _files(cache)
    assert entries  # the scoring program (and the small ones around it) were written
    assert score(str(tmp_path / "b.jsonl")) == first
    assert _files(cache) == entries  # every program came from the cache: nothing new written

    xdg = tmp_path / "xdg"
    env = {"PT_COMPILATION_CACHE_DIR": "off", "XDG_CACHE_HOME": str(xdg)}
    assert score(str(tmp_path / "c.jsonl")) == first
    assert not xdg.exists()


def test_a_jax_cache_directory_shared_with_other_jax_programs_keeps_working(tmp_path):
    """`JAX_COMPILATION_CACHE_DIR` is the user's JAX cache: a plain JAX program writes its entries
    there unbounded, and our commands must still add theirs (no eviction forced on it, which JAX
    cannot run over such entries: every write would fail with a warning)."""
    import subprocess
    import sys

    cache = tmp_path / "jax_cache"
    plain_jax = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache),
                 "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0"}
    plain_jax.pop("PT_COMPILATION_CACHE_DIR", None)
    plain_jax.pop("JAX_COMPILATION_CACHE_MAX_SIZE", None)
    program = "import jax.numpy as jnp; (jnp.arange(3) * 7).block_until_ready()"
    subprocess.run([sys.executable, "-c", program], env=plain_jax, check=True,
                   capture_output=True)
    theirs = _files(cache)
    assert theirs

    checkpoint = str(tmp_path / "ckpt")
    checkpoints.save_checkpoint(tiny.nested(tiny.random_params()), tiny.CONFIG, checkpoint)
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(json.dumps({"inputs": [5, 6, 7, 1], "targets": [8, 9, 1]}) + "\n")
    env = {k: v for k, v in plain_jax.items() if k != "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"}
    proc = subprocess.run([sys.executable, "-m", "prompt_tuning.score",
                           f"--checkpoint={checkpoint}", f"--inputs={inputs}",
                           f"--output={tmp_path / 'out.jsonl'}"],
                          cwd=runner.REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "compilation cache" not in proc.stderr, proc.stderr
    assert _files(cache) > theirs  # the scoring programs were added beside the other program's
