"""Host controls, the shared terminal and read-only guests, end to end in two real code-server
workbenches (host + guest) against a hub with auth: the host approves or refuses joiners,
removes a guest (connections closed, the old token refused), ends the session; a read-only
guest cannot type in a shared file; the host's terminal output reaches the guest, who may type
in it only while the host allows it (the hub refuses the keystrokes otherwise)."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.auth import mint
from tests.support.hub import HubProcess
from tests.vscode_harness import (
    ARTIFACTS,
    GUIDE,
    CodeServer,
    join_link,
    session_ids,
    until,
    workbenches,
)

SECRET = "host-controls-e2e-secret-long-enough-for-hs256"
ADMIN = mint(SECRET, "root", [("*", "admin")], ttl_seconds=24 * 3600)
HOST_TOKEN = mint(SECRET, "host", [("nova-session/*", "admin")], ttl_seconds=24 * 3600)
WRITE_ACCESS = "Who may type in the shared terminal?"


@pytest.fixture
def auth_hub(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path, store="memory", auth_secret=SECRET).start()
    yield hub
    hub.stop()


def host_with_token(server: CodeServer) -> None:
    """The host holds a token; the guest has none (it asks the host to let it in). The DOM
    renderer for terminals: the test reads their rows."""
    server.configure(**{"terminal.integrated.gpuAcceleration": "off"})
    if server.name == "Host":
        server.configure(**{"nova.token": HOST_TOKEN})
        (server.folder / "hello.py").write_text("def greet():\n    return 'hi'\n")


@pytest.mark.timeout(900)
async def test_host_controls_terminal_and_read_only_guest(tmp_path: Path, auth_hub: HubProcess) -> None:
    hub = auth_hub
    host_token = HOST_TOKEN

    def api(method: str, path: str, token: str = ADMIN, **body: Any) -> httpx.Response:
        return httpx.request(
            method,
            f"{hub.http}{path}",
            json=body or None,
            headers={"authorization": f"Bearer {token}"},
            timeout=10,
        )

    async with workbenches(tmp_path, hub, prepare=host_with_token) as bench:
        ui, host = bench.ui, bench.host
        await ui("command", page="host", title="Nova Collab: Start Session (Share Folder)")

        def sessions() -> list[str]:
            return session_ids([d["name"] for d in api("GET", "/api/documents").json()["documents"]])

        session = (await until(sessions, "the host's session on the hub"))[0]
        base = f"/api/sessions/{session}"
        link = join_link(hub, session)

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
        # VS Code itself refuses the keys: its read-only editor says so (the guide's screenshot).
        await ui("wait_text", page="guest", selector=".monaco-editor-overlaymessage", text="read-only")
        await ui("screenshot", page="guest", path=str(GUIDE / "read-only-guest.png"))
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
        # The shell's pty has the size of the host's terminal panel (no fixed 120x32), and the
        # guest's view is told that size.
        await ui("type", page="host", text="stty size\n")

        async def shared_size() -> tuple[int, int] | None:
            found = re.findall(r"^(\d+) (\d+) *$", await ui("terminal_text", page="guest"), re.MULTILINE)
            return (int(found[-1][0]), int(found[-1][1])) if found else None

        rows, columns = await until(shared_size, "the output of stty size in the guest's view")
        host_rows = len((await ui("terminal_text", page="host")).split("\n"))
        assert rows == host_rows and (rows, columns) != (32, 120), (rows, columns, host_rows)
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

        # -- the new role takes effect in the editor that stayed open (read-only until now) ----
        def hub_text() -> str:
            text: str = api("GET", f"/api/documents/{document}/text").json()["text"]
            return text

        assert (await ui("active_tab", page="guest")) == "hello.py"
        deadline = time.monotonic() + 60
        while "# guest can edit" not in hub_text():
            # The editor becomes writable once the rejoined session is live: until then VS Code
            # drops the keys (nothing reaches the hub), so they are typed again.
            assert time.monotonic() < deadline, (hub_text(), await ui("editor_text", page="guest"))
            await ui("click_editor", page="guest", line=0, end=True)
            await ui("type", page="guest", text=" # guest can edit")
            try:
                await until(lambda: "# guest can edit" in hub_text(), "the guest's edit on the hub", timeout=10)
            except AssertionError:
                continue
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
