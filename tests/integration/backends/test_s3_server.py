"""The object store on a real S3 server (SeaweedFS): it works with the right keys, and the server
refuses wrong keys and anonymous requests."""

from __future__ import annotations

import uuid

import botocore.exceptions
import pyarrow.fs as pafs
import pytest
from backend_servers import S3Server
from botocore import UNSIGNED
from botocore.config import Config

from dataplatform.adapters.object_store import ObjectStore
from dataplatform.config import get_settings


def _store(s3: S3Server, prefix: str, secret: str | None = None) -> ObjectStore:
    return ObjectStore.s3(
        f"s3://{s3.bucket}/{prefix}",
        endpoint_url=s3.endpoint_url,
        access_key_id=s3.access_key_id,
        secret_access_key=secret or s3.secret_access_key,
    )


def test_object_store_round_trip_with_the_right_keys(s3_server: S3Server) -> None:
    prefix = f"t-{uuid.uuid4().hex[:8]}"
    settings = get_settings(
        profile="staging",
        object_store_uri=f"s3://{s3_server.bucket}/{prefix}",
        s3_endpoint_url=s3_server.endpoint_url,
        s3_access_key_id=s3_server.access_key_id,
        s3_secret_access_key=s3_server.secret_access_key,
        pii_hash_key=uuid.uuid4().hex,
        admin_token=uuid.uuid4().hex,
    )
    store = ObjectStore.from_settings(settings)
    store.write_bytes("raw/manifests/b1.json", b'{"a": 1}', overwrite=False)
    store.write_bytes("raw/commits/repo=a__b/x.parquet", b"PAR1")
    with pytest.raises(FileExistsError):
        store.write_bytes("raw/manifests/b1.json", b"{}", overwrite=False)
    assert store.list("raw/") == ["raw/commits/repo=a__b/x.parquet", "raw/manifests/b1.json"]
    assert store.read_bytes("raw/manifests/b1.json") == b'{"a": 1}'
    assert store.size("raw/commits/repo=a__b/x.parquet") == 4
    # Really on the server, under the prefix:
    assert sorted(s3_server.keys(prefix + "/")) == [
        f"{prefix}/raw/commits/repo=a__b/x.parquet",
        f"{prefix}/raw/manifests/b1.json",
    ]
    store.delete("raw/manifests/b1.json")
    assert not store.exists("raw/manifests/b1.json")


@pytest.mark.parametrize("which", ["secret", "access_key"])
def test_wrong_keys_are_refused(s3_server: S3Server, which: str) -> None:
    key = s3_server.access_key_id if which == "secret" else "AKNOTAREALKEY0000000"
    secret = "not-the-secret" if which == "secret" else s3_server.secret_access_key
    client = s3_server.client(access_key_id=key, secret_access_key=secret)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        client.put_object(Bucket=s3_server.bucket, Key="intruder.txt", Body=b"x")
    assert refused.value.response["Error"]["Code"] in {
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "AccessDenied",
    }
    with pytest.raises(botocore.exceptions.ClientError):
        client.list_objects_v2(Bucket=s3_server.bucket)
    assert "intruder.txt" not in s3_server.keys("")


def test_wrong_secret_fails_the_object_store_too(s3_server: S3Server) -> None:
    store = _store(s3_server, "wrong", secret="not-the-secret")
    with pytest.raises(OSError):
        store.write_bytes("raw/x.json", b"{}")
    with pytest.raises(OSError):
        store.read_bytes("raw/x.json")
    assert s3_server.keys("wrong/") == []


def test_anonymous_requests_are_refused(s3_server: S3Server) -> None:
    import boto3

    anonymous = boto3.client(
        "s3",
        endpoint_url=s3_server.endpoint_url,
        region_name=s3_server.region,
        config=Config(signature_version=UNSIGNED),
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        anonymous.list_objects_v2(Bucket=s3_server.bucket)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    anonymous_fs = pafs.S3FileSystem(
        anonymous=True,
        endpoint_override=s3_server.endpoint_url.removeprefix("http://"),
        scheme="http",
        region=s3_server.region,
    )
    with pytest.raises(OSError):
        anonymous_fs.get_file_info(pafs.FileSelector(s3_server.bucket, recursive=True))
