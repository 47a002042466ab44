"""TLS end to end: the hub serves https/wss with a certificate from a CA made at test time
(reloaded when its files change), and talks to PostgreSQL and Redis over verified TLS."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import grpc
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidMessage

from collab_server.client import YClient
from collab_server.rpc.client import CollabClient
from tests.support.certificates import CertificateAuthority, peer_serial
from tests.support.hub import REPO, HubProcess, free_port
from tests.support.tls_services import TlsPostgresServer, TlsRedisServer
from tests.support.waiting import eventually


class TlsHub(HubProcess):
    """A hub serving TLS: health is probed over https with the test CA."""

    def __init__(self, workdir: Path, authority: CertificateAuthority, **options: object) -> None:
        super().__init__(workdir, **options)
        self.authority = authority

    @property
    def http(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"wss://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> TlsHub:
        self.starts += 1
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(), stdout=log, stderr=log, cwd=REPO, env=dict(os.environ)
        )
        log.close()
        deadline = time.monotonic() + timeout
        context = self.authority.client_context()
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.http}/healthz", timeout=0.5, verify=context).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"hub not healthy within {timeout}s:\n{self.log()}")


def served_serial(port: int, context: ssl.SSLContext) -> int:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as sock,
    ):
        return peer_serial(sock.getpeercert(binary_form=True))


def run_hub(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "collab_server", "serve", "--search", "off", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture
def authority(tmp_path: Path) -> CertificateAuthority:
    return CertificateAuthority(tmp_path / "ca")


async def test_trusted_clients_use_wss_and_https_and_others_are_refused(
    tmp_path: Path, authority: CertificateAuthority
) -> None:
    issued = authority.issue("hub")
    grpc_port = free_port()
    hub = TlsHub(
        tmp_path, authority, tls_certfile=issued.certfile, tls_keyfile=issued.keyfile, grpc_port=grpc_port
    ).start()
    try:
        trusted = authority.client_context()
        # gRPC on its own port uses the same certificate.
        async with CollabClient(
            f"127.0.0.1:{grpc_port}", root_certificates=authority.cafile.read_bytes()
        ) as rpc:
            assert (await rpc.edit("tls-grpc", text="over grpc+tls")).text == "over grpc+tls"
        async with CollabClient(f"127.0.0.1:{grpc_port}", tls=True) as untrusted:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await untrusted.get_document("tls-grpc", timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        async with httpx.AsyncClient(verify=trusted) as http:
            response = await http.get(f"{hub.http}/api/documents")
            assert response.status_code == 200
        async with (
            YClient(hub.url("tls-doc"), ssl_context=trusted) as alice,
            YClient(hub.url("tls-doc"), ssl_context=trusted) as bob,
        ):
            await alice.wait_synced()
            await bob.wait_synced()
            alice.text += "over wss"
            await bob.wait_for(lambda c: str(c.text) == "over wss")

        # A client with only the system CAs does not trust the test CA: refused at the handshake.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{hub.http}/healthz", timeout=5)
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(hub.url("tls-doc"), ssl=ssl.create_default_context()):
                pass
        # A client trusting another CA is refused too, and plain ws:// gets no WebSocket.
        stranger = CertificateAuthority(tmp_path / "other-ca", name="Someone else")
        with pytest.raises(ssl.SSLCertVerificationError):
            async with connect(hub.url("tls-doc"), ssl=stranger.client_context()):
                pass
        with pytest.raises((InvalidHandshake, InvalidMessage, OSError)):
            async with connect(f"ws://127.0.0.1:{hub.port}/tls-doc", open_timeout=5):
                pass
    finally:
        hub.stop()


async def test_renewed_certificate_is_served_without_a_restart(
    tmp_path: Path, authority: CertificateAuthority
) -> None:
    issued = authority.issue("hub")
    grpc_port = free_port()
    hub = TlsHub(
        tmp_path,
        authority,
        tls_certfile=issued.certfile,
        tls_keyfile=issued.keyfile,
        tls_reload_seconds=0.2,
        grpc_port=grpc_port,
    ).start()
    try:
        trusted = authority.client_context()
        assert served_serial(hub.port, trusted) == issued.serial
        async with YClient(hub.url("renew"), ssl_context=trusted) as open_client:
            await open_client.wait_synced()
            # The operator renews: a new CA signs a new pair, written over the old files.
            successor = CertificateAuthority(tmp_path / "new-ca", name="Nova test CA 2")
            renewed = successor.issue("renewed")
            shutil.copy(renewed.keyfile, issued.keyfile)
            shutil.copy(renewed.certfile, issued.certfile)
            new_trust = successor.client_context()

            def serves_renewed() -> bool:
                try:
                    return served_serial(hub.port, new_trust) == renewed.serial
                except (OSError, ssl.SSLError):
                    return False

            await eventually(serves_renewed, timeout=10, what="renewed certificate served")
            assert hub.process is not None and hub.process.poll() is None  # same process
            with pytest.raises(ssl.SSLCertVerificationError):
                served_serial(hub.port, trusted)  # the old CA no longer matches what is served
            # The connection made before the renewal keeps working.
            async with YClient(hub.url("renew"), ssl_context=new_trust) as late:
                await late.wait_synced()
                open_client.text += "still here"
                await late.wait_for(lambda c: str(c.text) == "still here")
        # The gRPC listener serves the renewed pair to new connections too.
        async with CollabClient(
            f"127.0.0.1:{grpc_port}", root_certificates=successor.cafile.read_bytes()
        ) as renewed_rpc:
            assert (await renewed_rpc.edit("renew-grpc", text="renewed")).text == "renewed"
        async with CollabClient(
            f"127.0.0.1:{grpc_port}", root_certificates=authority.cafile.read_bytes()
        ) as old_rpc:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await old_rpc.get_document("renew-grpc", timeout=5)
            assert refused.value.code() is grpc.StatusCode.UNAVAILABLE
        assert "TLS certificate reloaded" in hub.log()
    finally:
        hub.stop()


def test_half_given_or_missing_certificate_is_refused_at_start(tmp_path: Path) -> None:
    result = run_hub("--tls-certfile", str(tmp_path / "cert.pem"), "--store", "memory")
    assert result.returncode == 2
    assert "tls_certfile and tls_keyfile go together" in result.stderr
    missing = tmp_path / "missing.pem"
    result = run_hub("--tls-certfile", str(missing), "--tls-keyfile", str(missing), "--store", "memory")
    assert result.returncode == 2
    assert "no such file" in result.stderr


async def test_postgres_over_verified_tls(tmp_path: Path, authority: CertificateAuthority) -> None:
    with TlsPostgresServer(authority) as postgres:
        database = "tls_store"
        admin = await asyncpg.connect(postgres.dsn, ssl="require")
        try:
            await admin.execute(f'CREATE DATABASE "{database}"')
        finally:
            await admin.close()
        dsn = postgres.dsn_for(database)

        # The server refuses clear-text connections, so a hub told not to use TLS cannot start.
        refused = run_hub("--store", dsn, "--store-ssl-mode", "disable")
        assert refused.returncode == 1, refused.stderr
        assert "not usable" in refused.stderr
        # verify-full against a CA that did not sign the server's certificate: refused too.
        stranger = CertificateAuthority(tmp_path / "other-ca", name="Someone else")
        refused = run_hub(
            "--store", dsn, "--store-ssl-mode", "verify-full", "--store-ssl-root-cert", str(stranger.cafile)
        )
        assert refused.returncode == 1, refused.stderr

        hub = HubProcess(
            tmp_path, store=dsn, store_ssl_mode="verify-full", store_ssl_root_cert=authority.cafile
        ).start()
        try:
            async with YClient(hub.url("pg-tls")) as client:
                await client.wait_synced()
                client.text += "stored over TLS"
                await eventually(
                    lambda: hub.text("pg-tls") == "stored over TLS", what="edit visible through the API"
                )
            check = await asyncpg.connect(postgres.dsn, ssl="require")
            try:
                stored = await check.fetchval(
                    f"SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                    f"WHERE datname = '{database}' AND ssl"
                )
                clear = await check.fetchval(
                    f"SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid) "
                    f"WHERE datname = '{database}' AND NOT ssl"
                )
            finally:
                await check.close()
            assert stored >= 1 and clear == 0
            hub.terminate()
            hub.start()
            assert hub.text("pg-tls") == "stored over TLS"
        finally:
            hub.stop()


async def test_redis_over_verified_tls(tmp_path: Path, authority: CertificateAuthority) -> None:
    with TlsRedisServer(authority) as redis:
        # rediss:// checks the certificate; with the system CAs only, the test CA is not trusted.
        refused = run_hub("--store", "memory", "--redis-url", redis.url)
        assert refused.returncode == 1
        assert "certificate verify failed" in refused.stderr.lower()

        options = {"redis_url": redis.url, "redis_tls_ca_file": authority.cafile}
        first = HubProcess(tmp_path / "a", store="memory", **options)
        second = HubProcess(tmp_path / "b", store="memory", **options)
        for hub in (first, second):
            hub.workdir.mkdir()
        first.start()
        second.start()
        try:
            async with YClient(first.url("redis-tls")) as writer, YClient(second.url("redis-tls")) as reader:
                await asyncio.gather(writer.wait_synced(), reader.wait_synced())
                writer.text += "across nodes over TLS"
                await reader.wait_for(lambda c: str(c.text) == "across nodes over TLS")
        finally:
            first.stop()
            second.stop()
