"""Real editors in headless Chromium (Debian's chromium via playwright-core) against the hub.

- CodeMirror 6 with y-codemirror.next on y-websocket: the hub's own document page, bound to a
  document written by another app (root Y.Text ``codemirror``, not Nova's ``content``).
- A Tiptap document (Y.XmlFragment ``default``, written through Hocuspocus) shown by the same
  page, read-only as plain text, live.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from collab_server import viewer
from collab_server.auth import mint
from tests.browser.driver import Browser, Page, browser_available
from tests.support.hocuspocus import HocuspocusClients
from tests.support.hub import HubProcess

SECRET = "editors-browser-secret-long-enough-for-hs256"
SYNCED = "document.body.dataset.synced === 'true'"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    reason = browser_available()
    if reason is not None:
        raise RuntimeError(f"browser tests cannot run: {reason}")
    missing = viewer.missing_assets()
    if missing:
        raise RuntimeError(f"viewer bundle missing ({', '.join(missing)}): run scripts/build_frontend.sh")
    async with Browser(tmp_path / "chromium-profile") as launched:
        yield launched


@pytest.fixture
async def node_clients() -> AsyncIterator[HocuspocusClients]:
    async with HocuspocusClients(3) as driver:
        yield driver


def editor_has(text: str) -> str:
    return f"(window.nova?.editorText() ?? '').includes({text!r})"


async def open_synced(browser: Browser, url: str) -> Page:
    page = await browser.open(url)
    await page.wait(SYNCED, timeout=15)
    return page


async def test_codemirror_pages_converge_show_presence_refuse_readers_and_resume_after_reload(
    tmp_path: Path, browser: Browser, node_clients: HocuspocusClients
) -> None:
    hub = HubProcess(tmp_path, auth_secret=SECRET).start()
    try:
        writer = mint(SECRET, "app", [("code/*", "write")])
        ada = mint(SECRET, "ada", [("code/*", "write")])
        bob = mint(SECRET, "bob", [("code/*", "write")])
        reader = mint(SECRET, "rita", [("code/*", "read")])
        # Another app wrote the document with y-codemirror.next's usual root name.
        await node_clients.call("ws_open", client="app", url=hub.ws, room="code/main.ts", params={"token": writer})
        await node_clients.call("write_shape", client="app", shape="codemirror", text="const answer = 42\n")

        base = f"{hub.http}/d/code/main.ts?mode=edit"
        page_a = await open_synced(browser, f"{base}&name=Ada&token={ada}")
        page_b = await open_synced(browser, f"{base}&name=Bob&token={bob}")
        for page in (page_a, page_b):
            await page.wait(editor_has("const answer = 42"))
            assert await page.eval("window.nova.field()") == "codemirror"

        # Both pages type at once; both, and the app, end with the same text.
        await page_a.click(".cm-content")
        await page_a.press("Control+End")
        await page_a.type("// from Ada\n")
        await page_b.click(".cm-content")
        await page_b.press("Control+Home")
        await page_b.type("// from Bob\n")
        for page in (page_a, page_b):
            await page.wait(editor_has("// from Ada") + " && " + editor_has("// from Bob"), timeout=10)
        converged = await page_a.eval("window.nova.editorText()")
        assert await page_b.eval("window.nova.editorText()") == converged
        await node_clients.call("wait_text_field", client="app", field="codemirror", text=converged)

        # Presence: each page lists the other by name.
        await page_a.wait("[...document.querySelectorAll('#presence li')].some(li => li.innerText.includes('Bob'))")
        await page_b.wait("[...document.querySelectorAll('#presence li')].some(li => li.innerText.includes('Ada'))")

        # A read-only token on an editing link: the hub refuses, the page turns read-only, nothing lands.
        page_r = await open_synced(browser, f"{base}&name=Rita&token={reader}")
        await page_r.click(".cm-content")
        await page_r.press("Control+End")
        await page_r.type("VANDALISM")
        await page_r.wait("document.body.dataset.mode === 'view'", timeout=10)
        await page_a.click(".cm-content")
        await page_a.press("Control+End")
        await page_a.type("// after the reader\n")
        await node_clients.call(
            "wait_text_field", client="app", field="codemirror", text=converged + "// after the reader\n"
        )
        assert "VANDALISM" not in await page_a.eval("window.nova.editorText()")

        # A reload resumes: the page syncs the current text and its typing still lands.
        await page_b.goto(f"{base}&name=Bob&token={bob}")
        await page_b.wait(SYNCED, timeout=15)
        await page_b.wait(editor_has("// after the reader"))
        await page_b.click(".cm-content")
        await page_b.press("Control+End")
        await page_b.type("// after reload\n")
        await page_a.wait(editor_has("// after reload"))
        errors = [
            line
            for page in (page_a, page_b)
            for line in await page.logs()
            if line.startswith("pageerror")
        ]
        assert errors == []
    finally:
        hub.stop()


async def test_tiptap_fragment_is_shown_read_only_as_live_text(
    hub: HubProcess, browser: Browser, node_clients: HocuspocusClients
) -> None:
    await node_clients.socket("tiptap", hub.ws)
    await node_clients.open("editor", "tiptap", "docs/spec")
    await node_clients.call(
        "write_shape", client="editor", shape="prosemirror", text="Release plan. Ship on Friday. Tell the users"
    )
    page = await open_synced(browser, f"{hub.http}/d/docs/spec?mode=edit")
    await page.wait(editor_has("Release plan\nShip on Friday\nTell the users"))
    assert await page.eval("window.nova.field()") == "default"
    assert "read-only text" in await page.text("#doc-stats")
    # Typing in the rendered text changes nothing; the Tiptap side's edits show up live.
    await page.click(".cm-content")
    await page.type("typed here")
    assert "typed here" not in await page.eval("window.nova.editorText()")
    await node_clients.call(
        "write_shape", client="editor", shape="prosemirror", text="Postscript. Bring cake", field="default"
    )
    await page.wait(editor_has("Bring cake"), timeout=5)
    assert hub.get("/api/documents/docs/spec/text?field=default").json()["text"] == await page.eval(
        "window.nova.editorText()"
    )
