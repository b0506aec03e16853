"""The path layer on a local disk and on a Cloud Storage emulator (gs://), with the same calls."""

from __future__ import annotations

import pytest

from prompt_tuning import errors, filesystem as fs


@pytest.fixture(params=["local", "gs"])
def root(request, tmp_path):
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("gcs").bucket() + "/root"


def test_files_and_directories(root):
    sub = fs.join(root, "a", "b")
    fs.makedirs(sub)
    fs.write_bytes(fs.join(sub, "x.bin"), b"\x00\x01")
    with fs.open_file(fs.join(root, "a", "t.txt"), "w") as f:
        f.write("héllo\n")
    assert fs.read_bytes(fs.join(sub, "x.bin")) == b"\x00\x01"
    assert fs.read_text(fs.join(root, "a", "t.txt")) == "héllo\n"
    assert fs.isdir(fs.join(root, "a")) and fs.isfile(fs.join(sub, "x.bin"))
    assert not fs.isfile(fs.join(root, "a")) and not fs.exists(fs.join(root, "nothing"))
    assert fs.listdir(fs.join(root, "a")) == ["b", "t.txt"]
    assert fs.size(fs.join(sub, "x.bin")) == 2
    assert sorted(fs.basename(p) for p in fs.walk_files(root)) == ["t.txt", "x.bin"]
    fs.rename(fs.join(root, "a", "b"), fs.join(root, "c"))
    assert fs.read_bytes(fs.join(root, "c", "x.bin")) == b"\x00\x01"
    assert not fs.exists(fs.join(sub, "x.bin"))
    fs.remove(fs.join(root, "a", "t.txt"))
    fs.remove(fs.join(root, "a", "t.txt"))  # missing is fine
    fs.rmtree(root)
    assert not fs.exists(fs.join(root, "c", "x.bin"))
    fs.rmtree(root)  # nothing there is fine


def test_invalid_utf8_names_the_file_and_line(root):
    path = fs.join(root, "in.jsonl")
    fs.makedirs(root)
    fs.write_bytes(path, b'{"a": 1}\n{"b": "\xff"}\n')
    with pytest.raises(errors.UserError, match=r"in\.jsonl:2: not valid UTF-8 \(byte 0xff at column 8\)"):
        fs.read_text(path)


def test_written_where_the_url_says(gcs, tmp_path, monkeypatch):
    """A gs:// path never becomes a local directory named after the URL."""
    monkeypatch.chdir(tmp_path)
    bucket = gcs.bucket()
    fs.write_bytes(f"{bucket}/o/p.npy", b"123")
    assert gcs.objects(bucket) == ["o/p.npy"] and gcs.read(f"{bucket}/o/p.npy") == b"123"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["s3://b/k", "hdfs://nn/x", "http://host/x"])
def test_unsupported_schemes_are_refused(url):
    with pytest.raises(errors.UsageError, match="not supported"):
        fs.check_supported(url, "--output")


def test_bucketless_url_is_refused():
    with pytest.raises(errors.UsageError, match="needs a bucket"):
        fs.check_supported("gs:///k", "MODEL_DIR")


def test_emulator_settings_derive_from_one_variable():
    env = {"STORAGE_EMULATOR_HOST": "localhost:4443"}
    fs.configure(env)
    assert env["TENSORSTORE_GCS_HTTP_URL"] == "http://localhost:4443"
    assert env["EPATH_USE_TF"] == "false"
    user = {"EPATH_USE_TF": "true"}
    fs.configure(user)
    assert user["EPATH_USE_TF"] == "true" and "TENSORSTORE_GCS_HTTP_URL" not in user
