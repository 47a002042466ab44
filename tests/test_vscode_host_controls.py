"""Host controls, the shared terminal and read-only guests, end to end in two real code-server
workbenches (host + guest) against a hub with auth: the host approves or refuses joiners,
removes a guest (connections closed, the old token refused), ends the session; a read-only
guest cannot type in a shared file; the host's terminal output reaches the guest, who may type
in it only while the host allows it (the hub refuses the keystrokes otherwise)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.auth import mint
from tests.support.hub import HubProcess
from tests.test_vscode_extension import (
    ARTIFACTS,
    CLIENT,
    CODE_SERVER,
    WORKBENCH,
    CodeServer,
    Editor,
    build_vsix,
)

SECRET = "host-controls-e2e-secret-long-enough-for-hs256"
ADMIN = mint(SECRET, "root", [("*", "admin")], ttl_seconds=24 * 3600)
WRITE_ACCESS = "Who may type in the shared terminal?"


def configure(server: CodeServer, **settings: Any) -> None:
    path = server.root / "data" / "User" / "settings.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **settings}))


async def until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} not reached within {timeout}s"
        await asyncio.sleep(0.1)


@pytest.mark.timeout(900)
async def test_host_controls_terminal_and_read_only_guest(tmp_path: Path) -> None:
    assert CODE_SERVER.exists(), "code-server is missing: run scripts/setup.sh"
    assert shutil.which("chromium") is not None, "chromium is missing: run scripts/setup.sh"
    ARTIFACTS.mkdir(exist_ok=True)
    hub = HubProcess(tmp_path, store="memory", auth_secret=SECRET).start()
    host_token = mint(SECRET, "host", [("nova-session/*", "admin")], ttl_seconds=24 * 3600)
    vsix = build_vsix()
    host = CodeServer(tmp_path, "Host", hub, vsix)
    guest = CodeServer(tmp_path, "Guest", hub, vsix)
    # The DOM renderer: the test reads the terminals' rows.
    configure(host, **{"nova.token": host_token, "terminal.integrated.gpuAcceleration": "off"})
    configure(guest, **{"terminal.integrated.gpuAcceleration": "off"})
    (host.folder / "hello.py").write_text("def greet():\n    return 'hi'\n")

    def api(method: str, path: str, token: str = ADMIN, **body: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{hub.http}{path}",
            json=body or None,
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )

    process = await asyncio.create_subprocess_exec(
        "node",
        str(WORKBENCH),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=CLIENT,
        env={**os.environ, "NOVA_ARTIFACTS": str(ARTIFACTS)},
    )
    browser = Editor(process)

    async def ui(op: str, **args: Any) -> Any:
        """A workbench step; a busy machine gets a generous deadline (the step's own is 90 s)."""
        return await browser.call(op, 150, **args)

    try:
        host.start()
        guest.start()
        await ui("launch")
        await ui("open", page="host", url=host.url)
        await ui("open", page="guest", url=guest.url)
        await ui("command", page="host", title="Nova Collab: Start Session (Share Folder)")

        def session_ids() -> list[str]:
            names = [d["name"] for d in api("GET", "/api/documents").json()["documents"]]
            return [n.split("/")[1] for n in names if re.fullmatch(r"nova-session/[a-z0-9]+", n)]

        await until(lambda: bool(session_ids()), "the host's session on the hub")
        session = session_ids()[0]
        base = f"/api/sessions/{session}"
        link = f"code-oss://nova-collab.nova-collab/join?hub={hub.ws}&session={session}"

        # -- approve (read-only): the guest's window reopens on the shared folder ----------------
        await ui(
            "command_input",
            page="guest",
            title="Nova Collab: Join",
            placeholder="notes.md",
            input=link,
        )
        await ui("click_notification", page="host", text="Guest asks to join", button="Allow read-only")
        await ui("open_explorer_file", page="guest", file="hello.py", timeoutMs=120_000)
        await ui("wait_editor_contains", page="guest", text="return 'hi'", timeoutMs=90_000)
        guests = api("GET", f"{base}/participants", token=host_token).json()["participants"]
        assert [(g["name"], g["role"]) for g in guests] == [("Guest", "read")]

        # -- a read-only guest cannot type: the editor refuses, the hub keeps the text -----------
        document = f"nova-session/{session}/hello.py"
        await ui("click_editor", page="guest", line=0, end=True)
        await ui("type", page="guest", text="XYZ")
        # Something that must arrive after the keys: the host's edit (then the keys had their chance).
        version = api("GET", f"/api/documents/{document}/text").json()["version"]
        edit = api(
            "POST",
            f"/api/documents/{document}/edits",
            version=version,
            edits=[{"start": 0, "end": 0, "text": "# host\n"}],
        )
        assert edit.status_code == 200, edit.text
        await ui("wait_editor_contains", page="guest", text="# host", timeoutMs=90_000)
        shown = await ui("editor_text", page="guest")
        assert "XYZ" not in shown, shown
        text = api("GET", f"/api/documents/{document}/text").json()["text"]
        assert text == "# host\ndef greet():\n    return 'hi'\n", text

        # -- the shared terminal: the host's output reaches the guest live ---------------------
        await ui("command", page="host", title="Nova Collab: Share Terminal")
        await ui("focus_terminal", page="host")
        await ui("type", page="host", text="echo nova-$((6*7))\n")
        await ui("wait_terminal_contains", page="host", text="nova-42")
        await ui("wait_terminal_contains", page="guest", text="nova-42")
        # The command palette's Escape must not reach the host's shell (readline: Esc + key = Meta-key).
        await ui("focus_explorer", page="host")

        # A guest without write access types: the hub refuses the keystrokes.
        await ui("focus_terminal", page="guest")
        await ui("type", page="guest", text="touch refused.txt\n")
        await ui("wait_terminal_contains", page="guest", text="the hub refused your keystrokes")
        assert not (host.folder / "refused.txt").exists()

        # The host lets the guest type: its command runs in the host's shell.
        await ui(
            "command_input",
            page="host",
            title="Nova Collab: Terminal Write Access",
            placeholder=WRITE_ACCESS,
            input="Guest",
        )
        await ui("wait_terminal_contains", page="guest", text="lets you type")
        await ui("focus_terminal", page="guest")
        await ui("type", page="guest", text="echo from-guest > from-guest.txt\n")
        written = host.folder / "from-guest.txt"
        await until(
            lambda: written.exists() and written.read_text() == "from-guest\n", "the guest's command ran"
        )
        # ... and takes it back: the hub refuses again.
        await ui(
            "command_input",
            page="host",
            title="Nova Collab: Terminal Write Access",
            placeholder=WRITE_ACCESS,
            input="Nobody (read-only",
        )
        await ui("wait_terminal_contains", page="guest", text="read-only for you")
        await ui("focus_terminal", page="guest")
        await ui("type", page="guest", text="touch after-revoke.txt\n")
        await ui(
            "wait_terminal_contains",
            page="guest",
            text="the hub refused your keystrokes",
            after="read-only for you",
        )
        await ui("screenshot", page="guest", path=str(ARTIFACTS / "vscode-guest-terminal.png"))

        # -- remove: the guest's connections close, its old token is refused ------------------
        await ui(
            "command_input",
            page="host",
            title="Nova Collab: Remove Participant",
            placeholder="Remove whom from the session?",
            input="Guest",
        )
        await ui("wait_notification", page="guest", text="The host removed you")
        assert api("GET", f"{base}/participants", token=host_token).json()["participants"] == []
        assert not (host.folder / "after-revoke.txt").exists()

        # Joining again: the hub refuses the kept token, the guest asks anew, the host refuses.
        await ui(
            "command_input",
            page="guest",
            title="Nova Collab: Join",
            placeholder="notes.md",
            input=link,
        )
        await ui("click_notification", page="host", text="Guest asks to join", button="Refuse")
        await ui("wait_notification", page="guest", text="refused your request")
        denied = api("GET", "/api/audit?limit=1000").json()["events"]
        assert any(e["action"] == "denied" and "revoked" in str(e["detail"]) for e in denied), denied

        # -- approve (editing), then end the session for everyone ----------------------------
        await ui(
            "command_input",
            page="guest",
            title="Nova Collab: Join",
            placeholder="notes.md",
            input=link,
        )
        await ui("click_notification", page="host", text="Guest asks to join", button="Allow editing")
        await until(
            lambda: (
                [
                    (g["name"], g["role"])
                    for g in api("GET", f"{base}/participants", token=host_token).json()["participants"]
                ]
                == [("Guest", "write")]
            ),
            "the guest approved for editing",
        )
        deadline = time.monotonic() + 60
        while not any("connected" in s for s in await ui("status_text", page="guest")):
            assert time.monotonic() < deadline, await ui("status_text", page="guest")
            await asyncio.sleep(0.2)
        await ui(
            "command_input",
            page="host",
            title="Nova Collab: End Session for Everyone",
            placeholder="End the shared session?",
            input="End the session",
        )
        await ui("wait_notification", page="guest", text="The host ended the session")
        late = httpx.post(f"{hub.http}{base}/requests", json={"name": "Late"}, timeout=10)
        assert late.status_code == 410 and late.json()["error"]["code"] == "session_ended"
    except BaseException:
        for page in ("host", "guest"):
            print(f"--- {page} terminal ---")
            print(await ui("terminal_text", page=page))
            await ui("screenshot", page=page, path=str(ARTIFACTS / f"vscode-{page}-host-controls.png"))
            print(f"--- {page} console ---")
            print("\n".join(line for line in await ui("logs", page=page) if "nova-debug" in line)[-5000:])
        raise
    finally:
        await browser.close()
        host.stop()
        guest.stop()
        hub.stop()
