"""Browser viewers in a real browser: Debian's chromium via playwright-core (tests/browser/).

Each test starts a real hub process and a fresh chromium profile; Python clients (YClient)
stand in for IDE users and agents. Screenshots go to artifacts/ (gitignored); with
NOVA_UPDATE_SCREENSHOT=1 the document page's screenshot also replaces docs/screenshot-viewer.png.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from collab_server import viewer
from collab_server.client import YClient
from tests.browser.driver import Browser, Page, viewer_browser
from tests.support.hub import REPO, HubProcess
from tests.support.waiting import eventually

ARTIFACTS = REPO / "artifacts"
DOCS_SCREENSHOT = REPO / "docs" / "screenshot-viewer.png"
SYNCED = "document.body.dataset.synced === 'true'"


def editor_has(text: str) -> str:
    return f"document.querySelector('.cm-content')?.innerText.includes({text!r})"


def connection_is(state: str) -> str:
    return f"document.getElementById('connection').textContent === {state!r}"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with viewer_browser(tmp_path / "chromium-profile") as launched:
        yield launched


async def open_synced(browser: Browser, url: str) -> Page:
    page = await browser.open(url)
    await page.wait(SYNCED)
    return page


async def test_python_edits_show_within_a_second_and_agents_are_marked(
    hub: HubProcess, browser: Browser
) -> None:
    async with (
        YClient(hub.url("demo/app.py") + "?actor=ada") as ide,
        YClient(hub.url("demo/app.py") + "?actor=summarizer") as agent,
    ):
        await ide.wait_synced()
        await agent.wait_synced()
        ide.text += "def greet(name):\n    return f'hello {name}'\n"
        page = await open_synced(browser, f"{hub.http}/d/demo/app.py")
        await page.wait(editor_has("def greet(name):"))

        started = time.monotonic()
        ide.text += "\nprint(greet('world'))\n"
        await page.wait(editor_has("print(greet('world'))"), timeout=1.0)
        assert time.monotonic() - started < 1.0

        agent.set_presence(
            {
                "user": {"name": "Summarizer", "color": "#8b5cf6", "kind": "agent"},
                "nova": {"index": 4, "length": 5},
            }
        )
        ide.set_presence({"user": {"name": "Ada", "color": "#2563eb", "kind": "human"}})
        await page.wait("document.querySelector('#presence li[data-kind=\"agent\"]') !== null")
        agent_entry = await page.text('#presence li[data-kind="agent"]')
        assert "Summarizer" in agent_entry and "agent" in agent_entry
        human_entries = await page.eval(
            "[...document.querySelectorAll('#presence li[data-kind=\"human\"]')].map(li => li.innerText)"
        )
        assert any("Ada" in entry for entry in human_entries)
        assert not any("agent" in entry for entry in human_entries)
        # The agent's cursor is drawn in the text, labelled with its name and marked as an agent.
        await page.wait("document.querySelector('.nova-caret[data-kind=\"agent\"]') !== null")
        assert await page.text('.nova-caret[data-kind="agent"] .nova-caret-label') == "Summarizer"
        await page.wait("document.querySelector('.activity-item') !== null", timeout=5)
        assert await page.text("#connection") == "connected"
        assert "Python" in await page.text("#doc-stats")

        shot = await page.screenshot(ARTIFACTS / "viewer-document.png")
        if os.environ.get("NOVA_UPDATE_SCREENSHOT") == "1":
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            shutil.copyfile(shot, DOCS_SCREENSHOT)
        errors = [line for line in await page.logs() if line.startswith(("error", "pageerror"))]
        assert errors == []


async def test_view_mode_is_read_only(hub: HubProcess, browser: Browser) -> None:
    async with YClient(hub.url("notes.md")) as writer:
        await writer.wait_synced()
        writer.text += "# Notes\n\nread me\n"
        page = await open_synced(browser, f"{hub.http}/d/notes.md?mode=view")
        await page.wait(editor_has("read me"))
        assert "Read-only" in await page.text("#readonly-banner")

        await page.click(".cm-content")
        await page.press("End")
        await page.type("typed by a viewer")
        await page.press("Enter")
        assert "typed by a viewer" not in await page.eval("window.nova.editorText()")
        # The page produced no Yjs update of its own, so it had nothing to send.
        assert await page.eval("window.nova.doc.store.clients.has(window.nova.doc.clientID)") is False
        # A round trip after the typing: the hub's text is exactly the writer's.
        writer.text += "more\n"
        await page.wait(editor_has("more"))
        assert hub.text("notes.md") == "# Notes\n\nread me\nmore\n"
        await writer.wait_for(
            lambda c: any(s.get("viewer", {}).get("mode") == "view" for s in c.presence.values())
        )


async def test_edit_mode_typing_reaches_python_clients(hub: HubProcess, browser: Browser) -> None:
    async with YClient(hub.url("shared.ts")) as reader:
        await reader.wait_synced()
        reader.text += "const a = 1\n"
        page = await open_synced(browser, f"{hub.http}/d/shared.ts?mode=edit&name=Grace")
        await page.wait(editor_has("const a = 1"))
        assert await page.eval("document.getElementById('readonly-banner')") is None

        await page.click(".cm-content")
        await page.press("Control+End")
        await page.type("const b = 2 // typed in the browser")
        await reader.wait_for(lambda c: "const b = 2 // typed in the browser" in str(c.text), timeout=5)
        assert str(reader.text) == "const a = 1\nconst b = 2 // typed in the browser"
        # Presence and attribution carry the page's name.
        await reader.wait_for(
            lambda c: any(s.get("user", {}).get("name") == "Grace" for s in c.presence.values())
        )
        actors = [a["actor"] for a in hub.get("/api/documents/shared.ts/activity").json()["activity"]]
        assert "Grace" in actors


async def test_hub_restart_shows_reconnecting_then_converges(hub: HubProcess, browser: Browser) -> None:
    async with YClient(hub.url("restart.md")) as before:
        await before.wait_synced()
        before.text += "written before the restart\n"
        page = await open_synced(browser, f"{hub.http}/d/restart.md?mode=edit&name=Lin")
        await page.wait(editor_has("written before the restart"))
        await page.wait(connection_is("connected"))

    hub.stop()
    await page.wait(connection_is("reconnecting"), timeout=10)
    # Typed while the hub is down: kept in the page, merged when it is back.
    await page.click(".cm-content")
    await page.press("Control+End")
    await page.type("typed while offline\n")

    hub.start()
    async with YClient(hub.url("restart.md")) as after:
        await after.wait_synced()
        after.text.insert(0, "written while the page was away\n")
        await page.wait(connection_is("connected"), timeout=15)
        expected_parts = (
            "written while the page was away",
            "written before the restart",
            "typed while offline",
        )
        await after.wait_for(lambda c: all(part in str(c.text) for part in expected_parts), timeout=10)
        final = str(after.text)
        await page.wait(f"window.nova.editorText() === {final!r}", timeout=5)
        assert hub.text("restart.md") == final
        assert final.startswith("written while the page was away\n")


async def test_history_preview_and_restore(hub: HubProcess, browser: Browser) -> None:
    async with YClient(hub.url("story.md") + "?actor=alice") as alice:
        await alice.wait_synced()
        alice.text += "first draft"
        await eventually(lambda: persisted_seq(hub, "story.md") is not None, what="first version stored")
        first_seq = persisted_seq(hub, "story.md")
        assert first_seq is not None and hub.text("story.md") == "first draft"
        alice.text += ", then rewritten"
        await eventually(
            lambda: (persisted_seq(hub, "story.md") or 0) > first_seq, what="second version stored"
        )

        page = await open_synced(browser, f"{hub.http}/d/story.md?mode=edit&name=Editor")
        await page.click('[data-tab="history"]')
        await page.wait(f"document.querySelector('#history li[data-seq=\"{first_seq}\"]') !== null")
        await page.click(f'#history li[data-seq="{first_seq}"] button')
        await page.wait("!document.getElementById('preview').hidden")
        await page.wait("document.querySelector('#preview-editor .cm-content')?.innerText === 'first draft'")
        await page.click("#preview-restore")
        await alice.wait_for(lambda c: str(c.text) == "first draft", timeout=5)
        await page.wait(editor_has("first draft"))
        await page.wait("document.getElementById('preview').hidden")
        assert "Restored" in await page.text("#notice")


def persisted_seq(hub: HubProcess, name: str) -> int | None:
    seq = hub.get(f"/api/documents/{name}/status").json()["last_persisted_seq"]
    return None if seq is None else int(seq)


async def test_landing_lists_documents_with_live_participants(hub: HubProcess, browser: Browser) -> None:
    async with YClient(hub.url("plans/roadmap.md")) as one, YClient(hub.url("plans/roadmap.md")) as two:
        await one.wait_synced()
        await two.wait_synced()
        one.text += "# Roadmap\n"
        async with YClient(hub.url("scratch.py")) as scratch:
            await scratch.wait_synced()
            scratch.text += "x = 1\n"
        page = await browser.open(f"{hub.http}/")
        await page.wait("document.querySelector('tr[data-document=\"plans/roadmap.md\"]') !== null")
        count = "document.querySelector('tr[data-document=\"plans/roadmap.md\"] .participants').dataset.count"
        assert await page.eval(count) == "2"
        assert await page.eval("document.querySelector('tr[data-document=\"scratch.py\"]') !== null")
        async with YClient(hub.url("plans/roadmap.md")):
            await page.wait(f"{count} === '3'", timeout=5)  # refreshed in place
        await page.screenshot(ARTIFACTS / "viewer-landing.png")
        await page.click('tr[data-document="plans/roadmap.md"] a')
        await page.wait(SYNCED)
        await page.wait(editor_has("# Roadmap"))


# -- the pages over plain HTTP (no browser) ----------------------------------------------------


def _app() -> Starlette:
    return Starlette(routes=viewer.viewer_routes())


def test_pages_answer_503_with_set_up_advice_when_the_bundle_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(viewer, "BUILD_DIR", tmp_path / "nothing-built")
    with TestClient(_app()) as client:
        for path in ("/", "/d/notes.md", "/static/build/viewer.js"):
            response = client.get(path)
            assert response.status_code == 503, path
            assert "scripts/setup.sh" in response.text
            assert "viewer.js" in response.text


def test_document_page_escapes_names_and_serves_only_the_bundle(hub: HubProcess) -> None:
    if viewer.missing_assets():
        raise RuntimeError("viewer bundle missing: run scripts/build_frontend.sh")
    nasty = "x</script><script>alert(1)</script>.md"
    response = httpx.get(f"{hub.http}/d/{nasty}", params={"mode": "edit", "token": "t<>"})
    assert response.status_code == 200
    assert "<script>alert(1)" not in response.text
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.text.count("<script") == 2  # the config (JSON) and the bundle
    unknown_mode = httpx.get(f"{hub.http}/d/a.md", params={"mode": "admin"})
    assert 'data-mode="view"' in unknown_mode.text
    asset = httpx.get(f"{hub.http}/static/build/viewer.js", headers={"Accept-Encoding": "gzip"})
    assert asset.status_code == 200 and asset.headers["content-encoding"] == "gzip"
    assert asset.headers["content-type"].startswith("text/javascript")
    for path in (
        "/static/build/%2e%2e/%2e%2e/viewer.py",
        "/static/build/viewer.js.gz",
        "/static/build/nope.js",
    ):
        assert httpx.get(f"{hub.http}{path}").status_code == 404, path
    redirect = httpx.get(f"{hub.http}/", params={"name": "a b/c.md", "mode": "edit"})
    assert redirect.status_code == 303 and redirect.headers["location"] == "/d/a%20b/c.md?mode=edit"
