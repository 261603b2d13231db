from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.config import Settings


def test_local_round_trip_and_listing(tmp_path: Path) -> None:
    store = ObjectStore.local(tmp_path)
    store.write_bytes("raw/a/one.bin", b"1")
    store.write_bytes("raw/b/two.bin", b"22")
    store.write_bytes("other/three.bin", b"333")
    assert store.read_bytes("raw/b/two.bin") == b"22"
    assert store.exists("raw/a/one.bin")
    assert not store.exists("raw/a")  # a folder is not an object
    assert not store.exists("raw/missing.bin")
    assert store.size("other/three.bin") == 3
    assert store.list("raw/") == ["raw/a/one.bin", "raw/b/two.bin"]
    assert store.list("raw/a") == ["raw/a/one.bin"]
    assert store.list() == ["other/three.bin", "raw/a/one.bin", "raw/b/two.bin"]
    assert store.list("nothing/here/") == []
    # no temp files are left behind
    assert sorted(p.name for p in (tmp_path / "raw" / "a").iterdir()) == ["one.bin"]


def test_overwrite_false_refuses_existing_key(tmp_path: Path) -> None:
    store = ObjectStore.local(tmp_path)
    store.write_bytes("k/v", b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        store.write_bytes("k/v", b"second", overwrite=False)
    src = tmp_path / "src.bin"
    src.write_bytes(b"third")
    with pytest.raises(FileExistsError):
        store.put_file("k/v", src, overwrite=False)
    assert store.read_bytes("k/v") == b"first"
    store.write_bytes("k/v", b"new")  # overwrite is allowed by default
    assert store.read_bytes("k/v") == b"new"
    assert store.list("k/") == ["k/v"]


def test_put_file_delete_and_parquet_reader(tmp_path: Path) -> None:
    store = ObjectStore.local(tmp_path / "root")
    local = tmp_path / "t.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), local)
    store.put_file("data/t.parquet", local)
    assert pq.read_table(store.open_input("data/t.parquet"))["x"].to_pylist() == [1, 2, 3]
    store.delete("data/t.parquet")
    store.delete("data/t.parquet")  # deleting a missing key is fine
    assert not store.exists("data/t.parquet")
    with pytest.raises(FileNotFoundError):
        store.read_bytes("data/t.parquet")


@pytest.mark.parametrize("key", ["", "/abs", "a/../b", "a//b", "./a", "a\\b", "a/"])
def test_invalid_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError, match="invalid object key"):
        ObjectStore.local(tmp_path).write_bytes(key, b"x")


def test_from_settings_local_and_s3(tmp_path: Path) -> None:
    local = ObjectStore.from_settings(Settings(home=tmp_path))
    assert local.uri == str(tmp_path / "objects")
    assert (tmp_path / "objects").is_dir()

    settings = Settings(
        home=tmp_path,
        object_store_uri="s3://bucket/some/prefix/",
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_access_key_id="minio",
        s3_secret_access_key="minio-secret",  # type: ignore[arg-type]
        s3_region="eu-west-1",
    )
    s3 = ObjectStore.from_settings(settings)  # no network: pyarrow connects lazily
    assert s3.uri == "s3://bucket/some/prefix"
    assert isinstance(s3._fs, pafs.S3FileSystem)
    assert s3._fs.region == "eu-west-1"
    assert "minio-secret" not in repr(s3)
    with pytest.raises(ValueError, match="s3://"):
        ObjectStore.s3("s3:///nobucket")
