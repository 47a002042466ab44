"""TLS: the hub's own certificate (reloaded when its files change) and the TLS options of the
hub's connections to PostgreSQL and Redis.

The listening socket keeps one ``ssl.SSLContext`` for its whole life; a renewed certificate is
loaded into that same context, so new handshakes present it at once while open connections
keep the session they negotiated. A renewal is first loaded into a scratch context: a half
written or mismatched pair is refused (logged) and the previous certificate stays in use.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

logger = logging.getLogger(__name__)

# libpq's sslmode; empty: what the URL says.
PostgresSslMode = Literal["", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"]
MINIMUM_TLS_VERSION = ssl.TLSVersion.TLSv1_2

FileStamp = tuple[tuple[int, int], tuple[int, int]]


class CertificateError(ValueError):
    """The certificate or key files cannot be used."""


def _load(context: ssl.SSLContext, certfile: str, keyfile: str) -> None:
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        raise CertificateError(f"cannot load certificate {certfile} with key {keyfile}: {exc}") from None


class CertificateReloader:
    """A server-side TLS context whose certificate follows the files on disk."""

    def __init__(self, certfile: str, keyfile: str, check_interval_seconds: float) -> None:
        self.certfile = certfile
        self.keyfile = keyfile
        self._interval = check_interval_seconds
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = MINIMUM_TLS_VERSION
        self._stamp = self._file_stamp()
        _load(self.context, certfile, keyfile)
        self.reloads = 0

    def _file_stamp(self) -> FileStamp:
        try:
            cert, key = os.stat(self.certfile), os.stat(self.keyfile)
        except OSError as exc:
            raise CertificateError(f"cannot read certificate files: {exc}") from None
        return (cert.st_mtime_ns, cert.st_size), (key.st_mtime_ns, key.st_size)

    def pem_pair(self) -> tuple[bytes, bytes]:
        """The current key and certificate chain as PEM bytes (for the gRPC listener)."""
        with open(self.keyfile, "rb") as key, open(self.certfile, "rb") as cert:
            return key.read(), cert.read()

    def reload_if_changed(self) -> bool:
        """Load the files again if they changed since the last load; True when the new pair is live."""
        try:
            stamp = self._file_stamp()
        except CertificateError as exc:
            logger.warning("TLS certificate not reloaded: %s", exc)
            return False
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        scratch = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            _load(scratch, self.certfile, self.keyfile)
        except CertificateError as exc:
            # Usually a renewal caught between writing the certificate and the key: the next
            # check sees the files change again and retries.
            logger.warning("TLS certificate not reloaded, keeping the previous one: %s", exc)
            return False
        _load(self.context, self.certfile, self.keyfile)
        self.reloads += 1
        logger.info("TLS certificate reloaded from %s", self.certfile)
        return True

    async def watch(self) -> None:
        """Check the files every ``check_interval_seconds`` until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            self.reload_if_changed()


def postgres_url_with_tls(url: str, ssl_mode: str, root_cert: str) -> str:
    """``url`` with ``sslmode``/``sslrootcert`` set (libpq's names, which asyncpg reads too).

    Non-PostgreSQL URLs and empty options leave the URL as it is; options given in the URL
    itself are overridden by the settings.
    """
    if not url.startswith(("postgresql://", "postgres://")) or not (ssl_mode or root_cert):
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if ssl_mode:
        query["sslmode"] = ssl_mode
    if root_cert:
        query["sslrootcert"] = root_cert
    return urlunsplit(parts._replace(query=urlencode(query)))


def redis_tls_options(url: str, ca_file: str) -> dict[str, Any]:
    """Keyword arguments for ``redis.asyncio.Redis.from_url``: a ``rediss://`` URL verifies the
    server's certificate and host name, against ``ca_file`` when given (else the system CAs)."""
    if not url.startswith("rediss://"):
        return {}
    options: dict[str, Any] = {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
    if ca_file:
        options["ssl_ca_certs"] = ca_file
    return options
