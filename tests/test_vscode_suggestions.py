"""Agent suggestions reviewed in the editor: three participants on a hub that runs with auth.

The host and a guest are two code-server workbenches (the extension's .vsix installed), the
agent is a Python process on the hub's HTTP API. The agent's suggestion shows as a CodeLens
in both workbenches with the author the hub verified (the token's subject, not what the agent
claims) and the model it names; Accept in the guest applies it through the hub (both editors
and the hub change), Reject removes it and leaves the text as it was. The run also takes the
user guide's screenshots (docs/pair-programming.md) into artifacts/guide/.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.agent import AgentSession
from collab_server.auth import mint
from tests.support.hub import HubProcess
from tests.vscode_harness import (
    GUIDE,
    CodeServer,
    join_link,
    session_ids,
    until,
    workbenches,
)

SECRET = "suggestion-review-secret-long-enough-for-hs256!"


def token(subject: str, *, kind: str = "human", role: str = "write") -> str:
    return mint(SECRET, subject, [("*", role)], kind=kind, ttl_seconds=3600)


def with_token(server: CodeServer, value: str) -> CodeServer:
    # The guide's diff screenshot: side by side, whatever the width.
    server.configure(**{"nova.token": value, "diffEditor.useInlineViewWhenSpaceIsLimited": False})
    return server


class Api:
    """The hub's HTTP API as one caller (its bearer token)."""

    def __init__(self, hub: HubProcess, bearer: str) -> None:
        self.hub = hub
        self.headers = {"authorization": f"Bearer {bearer}"}

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.hub.http}{path}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.hub.http}{path}", headers=self.headers, json=body, timeout=10)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def auth_hub(tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess(tmp_path, store="memory", auth_secret=SECRET).start(timeout=60)  # a busy machine
    yield hub
    hub.stop()


def signed_in(server: CodeServer) -> None:
    """Each person with a token of their own; the host's folder has a file to work on."""
    with_token(server, token("human:host" if server.name == "Host" else "human:guest"))
    if server.name == "Host":
        (server.folder / "hello.py").write_text("def greet():\n    return 'hi'\n\n\nprint(greet())\n")
        (server.folder / "README.md").write_text("# demo\n")


@pytest.mark.timeout(600)
async def test_agent_suggestion_accepted_and_rejected_in_the_editor(tmp_path: Path, auth_hub: HubProcess) -> None:
    hub = auth_hub
    admin = Api(hub, token("ops:test", role="admin"))
    agent = Api(hub, token("agent:Fixer", kind="agent"))
    async with workbenches(tmp_path, hub, prepare=signed_in) as bench:
        browser, host = bench.browser, bench.host
        # Host: start a session (the guide's first screenshot: the link is copied).
        await browser.call(
            "command", page="host", title="Nova Collab: Start Session (Share Folder)", timeout=60
        )
        await browser.call(
            "wait_text", page="host", selector=".notifications-toasts", text="Link copied", timeout=60
        )

        def session_id() -> str | None:
            found = session_ids([d["name"] for d in admin.get("/api/documents")["documents"]])
            return found[0] if found else None

        session = await until(session_id, "the host's session on the hub")
        document = f"nova-session/{session}/hello.py"

        def hub_text() -> str:
            text: str = admin.get(f"/api/documents/{document}/text")["text"]
            return text

        await browser.call("screenshot", page="host", path=str(GUIDE / "start-session.png"))
        await browser.call("open_explorer_file", page="host", file="hello.py", timeout=90)

        # Guest: join with the link; the shared folder opens; so does hello.py.
        link = join_link(hub, session)
        await browser.call("command", page="guest", title="Nova Collab: Join", input=link, timeout=60)
        # The window reopens on the shared folder: slow on a busy machine.
        await browser.call(
            "open_explorer_file", page="guest", file="hello.py", timeoutMs=120_000, timeout=150
        )
        await browser.call("wait_editor_contains", page="guest", text="return 'hi'", timeout=60)
        await browser.call("command", page="guest", title="Explorer: Focus on Nova Collab View", timeout=60)
        await browser.call("wait_text", page="guest", selector=".pane-body", text="human:host", timeout=30)
        await browser.call("screenshot", page="guest", path=str(GUIDE / "join.png"))

        # Cursor flags and participants: the host's caret and an agent's, seen by the guest.
        await browser.call("click_editor", page="host", line=4, end=True)
        async with AgentSession(
            hub.ws, document, name="Fixer", model="rules-1", token=token("agent:Fixer", kind="agent")
        ) as present:
            present.set_cursor(4, 5)

            async def flags() -> list[str]:
                labels: list[str] = await browser.call("cursor_labels", page="guest")
                return (
                    labels if any("host" in x for x in labels) and any("Fixer" in x for x in labels) else []
                )

            await until(flags, "the host's and the agent's flags in the guest's editor")
            await browser.call("screenshot", page="guest", path=str(GUIDE / "cursor-flags.png"))

        # The agent reads a version and suggests against it; it claims another name, but the
        # hub records the token's subject.
        before = agent.get(f"/api/documents/{document}/text")
        proposed = agent.post(
            f"/api/documents/{document}/suggestions",
            {
                "version": before["version"],
                "actor": "agent:Impostor",
                "model": "rules-1",
                "edits": [{"find": "return 'hi'", "replace": "return 'hello, world'"}],
            },
        )["suggestion"]
        assert proposed["author"] == "agent:Fixer"

        async def lens_shown(page: str) -> list[str]:
            texts: list[str] = await browser.call("codelens_texts", page=page)
            return texts if any("agent:Fixer · rules-1" in t for t in texts) else []

        for page in ("host", "guest"):
            texts: list[str] = await until(
                functools.partial(lens_shown, page), f"the suggestion's lens in the {page}'s editor"
            )
            assert not any("Impostor" in t for t in texts), texts
            assert any("Accept" in t for t in texts) and any("Reject" in t for t in texts), texts
        await browser.call("screenshot", page="guest", path=str(GUIDE / "suggestion-lens.png"))

        # The host looks at it as a diff (the file against the suggested text).
        await browser.call("click_codelens", page="host", text="Suggestion by agent:Fixer")
        await browser.call("wait_diff_shows", page="host", text="return 'hello, world'", timeout=30)
        await browser.call("screenshot", page="host", path=str(GUIDE / "suggestion-diff.png"))
        await browser.call("close_active_editor", page="host", timeout=30)
        assert "hello, world" not in hub_text()

        # The guest accepts: the hub applies it, both editors show it, the lenses go away.
        await browser.call("click_codelens", page="guest", text="Accept")
        await until(lambda: "hello, world" in hub_text(), "the accepted suggestion on the hub")
        accepted_text = hub_text()
        assert accepted_text == "def greet():\n    return 'hello, world'\n\n\nprint(greet())\n"
        for page in ("host", "guest"):
            await browser.call("wait_editor_contains", page=page, text="return 'hello, world'", timeout=30)

            async def lens_gone(page: str = page) -> bool:
                texts: list[str] = await browser.call("codelens_texts", page=page)
                return not any("Suggestion by" in t for t in texts)

            await until(lens_gone, f"the lens gone from the {page}'s editor")
        (record,) = admin.get(f"/api/documents/{document}/suggestions")["suggestions"]
        assert (record["status"], record["decided_by"]) == ("accepted", "human:guest")
        await until(
            lambda: (host.folder / "hello.py").read_text() == accepted_text, "the host's file on disk"
        )

        # A second suggestion, rejected in the guest: it goes away, the text stays as it was.
        version = agent.get(f"/api/documents/{document}/text")["version"]
        second = agent.post(
            f"/api/documents/{document}/suggestions",
            {
                "version": version,
                "model": "rules-1",
                "edits": [{"find": "print(greet())", "replace": "pass"}],
            },
        )["suggestion"]
        await until(lambda: lens_shown("guest"), "the second lens in the guest's editor")
        await browser.call("click_codelens", page="guest", text="Reject")

        def status_of(suggestion_id: str) -> str:
            records = admin.get(f"/api/documents/{document}/suggestions")["suggestions"]
            status: str = next(r["status"] for r in records if r["id"] == suggestion_id)
            return status

        await until(lambda: status_of(second["id"]) == "rejected", "the rejection on the hub")
        for page in ("host", "guest"):

            async def gone(page: str = page) -> bool:
                texts: list[str] = await browser.call("codelens_texts", page=page)
                return not any("Suggestion by" in t for t in texts)

            await until(gone, f"the rejected lens gone from the {page}'s editor")
            shown = await browser.call("editor_text", page=page)
            assert "print(greet())" in shown and "pass" not in shown, shown
        assert hub_text() == accepted_text
