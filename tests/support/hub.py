"""The hub as a real process on a free loopback port, started through its own CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]


def collab_cli(*args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """``collab-server ARGS`` run from the repo root, output captured; the caller checks the exit code."""
    return subprocess.run(
        [sys.executable, "-m", "collab_server", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class HubProcess:
    """``collab-server serve`` in a subprocess; logs go to a file in the test's temp dir."""

    def __init__(
        self, workdir: Path, *, store: str | None = None, port: int | None = None, **options: object
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        self.store = store or f"sqlite:///{workdir / 'hub.sqlite3'}"
        # Search loads chromadb and a model (seconds of CPU): off unless a test asks for it.
        self.options = {"search": "off", **options}
        self.log_path = workdir / f"hub-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def url(self, document: str) -> str:
        return f"{self.ws}/{document}"

    def command(self) -> list[str]:
        args = [
            sys.executable,
            "-m",
            "collab_server",
            "serve",
            "--port",
            str(self.port),
            "--store",
            self.store,
        ]
        for key, value in self.options.items():
            flag = "--" + key.replace("_", "-")
            if isinstance(value, bool):
                args.append(flag if value else "--no-" + flag[2:])
            else:
                args += [flag, str(value)]
        return args

    # Generous: under a loaded machine (the suite beside other work) the hub's imports alone
    # take seconds; a healthy hub answers long before this and the wait ends at once.
    def start(self, timeout: float = 60.0) -> HubProcess:
        self.starts += 1
        log = self.log_path.open("ab")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(self.command(), stdout=log, stderr=log, cwd=REPO, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"hub exited with {self.process.returncode}:\n{self.log()}")
            try:
                if httpx.get(f"{self.http}/healthz", timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()  # not left running behind a failed fixture
        raise TimeoutError(f"hub not healthy within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate()
            except subprocess.TimeoutExpired:
                self.kill()

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.http}{path}", timeout=10)

    def text(self, document: str) -> str:
        response = self.get(f"/api/documents/{document}/text")
        response.raise_for_status()
        text: str = response.json()["text"]
        return text
