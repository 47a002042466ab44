"""Every code block of README.md runs as written.

How each kind runs (the blocks' text is never edited, with one documented exception):
- ``sh`` blocks run under bash from the repository root. A block that starts a server
  (``scripts/run-hub.sh``, ``load_tests/cluster.py``) runs until what it serves answers, is
  checked, then stopped with SIGTERM. The hub's documented address is 127.0.0.1:1234; tests
  run in parallel with other suites on one machine, so the hub gets a free port through its
  own environment variable (``NOVA_PORT``) and a temporary store (``NOVA_STORE``).
- ``python`` blocks run as in ``python3 -m asyncio`` (top-level ``await``), against that hub:
  the one exception to "as written" is ``127.0.0.1:1234`` replaced by the hub's free port.
- ``js`` blocks run under node with the yjs packages of ``tests/js`` (Node 20 has no global
  WebSocket: the ``ws`` package is installed as ``globalThis.WebSocket`` first), same port.
- ``text`` and unlabelled blocks are not code (the architecture diagram, a JSON shape).
- ``scripts/test.sh`` is the suite that runs this test: it is not started from inside itself.
A block this table does not know fails the test: add how it runs here.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from collab_server.client import YClient
from tests.support.hub import REPO, free_port
from tests.support.waiting import eventually

README = REPO / "README.md"
DOCUMENTED_ADDRESS = "127.0.0.1:1234"
START_TIMEOUT = 120.0  # run-hub.sh runs the (idempotent) set-up check first


@dataclass(frozen=True)
class Block:
    language: str
    code: str
    line: int


def readme_blocks() -> list[Block]:
    blocks = []
    lines = README.read_text(encoding="utf-8").splitlines()
    opened: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(lines, 1):
        fence = re.match(r"^```(\S*)\s*$", line)
        if fence and opened is None:
            opened, body = (fence.group(1), number), []
        elif line.startswith("```") and opened is not None:
            blocks.append(Block(opened[0], "\n".join(body) + "\n", opened[1]))
            opened = None
        elif opened is not None:
            body.append(line)
    assert opened is None, "README.md has an unclosed code block"
    return blocks


class Background:
    """A block run as a server: its own process group, stopped with SIGTERM."""

    def __init__(self, code: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                ["bash", "-c", code],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_until(self, ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"{what}: the block exited with {self.process.returncode}:\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} not reached within {START_TIMEOUT}s:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=0.5).status_code < 500
    except httpx.HTTPError:
        return False


def hub_env(tmp_path: Path, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOVA_")}
    return {
        **env,
        "NOVA_PORT": str(port),
        "NOVA_STORE": f"sqlite:///{tmp_path / f'readme-{port}.sqlite3'}",
        "NOVA_SEARCH": "off",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


@pytest.fixture(scope="module")
def readme_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """The README's first block, `scripts/run-hub.sh`, as written (one for this module); yields its port."""
    tmp_path = tmp_path_factory.mktemp("readme-hub")
    run_hub = [b for b in readme_blocks() if b.language == "sh" and b.code.strip() == "scripts/run-hub.sh"]
    assert len(run_hub) == 1, "the README's run-hub block changed: update this test"
    port = free_port()
    server = Background(run_hub[0].code, hub_env(tmp_path, port), tmp_path / "run-hub.log")
    try:
        server.wait_until(
            lambda: answers(f"http://127.0.0.1:{port}/healthz"), "the hub of scripts/run-hub.sh"
        )
        yield port
    finally:
        server.stop()


def on_port(code: str, port: int) -> str:
    return code.replace(DOCUMENTED_ADDRESS, f"127.0.0.1:{port}")


RUN_WITH_TOP_LEVEL_AWAIT = """
import ast, asyncio, sys, types
code = compile(sys.stdin.read(), "<README block>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
result = eval(code, {"__name__": "__main__"})
if isinstance(result, types.CoroutineType):
    asyncio.run(result)
"""


async def run_python(code: str, timeout: float = 60.0) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RUN_WITH_TOP_LEVEL_AWAIT,
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(code.encode()), timeout)
    assert process.returncode == 0, f"README block failed:\n{code}\n{output.decode(errors='replace')}"


def text_of(port: int, document: str) -> str:
    """The document's text ("" before it exists: blocks of this module share one hub)."""
    response = httpx.get(f"http://127.0.0.1:{port}/api/documents/{document}/text", timeout=5)
    if response.status_code == 404:
        return ""
    return str(response.json().get("text")) if response.status_code == 200 else f"<{response.status_code}>"


def blocks_like(language: str, marker: str) -> list[Block]:
    return [b for b in readme_blocks() if b.language == language and marker in b.code]


# Blocks that start a server (each has its own test below) and the suite itself.
SERVER_MARKERS = ("load_tests/cluster.py", "NOVA_AUTH_SECRET")
NOT_RUN_HERE = "scripts/test.sh"
# Python and js blocks with a test of their own effect below; other python blocks just run.
CHECKED_MARKERS = {"js": ("WebsocketProvider", "HocuspocusProvider"), "python": ("YClient(", "AgentSession(")}


def is_server(block: Block) -> bool:
    return block.code.strip() == "scripts/run-hub.sh" or any(m in block.code for m in SERVER_MARKERS)


@pytest.mark.fast
def test_every_readme_block_has_a_runner() -> None:
    for block in readme_blocks():
        if block.language in ("", "text", "sh", "python"):
            continue  # not code; sh and python blocks all run (below)
        markers = CHECKED_MARKERS.get(block.language, ())
        assert any(m in block.code for m in markers), (
            f"README.md line {block.line}: no runner for this {block.language!r} block:\n{block.code}"
        )


def test_plain_sh_blocks_run_to_completion(tmp_path: Path) -> None:
    """Every sh block that is not a server (nor the suite itself) exits 0, as written."""
    plain = [
        b
        for b in readme_blocks()
        if b.language == "sh" and not is_server(b) and b.code.strip() != NOT_RUN_HERE
    ]
    for block in plain:
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", block.code],
            cwd=REPO,
            env=hub_env(tmp_path, free_port()),
            capture_output=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, (
            f"README.md line {block.line} failed:\n{block.code}\n{result.stdout.decode()}{result.stderr.decode()}"
        )


async def test_other_python_blocks_run(readme_hub: int) -> None:
    for block in readme_blocks():
        if block.language == "python" and not any(m in block.code for m in CHECKED_MARKERS["python"]):
            await run_python(on_port(block.code, readme_hub))


async def test_python_client_block_stores_its_edit(readme_hub: int) -> None:
    (block,) = blocks_like("python", "YClient(")
    await run_python(on_port(block.code, readme_hub))
    # The edit made just before leaving the block was sent (the client flushes before closing).
    await eventually(
        lambda: text_of(readme_hub, "my-document") == "hello from Python", what="the block's edit"
    )


async def test_agent_sdk_block_fixes_a_typo(readme_hub: int) -> None:
    (block,) = blocks_like("python", "AgentSession(")
    async with YClient(f"ws://127.0.0.1:{readme_hub}/notes.md") as person:
        await person.wait_synced()
        person.text += "fix teh typo"
        agent = asyncio.create_task(run_python(on_port(block.code, readme_hub)))
        await person.wait_for(lambda c: str(c.text) == "fix the typo", timeout=30)
        person.text += "!"  # the block then waits for one change and ends
        await asyncio.wait_for(agent, 60)


@pytest.mark.parametrize(
    ("marker", "document", "expected"),
    [
        ("WebsocketProvider", "my-document", "hello"),
        ("HocuspocusProvider", "team/plan", "hello from Hocuspocus"),
    ],
    ids=["y-websocket", "hocuspocus"],
)
async def test_js_block_edits_through_its_provider(
    readme_hub: int, tmp_path: Path, marker: str, document: str, expected: str
) -> None:
    (block,) = blocks_like("js", marker)
    js_dir = REPO / "tests" / "js"
    preload = tmp_path / "websocket-global.mjs"
    ws_module = (js_dir / "node_modules" / "ws" / "wrapper.mjs").as_uri()
    preload.write_text(f"import WebSocket from '{ws_module}';\nglobalThis.WebSocket = WebSocket;\n")
    process = await asyncio.create_subprocess_exec(
        "node",
        "--import",
        preload.as_uri(),
        "--input-type=module",
        cwd=js_dir,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert process.stdin is not None and process.stdout is not None
    before = text_of(readme_hub, document)
    wanted = (expected + before, before + expected)  # at the start or the end of what is there
    process.stdin.write(on_port(block.code, readme_hub).encode())
    process.stdin.close()
    try:
        await eventually(
            lambda: text_of(readme_hub, document) in wanted or process.returncode is not None,
            timeout=20,
            what="the js edit",
        )
    finally:
        if process.returncode is None:
            process.terminate()
        await process.wait()
    output = (await process.stdout.read()).decode(errors="replace")
    assert text_of(readme_hub, document) in wanted, output


def test_auth_block_mints_tokens_and_starts_a_hub_that_requires_them(tmp_path: Path) -> None:
    (block,) = blocks_like("sh", "NOVA_AUTH_SECRET")
    port = free_port()
    server = Background(block.code, hub_env(tmp_path, port), tmp_path / "auth-block.log")
    try:
        url = f"http://127.0.0.1:{port}/api/documents"
        server.wait_until(lambda: answers(url), "the hub of the auth block")
        assert httpx.get(url).status_code == 401
        tokens = re.findall(r"^ey[\w-]+\.[\w-]+\.[\w-]+$", server.output(), flags=re.MULTILINE)
        assert len(tokens) == block.code.count("collab-server token"), server.output()
        assert httpx.get(url, headers={"authorization": f"Bearer {tokens[-1]}"}).status_code == 200
    finally:
        server.stop()


def test_cluster_block_starts_three_nodes(tmp_path: Path) -> None:
    (block,) = blocks_like("sh", "load_tests/cluster.py")
    server = Background(block.code, hub_env(tmp_path, free_port()), tmp_path / "cluster-block.log")
    try:
        server.wait_until(lambda: "Ctrl-C to stop." in server.output(), "the cluster block")
        nodes = re.findall(r"HTTP (http://127\.0\.0\.1:\d+)", server.output())
        assert len(nodes) == 3
        assert all(httpx.get(f"{node}/readyz", timeout=5).status_code == 200 for node in nodes)
    finally:
        server.stop()
