"""Raw object storage: a local folder or an S3-compatible bucket, behind one small API.

Keys are '/'-separated relative paths (``raw/commits/repo=a__b/...``). Writes are atomic: a reader
sees either nothing or the whole object (local: temp file + link/rename; S3: one PUT / completed
multipart upload). S3 goes through `pyarrow.fs.S3FileSystem` — never DuckDB's httpfs, which cannot
be downloaded here.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs

if TYPE_CHECKING:
    from dataplatform.config import Settings

_COPY_CHUNK = 8 * 1024 * 1024


class ObjectStore:
    """Objects addressed by relative keys under a root (a local folder or ``bucket/prefix``)."""

    def __init__(self, fs: pafs.FileSystem, root: str, *, uri: str) -> None:
        self._fs = fs
        self._root = root.rstrip("/")
        self._local = isinstance(fs, pafs.LocalFileSystem)
        self.uri = uri

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def local(cls, folder: str | os.PathLike[str]) -> ObjectStore:
        """A store in a local folder (created if missing)."""
        path = Path(folder).expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return cls(pafs.LocalFileSystem(), str(path), uri=str(path))

    @classmethod
    def s3(
        cls,
        uri: str,
        *,
        endpoint_url: str | None = None,
        region: str = "us-east-1",
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
    ) -> ObjectStore:
        """A store under ``s3://bucket[/prefix]`` on AWS S3 or an S3-compatible server (MinIO)."""
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ValueError(f"not an s3://bucket[/prefix] URI: {uri!r}")
        kwargs: dict[str, object] = {"region": region}
        if access_key_id:
            kwargs["access_key"] = access_key_id
            kwargs["secret_key"] = secret_access_key or ""
        if endpoint_url:
            endpoint = urlparse(endpoint_url)
            if endpoint.scheme and endpoint.netloc:
                kwargs["endpoint_override"] = endpoint.netloc
                kwargs["scheme"] = endpoint.scheme
            else:
                kwargs["endpoint_override"] = endpoint_url
            # MinIO and most S3-compatible servers want path-style addressing.
            kwargs["force_virtual_addressing"] = False
        fs = pafs.S3FileSystem(**kwargs)
        root = parsed.netloc + parsed.path.rstrip("/")
        return cls(fs, root, uri=f"s3://{root}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ObjectStore:
        """The store named by `settings.object_store` (s3:// URI or local folder)."""
        location = settings.object_store
        if location.startswith("s3://"):
            return cls.s3(
                location,
                endpoint_url=settings.s3_endpoint_url,
                region=settings.s3_region,
                access_key_id=settings.s3_access_key_id,
                secret_access_key=settings.s3_secret_access_key.get_secret_value(),
            )
        if location.startswith("file://"):
            location = urlparse(location).path
        return cls.local(location)

    def __repr__(self) -> str:
        return f"ObjectStore({self.uri!r})"

    # --- keys ------------------------------------------------------------------------------
    def _path(self, key: str) -> str:
        _check_key(key)
        return f"{self._root}/{key}"

    def local_path(self, key: str) -> Path | None:
        """Filesystem path of `key` for a local store (None for S3)."""
        return Path(self._path(key)) if self._local else None

    # --- writes ----------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes, *, overwrite: bool = True) -> None:
        """Store `data` under `key` atomically; with ``overwrite=False`` an existing key raises
        `FileExistsError` (locally race-free; on S3 a check before the PUT)."""
        path = self._path(key)
        if self._local:
            tmp = self._local_tmp(path)
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                self._local_publish(tmp, path, overwrite=overwrite)
            finally:
                Path(tmp).unlink(missing_ok=True)
            return
        if not overwrite and self.exists(key):
            raise FileExistsError(f"object already exists: {key}")
        with self._fs.open_output_stream(path) as out:
            out.write(data)

    def put_file(self, key: str, source: str | os.PathLike[str], *, overwrite: bool = True) -> None:
        """Copy a local file to `key` atomically (same guarantees as `write_bytes`)."""
        path = self._path(key)
        if self._local:
            tmp = self._local_tmp(path)
            try:
                shutil.copyfile(source, tmp)
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
                self._local_publish(tmp, path, overwrite=overwrite)
            finally:
                Path(tmp).unlink(missing_ok=True)
            return
        if not overwrite and self.exists(key):
            raise FileExistsError(f"object already exists: {key}")
        # The S3 multipart upload becomes visible only when the stream is closed successfully.
        with open(source, "rb") as src, self._fs.open_output_stream(path) as out:
            while chunk := src.read(_COPY_CHUNK):
                out.write(chunk)

    def delete(self, key: str) -> None:
        """Remove `key` if it exists."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            self._fs.delete_file(path)

    def _local_tmp(self, path: str) -> str:
        parent = Path(path).parent
        parent.mkdir(parents=True, exist_ok=True)
        # Dot-prefixed so that `list` never reports an unfinished write.
        return str(parent / f".{Path(path).name}.tmp-{secrets.token_hex(6)}")

    @staticmethod
    def _local_publish(tmp: str, path: str, *, overwrite: bool) -> None:
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with FileExistsError when `path` exists: no overwrite race

    # --- reads -----------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        """The whole object; `FileNotFoundError` when missing."""
        with self._fs.open_input_stream(self._path(key)) as stream:
            return bytes(stream.readall())

    def open_input(self, key: str) -> pa.NativeFile:
        """A random-access reader (what `pyarrow.parquet.read_table` / `ParquetFile` take)."""
        return self._fs.open_input_file(self._path(key))

    def exists(self, key: str) -> bool:
        """True when `key` is an object (not a folder)."""
        info = self._fs.get_file_info(self._path(key))
        return bool(info.type == pafs.FileType.File)

    def size(self, key: str) -> int:
        """Size of the object in bytes."""
        info = self._fs.get_file_info(self._path(key))
        if info.type != pafs.FileType.File:
            raise FileNotFoundError(key)
        return int(info.size)

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys of all objects whose key starts with `prefix` (recursive)."""
        if prefix.rstrip("/"):
            _check_key(prefix.rstrip("/"))
        folder = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = f"{self._root}/{folder}".rstrip("/")
        selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
        keys = []
        for info in self._fs.get_file_info(selector):
            if info.type != pafs.FileType.File:
                continue
            key = info.path[len(self._root) + 1 :]
            if key.startswith(prefix) and not info.base_name.startswith("."):
                keys.append(key)
        return sorted(keys)


def _check_key(key: str) -> None:
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise ValueError(f"invalid object key {key!r}: use a relative 'a/b/c' path")
