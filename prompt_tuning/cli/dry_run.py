"""`--dry_run` and `--device_memory_gib` on train and eval: compile the job's programs from
shapes (`runtime.memory`), print what one device holds, exit 1 if it does not fit."""

from __future__ import annotations

from typing import Any, Sequence

from absl import flags

from prompt_tuning import errors


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_bool("dry_run", False, "compile the job's programs from shapes only and report "
                      "the memory per device; read no weights or data, write nothing.",
                      flag_values=values)
    flags.DEFINE_float("device_memory_gib", None, "memory of one device for --dry_run "
                       "(default: the device's own).", flag_values=values)


def check_flags(values: flags.FlagValues) -> None:
    if values.device_memory_gib is not None and not values.dry_run:
        raise errors.UsageError("--device_memory_gib is for --dry_run only.")


def finish(placement: Any, programs: Sequence[Any], device_memory: Any) -> None:
    """Prints the report; not fitting is a result, not a mistake: no error line, exit 1."""
    from prompt_tuning.runtime import memory  # pylint: disable=import-outside-toplevel

    report = memory.DryRunReport(dict(placement.mesh.shape), programs, device_memory)
    print("\n".join(report.lines()), flush=True)
    if report.fits is False:
        raise SystemExit(1)
