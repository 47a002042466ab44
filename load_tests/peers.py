"""The servers the suite measures: how to start each on a loopback port, and which versions ran.

Every server is started on 127.0.0.1 and a free port by ``ServerProcess`` (below), answers
``GET /healthz`` with 200 once it listens, and is stopped with SIGTERM (SIGKILL after a
deadline). Nothing here knows about scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
HOST = "127.0.0.1"
READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0

# The hub runs with its default settings, as a newcomer starts it: the default store kind
# (SQLite, in the run's own directory instead of the working directory) and search on.
# Extra flags only where a setting is the point of a row (none by default).
HUB_EXTRA_FLAGS: dict[str, str] = {}
# "hub-memory": the one variant row, where the setting is the point: nothing persisted,
# as the peers run here (they keep documents in memory only), so relaying is compared alone.
HUB_VARIANT_FLAGS: dict[str, dict[str, str]] = {"hub-memory": {"--store": "memory"}}
# "hub-base": the same default hub run from another checkout (``NOVA_BASE_CHECKOUT``, e.g. a
# worktree of main), so a change is compared with the code before it in the same run.
BASE_CHECKOUT_ENV = "NOVA_BASE_CHECKOUT"


@dataclass(frozen=True)
class Peer:
    """One server kind: its name in tables, the load generator's protocol, how to start it."""

    name: str
    label: str
    protocol: str  # "y-websocket" or "hocuspocus" (the load generator's --protocol)
    runtime: str  # "python" or "node"

    def command(self, port: int, node: str, data_dir: Path) -> list[str]:
        # One hub program for every hub row; the load generator picks the protocol.
        if self.name in ("hub", "hub-base", "hub-hocuspocus") or self.name in HUB_VARIANT_FLAGS:
            args = [sys.executable, "-m", "collab_server", "serve", "--host", HOST, "--port", str(port)]
            flags = {"--store": f"sqlite:///{data_dir / 'hub.sqlite3'}", **HUB_EXTRA_FLAGS}
            for flag, value in (flags | HUB_VARIANT_FLAGS.get(self.name, {})).items():
                args += [flag, value]
            return args
        if self.name == "pycrdt":
            script = HERE / "servers" / "pycrdt_ws_server.py"
            return [sys.executable, str(script), "--host", HOST, "--port", str(port)]
        if self.name == "y-websocket":
            return [node, str(HERE / "node_modules" / "@y" / "websocket-server" / "src" / "server.js")]
        if self.name == "hocuspocus":
            script = HERE / "servers" / "hocuspocus.mjs"
            return [node, str(script), "--host", HOST, "--port", str(port)]
        raise ValueError(f"no command for server {self.name!r}")

    def env(self, port: int) -> dict[str, str]:
        extra = {"HOST": HOST, "PORT": str(port)} if self.name == "y-websocket" else {}
        if self.runtime == "python" and self.name != "pycrdt":
            # The hub imports the code of the checkout it measures, not whatever is installed.
            extra["PYTHONPATH"] = str(self.checkout())
        return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}

    def checkout(self) -> Path:
        if self.name != "hub-base":
            return REPO
        base = os.environ.get(BASE_CHECKOUT_ENV)
        if not base:
            raise ValueError(f"hub-base needs {BASE_CHECKOUT_ENV}: a checkout of the code to compare with")
        return Path(base).resolve()


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer("hub", "Nova Collab hub", "y-websocket", "python"),
        Peer("hub-memory", "Nova Collab hub, --store memory", "y-websocket", "python"),
        Peer("hub-base", "Nova Collab hub (defaults) from $NOVA_BASE_CHECKOUT", "y-websocket", "python"),
        Peer("hub-hocuspocus", "Nova Collab hub, Hocuspocus protocol", "hocuspocus", "python"),
        Peer("hocuspocus", "@hocuspocus/server", "hocuspocus", "node"),
        Peer("y-websocket", "@y/websocket-server", "y-websocket", "node"),
        Peer("pycrdt", "pycrdt-websocket", "y-websocket", "python"),
    )
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def tree_cpu_and_rss(proc: psutil.Process) -> tuple[float, int]:
    """User+system CPU seconds and RSS bytes of a process and its children."""
    cpu = 0.0
    rss = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = p.cpu_times()
            cpu += float(times.user + times.system)
            rss += int(p.memory_info().rss)
    return cpu, rss


def _healthz_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


async def wait_healthy(port: int, alive: asyncio.subprocess.Process | None = None) -> None:
    """Poll ``GET /healthz`` until 200, with a deadline; fail early when the process died."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    url = f"http://{HOST}:{port}/healthz"
    while time.monotonic() < deadline:
        if alive is not None and alive.returncode is not None:
            raise RuntimeError(f"server exited with code {alive.returncode} before it was ready")
        if await asyncio.to_thread(_healthz_ok, url):
            return
        await asyncio.sleep(0.1)
    raise TimeoutError(f"server not ready on port {port} after {READY_TIMEOUT_S} s")


class ServerProcess:
    """One server on a free loopback port, as ``async with``: started and healthy inside, stopped after."""

    def __init__(self, peer: Peer, log_path: Path, node: str) -> None:
        self.peer = peer
        self.port = free_port()
        self.log_path = log_path
        self.node = node
        self.proc: asyncio.subprocess.Process | None = None
        self.exit_code: int | None = None

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}"

    @property
    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    async def __aenter__(self) -> ServerProcess:
        data_dir = self.log_path.with_suffix(".data")
        data_dir.mkdir(exist_ok=True)
        with self.log_path.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *self.peer.command(self.port, self.node, data_dir),
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.peer.checkout(),  # `python -m` puts the working directory first on sys.path
                env=self.peer.env(self.port),
                start_new_session=True,
            )
        try:
            await wait_healthy(self.port, self.proc)
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; the exit code is kept in ``exit_code``."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        self.exit_code = proc.returncode


def node_package_version(name: str) -> str | None:
    try:
        meta = json.loads((HERE / "node_modules" / name / "package.json").read_text())
    except (OSError, ValueError):
        return None
    version = meta.get("version")
    return str(version) if version else None


def versions(node: str) -> dict[str, str | None]:
    """Versions of everything measured, for the report (no machine paths)."""
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for dist in ("nova-collab", "pycrdt", "pycrdt-websocket", "uvicorn", "websockets"):
        try:
            found[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            found[dist] = None
    for pkg in ("@hocuspocus/server", "@y/websocket-server", "yjs", "ws"):
        found[pkg] = node_package_version(pkg)
    for key, cmd in (("node", [node, "--version"]), ("git_commit", ["git", "rev-parse", "--short", "HEAD"])):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=HERE, check=True)
            found[key] = out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            found[key] = None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "collab_server", "awareness", "persistence"],
            capture_output=True,
            text=True,
            timeout=10,
            cwd=REPO,
            check=True,
        )
        found["hub_tree"] = "modified" if out.stdout.strip() else "clean"
    base = os.environ.get(BASE_CHECKOUT_ENV)
    if base:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["git", "rev-parse", "--short", "HEAD"],
                check=False,
                capture_output=True,
                text=True,
                timeout=10,
                cwd=base,
            )
            found["base_commit"] = out.stdout.strip() or None
    return found


def ensure_node_modules(*packages: str) -> None:
    """Install the load generator's node packages (``npm ci``) unless ``packages`` are there."""
    if all((HERE / "node_modules" / package).is_dir() for package in packages or ("yjs",)):
        return
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm not found: install Node.js 20 and run `npm ci` in load_tests/")
    print("installing the load generator's node packages (npm ci)...", file=sys.stderr)
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True, timeout=600)


LoadgenEvent = Callable[[dict[str, Any]], Awaitable[None]]


async def drive_loadgen(cmd: list[str], on_event: LoadgenEvent, limit_s: float) -> dict[str, Any]:
    """Run the node load generator (``node/loadgen.mjs``: one JSON object per stdout line).

    ``on_event`` sees every line before the final ``result`` line, which is returned. Raises
    TimeoutError past ``limit_s`` and RuntimeError when the generator ends without a result.
    """
    lg = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=HERE, limit=2**24
    )
    assert lg.stdout is not None and lg.stderr is not None
    stderr_task = asyncio.create_task(lg.stderr.read())
    result: dict[str, Any] = {}
    deadline = time.monotonic() + limit_s
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"load generator still running after {limit_s:.0f} s")
            line = await asyncio.wait_for(lg.stdout.readline(), left)
            if not line:
                break
            event = json.loads(line)
            if event.get("event") == "result":
                result = event
                continue
            await on_event(event)
        await asyncio.wait_for(lg.wait(), 30)
    finally:
        if lg.returncode is None:
            lg.kill()
            await lg.wait()
        stderr = (await stderr_task).decode(errors="replace").strip()
    if not result:
        tail = stderr.splitlines()[-3:] if stderr else []
        raise RuntimeError(f"load generator exited with code {lg.returncode} and no result {tail}")
    return result
