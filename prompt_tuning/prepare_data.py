r"""Prepares the TFDS datasets behind tasks and mixtures, with TFDS's own builders.

  python -m prompt_tuning.prepare_data --tasks=super_glue_rte_v102,glue_sst2_v200 \
      --tfds_data_dir=/data/tfds [--raw_dir=/data/raw]

Without --raw_dir the builders download their upstream files. With it, nothing is downloaded:
each file comes from --raw_dir under the name of its upstream file (SuperGLUE: RTE.zip,
BoolQ.zip, CB.zip, COPA.zip, WiC.zip, MultiRC.zip, ReCoRD.zip, WSC.zip, AX-b.zip, AX-g.zip;
GLUE: CoLA.zip, SST-2.zip, QQP.zip, STS-B.zip, MNLI.zip, QNLIv2.zip, RTE.zip, WNLI.zip,
tsvsWithoutLabels_AX.tsv, and for MRPC msr_paraphrase_train.txt, msr_paraphrase_test.txt,
data_mrpc_dev_ids.tsv; DPR: train.c.txt, test.c.txt), so a machine without internet can build
from archives downloaded elsewhere. A file in --raw_dir/<builder>/ (super_glue/, glue/) comes
first: GLUE's and SuperGLUE's RTE.zip are different files. A missing file is named with the URL
it comes from.

Prints one line per dataset (prepared, or already prepared, and where), then a summary. A
dataset appears complete or not at all; on failure: one `error: ...` line, exit status 1 (2 for
a wrong command line), and nothing written for the dataset that failed.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from typing import Optional, Sequence

from absl import flags

from prompt_tuning import cli, errors, paths
from prompt_tuning.cli import runner


def define_flags(values: flags.FlagValues) -> None:
    flags.DEFINE_list("tasks", None, "tasks or mixtures (comma-separated) whose TFDS datasets "
                      "to prepare.", flag_values=values)
    flags.DEFINE_string("tfds_data_dir", None, "where to prepare them (created if missing).",
                        flag_values=values)
    flags.DEFINE_string("raw_dir", None, "a directory holding the builders' upstream files; "
                        "without it they are downloaded.", flag_values=values)


def _check_dirs(data_dir: str, raw_dir: Optional[str]) -> None:
    paths.check_output_dir(data_dir, "--tfds_data_dir")
    if raw_dir is not None and not os.path.isdir(raw_dir):
        raise errors.UsageError(f"--raw_dir {raw_dir} is not a directory.")


def prepare_all(names: Sequence[str], data_dir: str, raw_dir: Optional[str],
                quiet: bool = True) -> str:
    """Prepares every dataset behind `names`, printing a line for each as it is done; returns
    the summary line. Every dataset is checked (it exists, TFDS can build its version) before
    the first is built."""
    from prompt_tuning.data import prepare  # pylint: disable=import-outside-toplevel

    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel  (after TF)

    datasets = prepare.tfds_datasets(names)
    for name in datasets:
        builder = prepare.open_builder(name, data_dir)
        if not builder.is_prepared():
            prepare.check_buildable(name, builder)
    if quiet:
        tfds.disable_progress_bar()
        # urllib3 reports each retry of a failing download; the error line says it once.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    built = 0
    for name in datasets:
        # TFDS prints its own progress lines on stdout; ours are the command's output.
        with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
            done = prepare.prepare(name, data_dir, raw_dir)
        built += not done.already
        print(prepare.describe(done), flush=True)
    source = "" if not built else f" (from {raw_dir})" if raw_dir else " (downloaded)"
    return (f"{len(datasets)} dataset(s) in {data_dir}: {built} prepared{source}, "
            f"{len(datasets) - built} already prepared")


def main(argv: Sequence[str]) -> None:
    values = cli.parse_flags(argv, define_flags, __doc__)
    names = [name.strip() for name in values.tasks or () if name.strip()]
    if not names:
        raise errors.UsageError("--tasks is required: the tasks or mixtures whose TFDS datasets "
                                "to prepare (`python -m prompt_tuning.show_tasks` lists them).")
    if not values.tfds_data_dir:
        raise errors.UsageError("--tfds_data_dir is required: where to prepare the datasets.")
    data_dir = paths.resolve(values.tfds_data_dir)
    raw_dir = paths.resolve(values.raw_dir)
    _check_dirs(data_dir, raw_dir)
    verbose = values.verbose or os.environ.get(runner.DEBUG_ENV, "") not in ("", "0")
    print(prepare_all(names, data_dir, raw_dir, quiet=not verbose))


if __name__ == "__main__":
    cli.run(main)
