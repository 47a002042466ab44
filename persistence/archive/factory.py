"""Choose an object store from an archive URL (the one place archive adapters are named).

- ``""``: no archive.
- ``file:///ABSOLUTE/DIR`` or a plain directory path: LocalObjectStore.
- ``s3://BUCKET[/PREFIX]?endpoint=http://HOST:PORT&region=REGION&path_style=true``: any
  S3-compatible service (without ``endpoint``: AWS). Credentials come from the settings
  (``archive_access_key``/``archive_secret_key``), never from the URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from persistence.archive.base import ObjectStore
from persistence.archive.local import LocalObjectStore


def object_store_from_url(url: str, access_key: str = "", secret_key: str = "") -> ObjectStore | None:
    if not url:
        return None
    if url.startswith("s3://"):
        parts = urlsplit(url)
        if not parts.hostname:
            raise ValueError("archive URL s3://BUCKET/... needs a bucket name")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        unknown = set(query) - {"endpoint", "region", "path_style"}
        if unknown:
            raise ValueError(f"archive URL: unknown options {sorted(unknown)} (endpoint, region, path_style)")
        from persistence.archive.s3 import S3ObjectStore  # boto3 loads only when used

        return S3ObjectStore(
            endpoint=query.get("endpoint"),
            bucket=parts.hostname,
            region=query.get("region", "us-east-1"),
            access_key=access_key,
            secret_key=secret_key,
            path_style=query.get("path_style", "true").lower() in ("1", "true", "yes"),
            prefix=parts.path,
        )
    if url.startswith("file://"):
        path = urlsplit(url).path
        if not path:
            raise ValueError("archive URL file:///DIR needs a directory")
        return LocalObjectStore(path)
    if "://" in url:
        raise ValueError(
            f"unknown archive URL scheme {url.split('://', 1)[0]!r}: use s3://, file:// or a directory"
        )
    return LocalObjectStore(url)
