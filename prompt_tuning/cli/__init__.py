"""What every command shares: flag parsing with `--help`, one error path, and gin launching.

A command module (`prompt_tuning/train.py`, ...) defines its flags and a `main(argv)` that
raises on failure, and ends with `cli.run(main)`:

    def define_flags(values): flags.DEFINE_string("output", None, "...", flag_values=values)
    def main(argv):
        values = cli.parse_flags(argv, define_flags, __doc__)
        ...
    if __name__ == "__main__":
        cli.run(main)
"""

from prompt_tuning.cli.flag_parsing import parse_flags
from prompt_tuning.cli.runner import call, run

__all__ = ["call", "parse_flags", "run"]
