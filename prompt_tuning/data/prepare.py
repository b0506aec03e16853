"""Preparing the TFDS datasets behind tasks with the real TFDS builders, online or from raw files.

`tfds_datasets(names)` lists the TFDS datasets (`super_glue/rte:1.0.2`, ...) that tasks and
mixtures read; `prepare(name, data_dir)` builds one into `data_dir` as `tfds build` would,
downloading from the builder's upstream URLs. With `raw_dir`, nothing is downloaded: every file
the builder asks for is taken from `raw_dir/<builder>/<file name>` or `raw_dir/<file name>`
(`raw_file_name`: `RTE.zip`, `SST-2.zip`, `msr_paraphrase_train.txt`, ...), so a machine
without internet (a TPU pod) can build from archives downloaded elsewhere. Extraction, parsing
and writing stay TFDS's.

A build either completes or leaves nothing: it runs in a staging directory inside `data_dir`
(where TFDS writes through its own temporary `incomplete.*` directory, and also writes a
`.config` file and the extracted raw files outside it) and the finished version directory is
renamed into place; on failure the staging directory is removed. Killed outright (SIGKILL), a
build leaves a `.prepare-*` directory, which TFDS never reads as a dataset.
"""

from __future__ import annotations

import dataclasses
import os
import posixpath
import shutil
import tempfile
import urllib.parse
from typing import Any, Iterable, Mapping, Optional, Sequence

import requests  # TFDS downloads with it; its errors are told apart from others below

from prompt_tuning import errors, filesystem
from prompt_tuning.data.tensorflow_quiet import seqio, tf

import tensorflow_datasets as tfds  # noqa: E402  (after tensorflow_quiet, on purpose)

RAW_DIR_FLAG = "--raw_dir"


def tfds_datasets(names: Iterable[str]) -> list[str]:
    """The distinct TFDS datasets (`name/config:version`) read by the tasks and mixtures `names`,
    in order of first appearance.

    Raises the registry's `errors.UsageError` for a name that is neither a task nor a mixture,
    and a `UsageError` for a name none of whose tasks reads TFDS (its data ships with the
    package). Within a mixture, such tasks are skipped.
    """
    from prompt_tuning.data import tasks  # pylint: disable=import-outside-toplevel

    found: list[str] = []
    for name in names:
        mine = []
        for task in seqio.get_subtasks(tasks.get_task_or_mixture(name, "--tasks")):
            if isinstance(task.source, seqio.TfdsDataSource):
                loader = task.source.tfds_dataset
                # A custom split map may read each split from another dataset.
                split_map = loader.tfds_splits
                mine += ([s.dataset for s in split_map.values()] if split_map
                         else [loader.name])
        if not mine:
            raise errors.UsageError(f"{name!r} reads no TFDS dataset (its data is not TFDS's, "
                                    "e.g. shipped with the package): nothing to prepare.")
        found += mine
    return list(dict.fromkeys(found))


def raw_file_name(url: str, url_infos: Optional[Mapping[str, Any]] = None) -> str:
    """The name under which `url`'s file is looked for in a raw directory.

    TFDS's registered name for the URL (its checksums list, the name `tfds build` and a browser
    give the file, e.g. `data_mrpc_dev_ids.tsv` for MRPC's dev ids behind a long storage URL)
    if it has one, else the last part of the URL's path (`RTE.zip`).
    """
    info = (url_infos or {}).get(url)
    if info is not None and getattr(info, "filename", None):
        return info.filename
    return posixpath.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))


def _url(resource: Any) -> str:
    return resource.url if isinstance(resource, tfds.download.Resource) else str(resource)


class RawDirDownloadManager(tfds.download.DownloadManager):
    """A TFDS download manager that downloads nothing: each URL is served by the file
    `raw_file_name(url)` in `raw_dir/<builder name>/` if it is there, else in `raw_dir`. (The
    subdirectory tells apart files of the same name: GLUE's and SuperGLUE's `RTE.zip` differ.)
    TFDS extracts them as it would downloaded ones.

    Checksums are not compared: files made by hand, or taken from another mirror, have other
    checksums than the ones TFDS registered for the upstream files, and the builder's parsing
    checks their content anyway.
    """

    def __init__(self, *, raw_dir: str, builder_name: str,
                 url_infos: Optional[Mapping[str, Any]] = None, **kwargs: Any):
        super().__init__(url_infos=url_infos, **kwargs)
        self._raw_dirs = (os.path.join(raw_dir, builder_name), raw_dir)
        self._registered = dict(url_infos or {})  # for the file names only
        self._served: dict[str, str] = {}

    def raw_path(self, url: str) -> Optional[str]:
        """The file serving `url`, or None."""
        name = raw_file_name(url, self._registered)
        found = [os.path.join(d, name) for d in self._raw_dirs
                 if os.path.isfile(os.path.join(d, name))]
        return found[0] if found else None

    def _serve(self, url_or_urls: Any) -> Any:
        """The local paths of the URLs (same structure); one DataError naming every file that
        is missing, so that a user copies all of them at once."""
        urls = [_url(r) for r in tf.nest.flatten(url_or_urls)]
        missing = [url for url in urls if self.raw_path(url) is None]
        if missing:
            listing = "; ".join(f"{raw_file_name(u, self._registered)} (from {u})"
                                for u in missing)
            inner, raw_dir = self._raw_dirs
            raise errors.DataError(
                f"{RAW_DIR_FLAG} {raw_dir} lacks {listing}: put the upstream file there or in "
                f"{inner} under that name (or leave out {RAW_DIR_FLAG} to download).")
        self._served.update({url: self.raw_path(url) for url in urls})
        return tf.nest.map_structure(lambda r: tfds.core.Path(self.raw_path(_url(r))),
                                     url_or_urls)

    def download(self, url_or_urls: Any) -> Any:
        return self._serve(url_or_urls)

    def download_and_extract(self, url_or_urls: Any) -> Any:
        local = self._serve(url_or_urls)

        def resource(original: Any, path: Any) -> Any:
            if isinstance(original, tfds.download.Resource):
                original.path = path  # keeps its extract_method, as TFDS's own manager does
                return original
            return path

        return self.extract(tf.nest.map_structure(resource, url_or_urls, local))

    @property
    def downloaded_size(self) -> int:
        """What DatasetInfo records as the download size: the raw files served."""
        return sum(os.path.getsize(path) for path in self._served.values())


def _serve_downloads_from(builder: Any, raw_dir: str) -> None:
    """Makes `builder.download_and_prepare` take its downloads from `raw_dir`.

    The one private TFDS hook here: `download_and_prepare` takes no download manager, it makes
    one with `_make_download_manager(download_dir=, download_config=)`. The replacement is set
    on this builder object only; no TFDS class or global changes.
    """
    def make(download_dir: Any, download_config: Any) -> RawDirDownloadManager:
        return RawDirDownloadManager(
            raw_dir=raw_dir, builder_name=builder.name, url_infos=builder.url_infos,
            download_dir=download_dir,
            extract_dir=download_config.extract_dir, dataset_name=builder.name,
            # Builders that read a manual directory read raw_dir too.
            manual_dir=raw_dir, manual_dir_instructions=builder.MANUAL_DOWNLOAD_INSTRUCTIONS)

    builder._make_download_manager = make  # pylint: disable=protected-access


REACH_TIMEOUT_S = 5.0


def _unreachable(url: str) -> Optional[str]:
    """Why `url`'s host gives no answer (one HEAD request, no retries, `REACH_TIMEOUT_S`), or
    None when it answers at all (any status: the download itself says what is wrong)."""
    try:
        requests.head(url, timeout=REACH_TIMEOUT_S, allow_redirects=False)
    except requests.Timeout:
        return f"no answer within {REACH_TIMEOUT_S:g} s"
    except requests.RequestException as e:
        text = str(e)
        if "NameResolution" in text or "Name or service not known" in text:
            return "its name does not resolve"
        return "refused" if "refused" in text else "no connection"
    return None


def _check_hosts_first(builder: Any, dataset_name: str) -> None:
    """Makes `builder`'s downloads first check, once per host, that the host answers: offline,
    TFDS's own retries take minutes (with back-off) before failing. Unreachable, one DataError
    names the host and the files to put in --raw_dir. Uses the same private hook as
    `_serve_downloads_from`, on this builder object only."""
    make = builder._make_download_manager  # pylint: disable=protected-access
    checked: dict[str, Optional[str]] = {}

    def check(url_or_urls: Any) -> None:
        urls = [u for u in map(_url, tf.nest.flatten(url_or_urls)) if u.startswith("http")]
        for url in urls:
            host = urllib.parse.urlparse(url).netloc
            if host not in checked:
                checked[host] = _unreachable(url)
            if checked[host]:
                files = ", ".join(f"{raw_file_name(u, builder.url_infos)} (from {u})"
                                  for u in urls)
                raise errors.DataError(
                    f"cannot download {dataset_name}: {host} cannot be reached "
                    f"({checked[host]}). Without internet, download its files elsewhere and "
                    f"pass {RAW_DIR_FLAG}=DIR holding them under their names: {files}")

    def make_checked(*args: Any, **kwargs: Any) -> Any:
        manager = make(*args, **kwargs)
        for name in ("download", "download_and_extract"):
            original = getattr(manager, name)

            def checked_call(url_or_urls: Any, *rest: Any, _original=original, **options: Any):
                check(url_or_urls)
                return _original(url_or_urls, *rest, **options)

            setattr(manager, name, checked_call)
        return manager

    builder._make_download_manager = make_checked  # pylint: disable=protected-access


def _directories(root: str) -> set[str]:
    """Every directory under `root`, itself included if it exists."""
    return {d for d, _, _ in os.walk(root)}


def _remove_new_directories(root: str, before: set[str]) -> None:
    """After a failed online build: removes what it left under `root` (TFDS's download cache)
    that was not there `before`: empty directories, and the `*.tmp.*` directories of its
    unfinished downloads. Earlier downloads stay cached."""
    for directory, _, _ in sorted(os.walk(root, topdown=False), key=lambda w: -len(w[0])):
        if directory in before:
            continue
        if ".tmp." in os.path.basename(directory):
            shutil.rmtree(directory, ignore_errors=True)
            continue
        try:
            os.rmdir(directory)  # only when empty
        except OSError:
            pass


def open_builder(dataset_name: str, data_dir: str) -> Any:
    """The TFDS builder of `dataset_name` reading `data_dir` (nothing is written)."""
    try:
        return tfds.builder(dataset_name, data_dir=data_dir)
    except Exception as e:  # pylint: disable=broad-except  # unknown name, config, version
        raise errors.DataError(f"TFDS dataset {dataset_name} cannot be opened: "
                               f"{str(e).strip().splitlines()[0]}") from e


def check_buildable(dataset_name: str, builder: Any) -> None:
    """TFDS builds only a builder's newest versions; an older one (`glue/sst2:1.0.0` today)
    would otherwise fail only once the download is done."""
    buildable = sorted({str(builder.canonical_version), str(max(builder.versions))})
    if str(builder.version) not in buildable:
        raise errors.DataError(
            f"TFDS dataset {dataset_name} cannot be built by tensorflow-datasets "
            f"{tfds.__version__}: it builds version {' or '.join(buildable)} only (use a task "
            "that reads that version, or prepare this one with an older TFDS).")


@dataclasses.dataclass(frozen=True)
class Prepared:
    """What `prepare` did for one dataset."""

    name: str
    directory: str  # the dataset's version directory, e.g. DATA_DIR/super_glue/rte/1.0.2
    already: bool  # it was prepared before; nothing was done


def _make_dirs(path: str) -> list[str]:
    """Creates `path` and its missing parents; returns the ones created, innermost first."""
    created = []
    probe = path
    while not os.path.exists(probe):
        created.append(probe)
        probe = os.path.dirname(probe)
    os.makedirs(path, exist_ok=True)
    return created


def _publish(staging: str, data_dir: str, relative: str) -> None:
    """Renames the built version dir (and TFDS's per-builder `.config`) from staging into
    `data_dir`; one rename each, so readers never see a partial dataset."""
    destination = os.path.join(data_dir, relative)
    os.makedirs(os.path.dirname(destination), exist_ok=True)
    os.rename(os.path.join(staging, relative), destination)
    top = relative.split(os.sep)[0]
    config = os.path.join(top, ".config")  # the default config's name, for `tfds.load(top)`
    if os.path.isdir(os.path.join(staging, config)):
        try:
            os.rename(os.path.join(staging, config), os.path.join(data_dir, config))
        except OSError:  # there already (same content: it only names the default config)
            pass


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror}"
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _discard(staging: str, created: Sequence[str]) -> None:
    """Removes the staging dir and the directories `prepare` created, while they are empty."""
    shutil.rmtree(staging, ignore_errors=True)
    for directory in created:  # innermost first
        try:
            os.rmdir(directory)
        except OSError:
            break


def prepare(dataset_name: str, data_dir: str, raw_dir: Optional[str] = None) -> Prepared:
    """Builds the TFDS dataset `dataset_name` into `data_dir` (local) with TFDS's own builder.

    Without `raw_dir` the builder downloads its upstream files (cached in `data_dir/downloads`,
    as TFDS does); with it, the files come from `raw_dir` (`RawDirDownloadManager`) and nothing
    touches the network. A dataset prepared already is left alone (`Prepared.already`).
    Online, each upstream host is first checked to answer (`_check_hosts_first`): offline,
    the build fails in seconds, not after minutes of retries.
    On failure nothing is left in `data_dir` but the files an online build downloaded.
    """
    data_dir = os.fspath(data_dir)
    if raw_dir is not None and not os.path.isdir(raw_dir):
        raise errors.UsageError(f"{RAW_DIR_FLAG} {raw_dir} is not a directory.")
    if filesystem.is_remote(data_dir):
        return _prepare_remote(dataset_name, data_dir, raw_dir)
    builder = open_builder(dataset_name, data_dir)
    if builder.is_prepared():
        return Prepared(dataset_name, os.fspath(builder.data_dir), already=True)
    check_buildable(dataset_name, builder)
    relative = os.path.relpath(os.fspath(builder.data_dir), data_dir)
    created = _make_dirs(data_dir)
    staging = tempfile.mkdtemp(prefix=".prepare-", dir=data_dir)
    download_dir = (os.path.join(staging, "downloads") if raw_dir is not None
                    else os.path.join(data_dir, "downloads"))
    cached = _directories(download_dir)
    try:
        staged = tfds.builder(dataset_name, data_dir=staging)
        if raw_dir is not None:
            _serve_downloads_from(staged, raw_dir)
        else:
            _check_hosts_first(staged, dataset_name)
        # try_download_gcs: build from the sources, never fetch TFDS's prepared copy instead.
        staged.download_and_prepare(
            download_dir=download_dir,
            download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    except BaseException as e:  # Ctrl-C too: leave nothing
        _remove_new_directories(download_dir, cached)
        _discard(staging, created)
        if isinstance(e, errors.UserError) or not isinstance(e, Exception):
            raise
        reason = _reason(e).replace(os.path.join(staging, "downloads", "extracted") + os.sep, "")
        if raw_dir is None and isinstance(e, (tfds.download.DownloadError,
                                              requests.RequestException)):
            raise errors.DataError(
                f"downloading the files of {dataset_name} failed: {reason} (without internet, "
                f"pass {RAW_DIR_FLAG} with the builder's upstream files)") from e
        where = f" from {RAW_DIR_FLAG} {raw_dir}" if raw_dir is not None else ""
        hint = " (are the raw files the complete upstream ones?)" if raw_dir is not None else ""
        raise errors.DataError(f"building {dataset_name}{where} failed: {reason}{hint}") from e
    try:
        _publish(staging, data_dir, relative)
        already = False
    except OSError:
        if not builder.is_prepared():
            raise
        already = True  # another process published it meanwhile: theirs is as good
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Prepared(dataset_name, os.fspath(builder.data_dir), already=already)


def _prepare_remote(dataset_name: str, data_dir: str, raw_dir: Optional[str]) -> Prepared:
    """Builds into a local staging directory, then uploads the dataset's version directory to
    the object store, its `dataset_info.json` last: TFDS takes a version directory as prepared
    once that file is there, so a reader never meets a partial upload (and a build that fails
    uploads nothing). TFDS's download cache stays local and goes with the staging directory."""
    with tempfile.TemporaryDirectory(prefix="prepare-") as staging:
        relative = os.path.relpath(os.fspath(open_builder(dataset_name, staging).data_dir),
                                   staging)
        remote = filesystem.join(data_dir, *relative.split(os.sep))
        if filesystem.isfile(filesystem.join(remote, "dataset_info.json")):
            return Prepared(dataset_name, remote, already=True)
        built = prepare(dataset_name, staging, raw_dir)
        filesystem.upload_dir(built.directory, remote, last=("dataset_info.json",))
    return Prepared(dataset_name, remote, already=False)


def describe(prepared: Prepared) -> str:
    """`prepared super_glue/rte:1.0.2 in DIR` or `already prepared ...`."""
    verb = "already prepared" if prepared.already else "prepared"
    return f"{verb} {prepared.name} in {prepared.directory}"
