"""Throwaway PostgreSQL and Redis servers for tests and benchmarks.

Each server runs as a child process of the test run, on a free loopback port, in a
temporary directory created at run time and removed by ``cleanup()``. Nothing
pre-existing is assumed: the binaries come from Debian's ``postgresql`` and
``redis-server`` packages (``scripts/install_services.sh``). When they are missing,
starting a server raises ``ServiceBinaryMissing`` so the tests fail rather than skip.

PostgreSQL refuses to run as root, so when the tests run as root the cluster belongs
to the ``postgres`` system user (or ``nobody``) and its processes run under that uid.
The cluster keeps ``fsync=on`` and ``synchronous_commit=on``: kill tests rely on real
commit durability. Readiness is polled with a deadline, never slept for.

Both classes work as context managers and as start/stop objects::

    with PostgresServer() as pg:
        pg.dsn            # postgresql://postgres:<password>@127.0.0.1:<port>/postgres
        pg.restart()      # same port, same data: a database restart mid-test
        pg.kill()         # SIGKILL to every server process (a crash); start() recovers

Blocking methods have ``a``-prefixed async twins that run them in a thread, so an
async test can restart a server while its event loop keeps serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

STARTUP_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 30.0
POLL_INTERVAL_SECONDS = 0.02
START_ATTEMPTS = 3  # a free port can be taken by someone else before the server binds it
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = "run scripts/install_services.sh (as root) to install it"


class ServiceError(RuntimeError):
    """A test server could not be started, stopped or reached."""


class ServiceBinaryMissing(ServiceError):
    """A server binary is not installed."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that has initdb, pg_ctl and postgres."""
    candidates = []
    for directory in glob.glob(POSTGRES_BIN_GLOB):
        path = Path(directory)
        if all((path / name).is_file() for name in ("initdb", "pg_ctl", "postgres")):
            match = re.search(r"/(\d+)(?:\.(\d+))?/bin$", directory)
            version = (int(match.group(1)), int(match.group(2) or 0)) if match else (0, 0)
            candidates.append((version, path))
    if not candidates:
        raise ServiceBinaryMissing(
            f"PostgreSQL server binaries not found in {POSTGRES_BIN_GLOB}; {INSTALL_HINT}"
        )
    return max(candidates)[1]


def redis_server_binary() -> Path:
    search_path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/bin", "/usr/sbin"])
    found = shutil.which("redis-server", path=search_path)
    if found is None:
        raise ServiceBinaryMissing(f"redis-server not found; {INSTALL_HINT}")
    return Path(found)


def _log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


class _Service:
    """A server process owned by the test run: start, poll until ready, stop, kill."""

    name = "service"

    def __init__(self) -> None:
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._directory: Path | None = None
        self._log_file: Path | None = None

    # -- lifecycle -------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise ServiceError(f"{self.name} is not running")
        return self._process.pid

    @property
    def directory(self) -> Path:
        if self._directory is None:
            raise ServiceError(f"{self.name} has no directory yet (call start())")
        return self._directory

    def start(self) -> None:
        """Start (first time: create the directory and pick a port); return once it answers."""
        if self.running:
            raise ServiceError(f"{self.name} is already running")
        first = self._directory is None
        if first:
            self._directory = self._create_directory()
            self._log_file = self._directory / f"{self.name}.log"
            self._prepare()
        attempts = START_ATTEMPTS if first else 1
        for attempt in range(1, attempts + 1):
            if first:
                self.port = free_port()
            try:
                self._launch()
                self._wait_ready(time.monotonic() + STARTUP_TIMEOUT_SECONDS)
                return
            except ServiceError:
                self._terminate_group(signal.SIGKILL)
                if attempt == attempts:
                    raise

    def stop(self) -> None:
        """Clean shutdown; falls back to SIGKILL after STOP_TIMEOUT_SECONDS."""
        if self._process is None:
            return
        self._terminate_group(self._stop_signal, STOP_TIMEOUT_SECONDS)

    def kill(self) -> None:
        """SIGKILL every process of the server at once, as a crash would."""
        if self._process is None:
            return
        self._terminate_group(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        """Stop and delete the directory (data included)."""
        self.stop()
        if self._directory is not None:
            shutil.rmtree(self._directory, ignore_errors=True)
            self._directory = None

    async def astart(self) -> None:
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        await asyncio.to_thread(self.kill)

    async def arestart(self) -> None:
        await asyncio.to_thread(self.restart)

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.cleanup()

    # -- for subclasses --------------------------------------------------------------

    _stop_signal = signal.SIGTERM

    def _create_directory(self) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"nova-{self.name}-"))

    def _prepare(self) -> None:
        """One-time setup of the directory before the first launch."""

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _popen_user(self) -> tuple[int, int] | None:
        return None

    def _is_ready(self) -> bool:
        raise NotImplementedError

    # -- internals -------------------------------------------------------------------

    def _launch(self) -> None:
        assert self._log_file is not None
        ids = self._popen_user()
        with open(self._log_file, "ab") as log:
            self._process = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                start_new_session=True,  # its own process group: kill() reaches every backend
                user=ids[0] if ids else None,
                group=ids[1] if ids else None,
                extra_groups=[] if ids else None,
            )

    def _wait_ready(self, deadline: float) -> None:
        assert self._process is not None
        while True:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise ServiceError(
                    f"{self.name} exited with {code} while starting on port {self.port}:\n"
                    + _log_tail(self._log_file or Path())
                )
            if self._is_ready():
                return
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{self.name} on port {self.port} not ready after {STARTUP_TIMEOUT_SECONDS}s:\n"
                    + _log_tail(self._log_file or Path())
                )
            time.sleep(POLL_INTERVAL_SECONDS)  # polling interval of a deadline loop, not a wait for readiness

    def _terminate_group(self, sig: signal.Signals, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        process = self._process
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(STOP_TIMEOUT_SECONDS)
        # Backends of a killed postmaster leave on their own; make sure none survive.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        self._process = None


class PostgresServer(_Service):
    """A throwaway PostgreSQL cluster; ``dsn`` connects as superuser ``postgres`` with a password."""

    name = "postgres"
    _stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, checkpoint, exit

    def __init__(self, max_connections: int = 300) -> None:
        super().__init__()
        self.bin_dir = postgres_bin_dir()
        self.user = "postgres"
        self.password = secrets.token_urlsafe(16)
        self.max_connections = max_connections
        self._owner = self._pick_owner()

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @staticmethod
    def _pick_owner() -> tuple[int, int] | None:
        """PostgreSQL will not run as root: borrow a system user then."""
        if os.geteuid() != 0:
            return None
        for name in ("postgres", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            return entry.pw_uid, entry.pw_gid
        raise ServiceError("running as root and neither a 'postgres' nor a 'nobody' user exists")

    def _popen_user(self) -> tuple[int, int] | None:
        return self._owner

    def _create_directory(self) -> Path:
        directory = super()._create_directory()
        if self._owner is not None:
            os.chown(directory, *self._owner)
            for parent in directory.parents:
                if not parent.stat().st_mode & stat.S_IXOTH:
                    shutil.rmtree(directory, ignore_errors=True)
                    raise ServiceError(
                        f"the PostgreSQL user cannot enter {parent} (mode {oct(parent.stat().st_mode & 0o777)}):"
                        " point TMPDIR at a directory every user can traverse, e.g. /tmp"
                    )
        return directory

    def _prepare(self) -> None:
        password_file = self.directory / "password"
        password_file.write_text(self.password + "\n")
        if self._owner is not None:
            os.chown(password_file, *self._owner)
        command = [
            str(self.bin_dir / "initdb"),
            "--pgdata", str(self.data_dir),
            "--username", self.user,
            "--pwfile", str(password_file),
            "--auth-local", "trust",
            "--auth-host", "scram-sha-256",
            "--encoding", "UTF8",
            "--locale", "C",
            "--no-sync",  # initdb's own final fsync only; the server itself runs with fsync=on
        ]  # fmt: skip
        result = subprocess.run(
            command,
            cwd=self.directory,
            capture_output=True,
            check=False,
            user=self._owner[0] if self._owner else None,
            group=self._owner[1] if self._owner else None,
            extra_groups=[] if self._owner else None,
        )
        password_file.unlink()
        if result.returncode != 0:
            detail = result.stderr.decode(errors="replace")
            raise ServiceError(f"initdb failed ({result.returncode}):\n{detail}")

    def _command(self) -> list[str]:
        return [
            str(self.bin_dir / "postgres"),
            "-D", str(self.data_dir),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.directory}",
            "-c", f"max_connections={self.max_connections}",
            "-c", "fsync=on",
            "-c", "synchronous_commit=on",
            "-c", "full_page_writes=on",
            "-c", "log_min_messages=warning",
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        """pg_isready: the server accepts connections (not just the port being open)."""
        pg_isready = self.bin_dir / "pg_isready"
        if not pg_isready.is_file():
            raise ServiceBinaryMissing(f"{pg_isready} not found; {INSTALL_HINT}")
        result = subprocess.run(
            [str(pg_isready), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-d", "postgres", "-t", "2"],
            capture_output=True,
            check=False,
        )
        return result.returncode == 0


class RedisServer(_Service):
    """A throwaway Redis without persistence; ``url`` is ``redis://127.0.0.1:<port>/0``."""

    name = "redis"

    def __init__(self) -> None:
        super().__init__()
        self.binary = redis_server_binary()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _command(self) -> list[str]:
        return [
            str(self.binary),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--dir", str(self.directory),
            "--logfile", "",
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        """A PING answered with PONG (a LOADING error or refused connection means not yet)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


KAFKA_INSTALL_HINT = "run scripts/install_kafka.sh (part of scripts/setup.sh) to install it"


def kafka_libs_dir() -> Path:
    """The broker's jars, copied from Maven Central by scripts/install_kafka.sh into the cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nova-collab"
    candidates = sorted(cache.glob("kafka-*/libs"))
    found = [path for path in candidates if any(path.glob("kafka_2.13-*.jar"))]
    if not found:
        raise ServiceBinaryMissing(f"Kafka jars not found under {cache}/kafka-*/libs; {KAFKA_INSTALL_HINT}")
    return found[-1]


class KafkaServer(_Service):
    """A throwaway single-node Apache Kafka broker (KRaft: broker and controller in one JVM).

    ``bootstrap`` is ``127.0.0.1:<port>``; the controller listens on a second loopback port.
    ``stop()`` + ``start()`` keeps the data (an outage); topics are created on first use
    with ``partitions`` partitions.
    """

    name = "kafka"

    def __init__(self, partitions: int = 4) -> None:
        super().__init__()
        self.libs = kafka_libs_dir()
        self.java = shutil.which("java")
        if self.java is None:
            raise ServiceBinaryMissing(f"java not found; {KAFKA_INSTALL_HINT}")
        self.partitions = partitions
        self.controller_port = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> str:
        return "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
                f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                "controller.listener.names=CONTROLLER",
                "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
                "inter.broker.listener.name=PLAINTEXT",
                f"log.dirs={self.directory / 'data'}",
                f"num.partitions={self.partitions}",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=4",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                "auto.create.topics.enable=true",
                "",
            ]
        )

    def _prepare(self) -> None:
        self.controller_port = free_port()
        # Quiet logging to the process's stdout (the service log file); no log directory.
        (self.directory / "log4j2.properties").write_text(
            "rootLogger.level=WARN\nrootLogger.appenderRef.out.ref=out\n"
            "appender.out.type=Console\nappender.out.name=out\n"
            "appender.out.layout.type=PatternLayout\nappender.out.layout.pattern=%d %p %c: %m%n\n"
        )

    def _launch(self) -> None:
        # The ports are chosen per attempt; the storage is formatted once (the cluster id stays).
        config = self.directory / "server.properties"
        config.write_text(self._config())
        if not (self.directory / "data" / "meta.properties").exists():
            format_command = [
                str(self.java), "-cp", f"{self.libs}/*", "kafka.tools.StorageTool", "format",
                "-t", _kafka_cluster_id(), "-c", str(config),
            ]  # fmt: skip
            result = subprocess.run(
                format_command,
                capture_output=True,
                check=False,
                cwd=self.directory,
            )
            if result.returncode != 0:
                raise ServiceError(
                    f"Kafka storage format failed:\n{result.stdout.decode()}{result.stderr.decode()}"
                )
        super()._launch()

    def _command(self) -> list[str]:
        return [
            str(self.java), "-Xmx512m", "-Xms128m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp", f"{self.libs}/*", "kafka.Kafka", str(self.directory / "server.properties"),
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        """The broker answers a Kafka ApiVersions request on its client port."""
        request = (
            (18).to_bytes(2, "big")  # ApiVersions
            + (0).to_bytes(2, "big")  # version 0
            + (1).to_bytes(4, "big")  # correlation id
            + (4).to_bytes(2, "big")
            + b"nova"
        )
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(len(request).to_bytes(4, "big") + request)
                header = sock.recv(4)
                if len(header) < 4:
                    return False
                body = sock.recv(int.from_bytes(header, "big"))
                return len(body) >= 6 and body[4:6] == b"\x00\x00"  # correlation id, error 0
        except OSError:
            return False


def _kafka_cluster_id() -> str:
    """A random cluster id: 16 bytes, URL-safe base64 without padding (what Kafka expects)."""
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


S3PROXY_INSTALL_HINT = "run scripts/install_s3proxy.sh (part of scripts/setup.sh) to install it"


def s3proxy_libs_dir() -> Path:
    """S3Proxy's jars, copied from Maven Central by scripts/install_s3proxy.sh into the cache."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nova-collab"
    found = [path for path in sorted(cache.glob("s3proxy-*/libs")) if any(path.glob("s3proxy-*.jar"))]
    if not found:
        raise ServiceBinaryMissing(
            f"S3Proxy jars not found under {cache}/s3proxy-*/libs; {S3PROXY_INSTALL_HINT}"
        )
    return found[-1]


class S3ProxyServer(_Service):
    """A throwaway S3-compatible server (S3Proxy on its filesystem backend) on loopback.

    ``endpoint`` is ``http://127.0.0.1:<port>``; ``access_key``/``secret_key`` sign requests
    (AWS v4). ``stop()`` + ``start()`` keeps the objects (an outage).
    """

    name = "s3proxy"

    def __init__(self) -> None:
        super().__init__()
        self.libs = s3proxy_libs_dir()
        self.java = shutil.which("java")
        if self.java is None:
            raise ServiceBinaryMissing(f"java not found; {S3PROXY_INSTALL_HINT}")
        self.access_key = "nova-test"
        self.secret_key = secrets.token_urlsafe(24)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    def _prepare(self) -> None:
        self.data_dir.mkdir()

    def _launch(self) -> None:
        # Written per launch: the port is chosen per attempt.
        (self.directory / "s3proxy.properties").write_text(
            "\n".join(
                [
                    f"s3proxy.endpoint={self.endpoint}",
                    "s3proxy.authorization=aws-v2-or-v4",
                    f"s3proxy.identity={self.access_key}",
                    f"s3proxy.credential={self.secret_key}",
                    "jclouds.provider=filesystem",
                    f"jclouds.filesystem.basedir={self.data_dir}",
                    "",
                ]
            )
        )
        super()._launch()

    def _command(self) -> list[str]:
        return [
            str(self.java), "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
            "-cp", f"{self.libs}/*", "org.gaul.s3proxy.Main",
            "--properties", str(self.directory / "s3proxy.properties"),
        ]  # fmt: skip

    def _is_ready(self) -> bool:
        """The server answers an HTTP request (403 without a signature is an answer)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return sock.recv(12).startswith(b"HTTP/1.1")
        except OSError:
            return False
