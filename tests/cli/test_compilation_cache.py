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
