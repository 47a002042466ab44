"""S3ObjectStore: any S3-compatible service (AWS S3, S3Proxy, MinIO, Ceph, R2...) through boto3.

Calls run on worker threads. Timeouts are short and retries few, so an outage fails a pass
quickly (the archiver retries on its own schedule) instead of stalling it for minutes.
Checksum headers are sent only when an operation requires them: several S3-compatible
servers answer the newer default checksums with NotImplemented.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import boto3  # type: ignore[import-untyped]
from botocore.config import Config  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError  # type: ignore[import-untyped]

from persistence.archive.base import ArchiveUnavailable, ObjectMissing

T = TypeVar("T")
# Per S3 call; a slow or unreachable object store fails the archive pass, which is retried
# (collab_server/archiving.py), so these bound a pass, not what is kept.
CONNECT_TIMEOUT_SECONDS = 3.0
READ_TIMEOUT_SECONDS = 30.0
DELETE_BATCH = 1000  # the S3 limit per DeleteObjects call


class S3ObjectStore:
    def __init__(
        self,
        *,
        endpoint: str | None,
        bucket: str,
        region: str = "us-east-1",
        access_key: str | None = None,
        secret_key: str | None = None,
        path_style: bool = True,
        prefix: str = "",
    ) -> None:
        self.endpoint = endpoint
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(
            region_name=region,
            s3={"addressing_style": "path" if path_style else "virtual"},
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=READ_TIMEOUT_SECONDS,
            retries={"max_attempts": 2, "mode": "standard"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        self._client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            config=config,
        )

    def describe(self) -> str:
        return f"S3 bucket {self.bucket!r} at {self.endpoint or 'AWS'}" + (
            f" under {self.prefix}" if self.prefix else ""
        )

    async def _call(self, what: str, operation: Callable[[], T]) -> T:
        try:
            return await asyncio.to_thread(operation)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise ObjectMissing(f"{self.describe()}: {what}: no such object") from exc
            raise ArchiveUnavailable(f"{self.describe()}: {what}: {code or exc}") from exc
        except (BotoCoreError, OSError) as exc:
            raise ArchiveUnavailable(f"{self.describe()}: {what}: {exc}") from exc

    async def open(self) -> None:
        def ensure_bucket() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) not in ("404", "NoSuchBucket", "NotFound"):
                    raise
                self._client.create_bucket(Bucket=self.bucket)

        await self._call("opening the bucket", ensure_bucket)

    async def put(self, key: str, data: bytes) -> None:
        await self._call(
            f"writing {key}",
            lambda: self._client.put_object(Bucket=self.bucket, Key=self.prefix + key, Body=data),
        )

    async def get(self, key: str) -> bytes:
        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=self.prefix + key)["Body"]
            try:
                data: bytes = body.read()
            finally:
                body.close()
            return data

        return await self._call(f"reading {key}", read)

    async def exists(self, key: str) -> bool:
        try:
            await self._call(
                f"checking {key}", lambda: self._client.head_object(Bucket=self.bucket, Key=self.prefix + key)
            )
        except ObjectMissing:
            return False
        return True

    async def list(self, prefix: str) -> list[str]:
        def page_through() -> list[str]:
            keys: list[str] = []
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                keys += [item["Key"][len(self.prefix) :] for item in page.get("Contents", [])]
            return sorted(keys)

        return await self._call(f"listing {prefix}", page_through)

    async def delete(self, keys: Sequence[str]) -> int:
        def remove() -> int:
            removed = 0
            for first in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": self.prefix + key} for key in keys[first : first + DELETE_BATCH]]
                answer = self._client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": False}
                )
                removed += len(answer.get("Deleted", []))
            return removed

        return await self._call(f"deleting {len(keys)} objects", remove) if keys else 0
