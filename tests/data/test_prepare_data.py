"""`python -m prompt_tuning.prepare_data`: TFDS's real builders run on hand-made files in the
upstream layout (`raw_archives`), with the network shut; the data is read back through TFDS and
through our seqio tasks. Also its mistakes, each one `error:` line that leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import zipfile

import pytest

from prompt_tuning.data import prepare
from tests.data import raw_archives
from tests.launch.runner import run_in_process, run_subprocess, snapshot

MODULE = "prompt_tuning.prepare_data"
# The SuperGLUE mixture covers the 10 SuperGLUE datasets and DPR; rte is named twice on purpose.
TASKS = "super_glue_v102_proportional,glue_sst2_v200,glue_mrpc_v200,super_glue_rte_v102"
DATASETS = sorted(raw_archives.WRITERS)
RTE_URL = "https://dl.fbaipublicfiles.com/glue/superglue/data/v2/RTE.zip"

# Loaded by Python at start-up when its directory is on PYTHONPATH: every attempt to resolve a
# host name or to open an internet socket is logged, then refused.
NO_NETWORK = '''
import os, socket
def _refuse(*args, **kwargs):
    with open(os.environ["NETWORK_LOG"], "a") as log:
        log.write(repr(args[:2]) + "\\n")
    raise OSError("network disabled by the test")
_connect = socket.socket.connect
def _checked_connect(self, address):
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _refuse(address)
    return _connect(self, address)
socket.getaddrinfo = _refuse
socket.socket.connect = _checked_connect
'''


def _no_network_env(tmp) -> dict:
    site = tmp / "no_network"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(NO_NETWORK)
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
            "NETWORK_LOG": str(tmp / "network.log")}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One command prepares all 13 datasets from raw files, without network. GLUE's files lie
    in raw/glue/, which comes before raw/ (where a broken SST-2.zip must go unread)."""
    tmp = tmp_path_factory.mktemp("prepare")
    glue = [name for name in DATASETS if name.startswith("glue/")]
    raw_archives.write(str(tmp / "raw"), [name for name in DATASETS if name not in glue])
    raw_archives.write(str(tmp / "raw" / "glue"), glue)
    (tmp / "raw" / "SST-2.zip").write_text("not the zip")
    result = run_subprocess(MODULE, f"--tasks={TASKS}", f"--tfds_data_dir={tmp / 'tfds'}",
                            f"--raw_dir={tmp / 'raw'}", env=_no_network_env(tmp))
    return tmp, result


def test_the_network_blocker_works(tmp_path):
    env = {**os.environ, **_no_network_env(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", "import socket; socket.getaddrinfo('x.org', 80)"],
                          env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "network disabled by the test" in proc.stderr
    assert (tmp_path / "network.log").read_text().startswith("('x.org', 80)")


@pytest.mark.slow
def test_prepares_every_dataset_from_raw_files_without_network(built):
    tmp, result = built
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not (tmp / "network.log").exists()  # nothing even resolved a host name
    lines = result.stdout.splitlines()
    assert lines == [f"prepared {name} in {tmp / 'tfds' / _version_dir(name)}"
                     for name in _in_task_order()] + [
        f"13 dataset(s) in {tmp / 'tfds'}: 13 prepared (from {tmp / 'raw'}), 0 already prepared"]
    # Staging and extraction happened inside tfds/ and are gone.
    assert sorted(os.listdir(tmp / "tfds")) == ["definite_pronoun_resolution", "glue",
                                                "super_glue"]


def _version_dir(name: str) -> str:
    dataset, version = name.split(":")
    return os.path.join(dataset, version)


def _in_task_order() -> list[str]:
    return prepare.tfds_datasets(TASKS.split(","))


def test_raw_file_names_are_tfds_registered_names_else_the_url_basename():
    import tensorflow_datasets as tfds

    glue = tfds.builder("glue/mrpc:2.0.0").url_infos
    dev_ids = next(url for url in glue if "mrpc_dev_ids" in url)
    assert prepare.raw_file_name(dev_ids, glue) == "data_mrpc_dev_ids.tsv"
    assert prepare.raw_file_name(RTE_URL, {}) == "RTE.zip"
    assert prepare.raw_file_name("https://x.org/o/data%2Fdev.tsv?alt=media") == "dev.tsv"


def test_lists_each_dataset_once_in_task_order():
    assert len(_in_task_order()) == 13 and set(_in_task_order()) == set(DATASETS)
    assert prepare.tfds_datasets(["super_glue_wsc_and_dev_v102_simple", "glue_sst2_v200"]) == [
        "super_glue/wsc.fixed:1.0.2", "glue/sst2:2.0.0"]


@pytest.mark.parametrize("name", DATASETS)
def test_tfds_reads_back_what_was_written(built, name):
    import tensorflow_datasets as tfds

    tmp, result = built
    assert result.returncode == 0, result.stderr
    split, feature, values = raw_archives.EXPECTED[name]
    read = tfds.as_numpy(tfds.load(name, split=split, data_dir=str(tmp / "tfds")))
    assert sorted(ex[feature].decode() for ex in read) == sorted(values)


# What our tasks make of the hand-made examples (the formats are tested elsewhere).
TASK_INPUTS = {
    ("super_glue_rte_v102", "validation"): [
        f"rte hypothesis: RTE hypothesis {i}. premise: RTE premise {i}: a cat sat on the mat."
        for i in range(4)],
    ("super_glue_boolq_v102", "train"): [
        f"boolq passage: BoolQ passage {i}. question: is boolq question {i} true"
        for i in range(4)],
    ("super_glue_wsc_v102_simple_eval", "validation"): [
        f"wsc: Mark told Pete {i} lies about himself . *He* was wrong ." for i in range(4)],
    ("glue_sst2_v200", "validation"): [
        f"sst2 sentence: sst2 sentence {i} , fine " for i in range(4)],
    ("glue_mrpc_v200", "train"): [  # the pairs not listed in the dev ids file
        f"mrpc sentence1: MRPC first {i} . sentence2: MRPC second {i} ." for i in (1, 3, 5)],
    ("dpr_v001_simple", "train"): [
        f"wsc: The bee train {i} landed on the flower because *it* had pollen."
        for i in range(4)],
}


@pytest.mark.parametrize("task, split", sorted(TASK_INPUTS))
def test_our_tasks_read_the_prepared_data(built, task, split):
    import tensorflow_datasets as tfds

    from prompt_tuning.data import tasks
    from prompt_tuning.data.tensorflow_quiet import seqio

    tmp, result = built
    assert result.returncode == 0, result.stderr
    seqio.set_tfds_data_dir_override(str(tmp / "tfds"))
    try:
        tasks.check_prepared(task, split)
        dataset = tasks.get_task_or_mixture(task).get_dataset(
            sequence_length=None, split=split, shuffle=False, use_cached=False,
            try_in_mem_cache=False)
        inputs = sorted(ex["inputs_pretokenized"].decode() for ex in tfds.as_numpy(dataset))
    finally:
        seqio.set_tfds_data_dir_override(None)
    assert inputs == sorted(TASK_INPUTS[task, split])


def test_a_rerun_says_already_prepared_and_changes_nothing(built, monkeypatch):
    tmp, result = built
    assert result.returncode == 0, result.stderr
    before = snapshot(str(tmp / "tfds"))
    monkeypatch.chdir(tmp)  # relative paths are resolved against the working directory
    again = run_in_process(MODULE, "--tasks=super_glue_rte_v102,glue_mrpc_v200",
                           "--tfds_data_dir=tfds", "--raw_dir=raw")
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"already prepared super_glue/rte:1.0.2 in {tmp / 'tfds/super_glue/rte/1.0.2'}",
        f"already prepared glue/mrpc:2.0.0 in {tmp / 'tfds/glue/mrpc/2.0.0'}",
        f"2 dataset(s) in {tmp / 'tfds'}: 0 prepared, 2 already prepared"]
    assert snapshot(str(tmp / "tfds")) == before


def _assert_one_error_and_nothing_written(result, code: int, message: str, data_dir) -> None:
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("error: ")
    assert result.stdout == ""
    assert not os.path.exists(data_dir)


def test_a_missing_raw_file_is_named_with_its_url(tmp_path):
    (tmp_path / "raw").mkdir()
    raw_archives.write(str(tmp_path / "raw"), ["super_glue/boolq:1.0.2"])  # not RTE's
    result = run_in_process(MODULE, "--tasks=super_glue_rte_v102",
                            f"--tfds_data_dir={tmp_path / 'tfds'}",
                            f"--raw_dir={tmp_path / 'raw'}")
    _assert_one_error_and_nothing_written(
        result, 1, f"--raw_dir {tmp_path / 'raw'} lacks RTE.zip (from {RTE_URL}): put the "
        f"upstream file there or in {tmp_path / 'raw' / 'super_glue'} under that name",
        tmp_path / "tfds")


@pytest.mark.parametrize("cached", [False, True])
def test_offline_without_raw_dir_fails_fast_and_leaves_nothing(tmp_path, cached):
    """Without internet TFDS retried for minutes and left empty `downloads/*.tmp.*` folders;
    now one line in seconds names the archives for --raw_dir. A download cache that was there
    before stays as it was."""
    data_dir = tmp_path / "tfds"
    if cached:
        (data_dir / "downloads" / "glue").mkdir(parents=True)
        (data_dir / "downloads" / "glue" / "earlier.zip").write_text("kept")
    def tree():  # paths and file contents (a folder's mtime changes when an entry comes and goes)
        return {path: entry[3] for path, entry in snapshot(str(data_dir)).items()}

    before = tree()
    start = time.monotonic()
    result = run_subprocess(MODULE, "--tasks=super_glue_rte_v102", f"--tfds_data_dir={data_dir}",
                            env=_no_network_env(tmp_path), timeout=120)
    assert time.monotonic() - start < 60, "offline failure took as long as TFDS's retries"
    message = ("error: cannot download super_glue/rte:1.0.2: dl.fbaipublicfiles.com cannot be "
               "reached (no connection). Without internet, download its files elsewhere and "
               f"pass --raw_dir=DIR holding them under their names: RTE.zip (from {RTE_URL})")
    assert (result.returncode, result.stdout, result.stderr.strip()) == (1, "", message)
    assert tree() == before  # {} when it was not there
    assert "dl.fbaipublicfiles.com" in (tmp_path / "network.log").read_text()


def test_a_build_failing_midway_leaves_nothing(tmp_path):
    """TFDS has written the train split when it finds no validation file in the zip."""
    (tmp_path / "raw").mkdir()
    with zipfile.ZipFile(tmp_path / "raw" / "RTE.zip", "w") as archive:
        archive.writestr("RTE/train.jsonl", '{"premise": "p", "hypothesis": "h", '
                         '"label": "entailment", "idx": 0}\n')
    result = run_in_process(MODULE, "--tasks=super_glue_rte_v102",
                            f"--tfds_data_dir={tmp_path / 'tfds'}",
                            f"--raw_dir={tmp_path / 'raw'}")
    _assert_one_error_and_nothing_written(
        result, 1, "error: building super_glue/rte:1.0.2 from --raw_dir", tmp_path / "tfds")
    assert "ZIP.RTE.zip/RTE/val.jsonl: No such file or directory" in result.stderr


@pytest.mark.parametrize("args, code, message", [
    ((), 2, "error: --tasks is required"),
    (("--tasks=super_glue_rte_v102",), 2, "error: --tfds_data_dir is required"),
    (("--tasks=super_glue_rte_v12", "--tfds_data_dir={tfds}"), 2,
     "error: Unknown task or mixture 'super_glue_rte_v12' (--tasks). Did you mean "
     "super_glue_rte_v102"),
    (("--tasks=super_glue_rte_v102", "--tfds_data_dir={tfds}", "--raw_dir={tmp}/nope"), 2,
     "error: --raw_dir {tmp}/nope is not a directory."),
    (("--tasks=super_glue_rte_v102", "--tfds_data_dir={tmp}/a_file"), 1,
     "error: --tfds_data_dir {tmp}/a_file exists and is a file"),
    (("--tasks=builtin_sentiment", "--tfds_data_dir={tfds}"), 2,
     "error: 'builtin_sentiment' reads no TFDS dataset"),
    (("--tasks=glue_sst2_v002", "--tfds_data_dir={tfds}"), 1,
     "error: TFDS dataset glue/sst2:1.0.0 cannot be built by tensorflow-datasets 4.9.10: it "
     "builds version 2.0.0 only"),
])
def test_mistakes_are_one_line_and_write_nothing(tmp_path, args, code, message):
    (tmp_path / "a_file").write_text("not a directory")
    fill = {"tmp": tmp_path, "tfds": tmp_path / "tfds"}
    result = run_in_process(MODULE, *(arg.format(**fill) for arg in args))
    _assert_one_error_and_nothing_written(result, code, message.format(**fill),
                                          tmp_path / "tfds")


@pytest.mark.slow
def test_prepared_into_gcs_and_trained_from_there(gcs, tmp_path):
    """A pod's data dir is in Cloud Storage: prepare_data uploads the built dataset there, and
    training reads it from there (TFDS through TensorFlow's GCS client, see tests/gcs_emulator)."""
    from tests.launch import tiny_run  # pylint: disable=import-outside-toplevel

    bucket = gcs.bucket()
    raw_archives.write(str(tmp_path / "raw"), ["super_glue/rte:1.0.2"])
    env = {**gcs.env, **gcs.tf_env}
    prepared = run_subprocess(MODULE, "--tasks=taskless_super_glue_rte_v102",
                              f"--tfds_data_dir={bucket}/tfds", f"--raw_dir={tmp_path / 'raw'}",
                              env=env)
    assert prepared.returncode == 0, prepared.stderr
    names = gcs.objects(f"{bucket}/tfds")
    assert "tfds/super_glue/rte/1.0.2/dataset_info.json" in names
    assert any("super_glue-train.tfrecord" in n for n in names)
    again = run_subprocess(MODULE, "--tasks=taskless_super_glue_rte_v102",
                           f"--tfds_data_dir={bucket}/tfds", f"--raw_dir={tmp_path / 'raw'}",
                           env=env)
    assert again.returncode == 0 and "already prepared" in again.stdout, again.stderr

    model_dir = f"{bucket}/runs/rte"
    tunnels = gcs.tunnels
    trained = run_subprocess(
        "prompt_tuning.train", *[f for f in tiny_run.train_flags(model_dir, train_steps=2)
                                 if "MIXTURE_OR_TASK_NAME" not in f and "EVAL_PERIOD" not in f],
        "--gin.MIXTURE_OR_TASK_NAME='taskless_super_glue_rte_v102'", "--gin.EVAL_PERIOD=2",
        f"--tfds_data_dir={bucket}/tfds",
        env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert any(n.endswith("checkpoints/2/commit_success.txt")
               for n in gcs.objects(model_dir))
    assert gcs.tunnels > tunnels  # the examples came from the bucket, through TensorFlow
