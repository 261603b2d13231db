"""What the backend fixtures yield (imported by tests as `backend_servers`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class S3Server:
    """A running S3 server: its endpoint, the one identity it accepts, and a bucket."""

    endpoint_url: str
    access_key_id: str
    secret_access_key: str
    bucket: str
    region: str = "us-east-1"

    def client(self, access_key_id: str | None = None, secret_access_key: str | None = None) -> Any:
        """A boto3 S3 client (the server's keys unless others are given)."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=access_key_id or self.access_key_id,
            aws_secret_access_key=secret_access_key or self.secret_access_key,
            region_name=self.region,
        )

    def keys(self, prefix: str) -> list[str]:
        """Every object key under `prefix` in the bucket."""
        paginator = self.client().get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]


@dataclass(frozen=True)
class MlflowServer:
    """A running MLflow tracking server."""

    tracking_uri: str
    artifacts_destination: str  # s3://bucket/prefix behind mlflow-artifacts:/
    backend_db: str
