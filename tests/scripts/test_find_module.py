"""`python -m prompt_tuning.scripts.find_module`, as the reference's scripts call it."""

import os
import subprocess
import sys

import prompt_tuning

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _find(*args):
    return subprocess.run([sys.executable, "-m", "prompt_tuning.scripts.find_module", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_prints_the_package_directory_whose_parent_holds_the_configs_path():
    result = _find("prompt_tuning")
    assert result.returncode == 0
    directory = result.stdout.strip()
    assert directory == os.path.dirname(os.path.abspath(prompt_tuning.__file__))
    # The scripts append "/.." and name gin files as prompt_tuning/configs/...
    assert os.path.isfile(os.path.join(directory, "..", "prompt_tuning", "configs", "models",
                                       "t5_1_1_base_prompt.gin"))


def test_a_package_we_do_not_need_prints_nothing_and_does_not_stop_the_script():
    result = _find("t5x")
    assert (result.returncode, result.stdout) == (0, "")
    assert result.stderr.strip() == ("note: module t5x is not installed (prompt_tuning does not "
                                     "need it).")


def test_no_argument_is_a_usage_error():
    result = _find()
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: usage:")


def test_help_prints_usage_and_exits_0():
    for flag in ("--help", "-h"):
        result = _find(flag)
        assert (result.returncode, result.stderr) == (0, "")
        assert result.stdout.startswith("usage: python -m prompt_tuning.scripts.find_module "
                                        "MODULE\n")


def test_another_flag_is_a_usage_error_not_a_module():
    result = _find("--verbose")
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.strip() == ("error: unknown flag --verbose (usage: python -m "
                                     "prompt_tuning.scripts.find_module MODULE; --help says more)")
