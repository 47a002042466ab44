"""PostgreSQL and Redis that accept TLS connections only, with a certificate from a test CA."""

from __future__ import annotations

import os
import shutil
import socket
import ssl

from tests.support.certificates import CertificateAuthority
from tests.support.services import PostgresServer, RedisServer


class TlsPostgresServer(PostgresServer):
    """``ssl=on`` with the CA's certificate; pg_hba refuses every TCP connection without TLS."""

    def __init__(self, authority: CertificateAuthority) -> None:
        super().__init__(max_connections=50)
        self.authority = authority

    def _prepare(self) -> None:
        super()._prepare()
        issued = self.authority.issue("postgres-server", directory=self.directory)
        hba = self.data_dir / "pg_hba.conf"
        hba.write_text(
            "local all all trust\n"
            "hostssl all all 127.0.0.1/32 scram-sha-256\n"
            "hostnossl all all 127.0.0.1/32 reject\n"
        )
        owner = self._popen_user()
        for path in (issued.certfile, issued.keyfile, hba):
            if owner is not None:
                os.chown(path, *owner)
        self.certfile, self.keyfile = issued.certfile, issued.keyfile

    def _command(self) -> list[str]:
        return [
            *super()._command(),
            "-c", "ssl=on",
            "-c", f"ssl_cert_file={self.certfile}",
            "-c", f"ssl_key_file={self.keyfile}",
        ]  # fmt: skip


class TlsRedisServer(RedisServer):
    """Redis on a TLS port only (``--port 0``); clients are not asked for certificates."""

    def __init__(self, authority: CertificateAuthority) -> None:
        super().__init__()
        self.authority = authority

    @property
    def url(self) -> str:
        return f"rediss://127.0.0.1:{self.port}/0"

    def _prepare(self) -> None:
        issued = self.authority.issue("redis-server", directory=self.directory)
        self.certfile, self.keyfile = issued.certfile, issued.keyfile
        shutil.copy(self.authority.cafile, self.directory / "ca.pem")

    def _command(self) -> list[str]:
        plain = super()._command()
        port_at = plain.index("--port")
        return [
            *plain[:port_at], "--port", "0", "--tls-port", str(self.port), *plain[port_at + 2 :],
            "--tls-cert-file", str(self.certfile),
            "--tls-key-file", str(self.keyfile),
            "--tls-ca-cert-file", str(self.directory / "ca.pem"),
            "--tls-auth-clients", "no",
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        context = self.authority.client_context()
        try:
            with (
                socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as raw,
                context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
            ):
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except (OSError, ssl.SSLError):
            return False
