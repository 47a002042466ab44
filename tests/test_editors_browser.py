"""Real editors in headless Chromium (Debian's chromium via playwright-core) against the hub.

- Tiptap with its collaboration and caret extensions on HocuspocusProvider
  (``tests/browser/editors``, bundled by esbuild, served from loopback), the hub speaking
  Hocuspocus on its root path.
- CodeMirror 6 with y-codemirror.next on y-websocket: the hub's own document page, bound to a
  document written by another app (root Y.Text ``codemirror``, not Nova's ``content``).
- A Tiptap document (Y.XmlFragment ``default``, written through Hocuspocus) shown by the same
  page, read-only as plain text, live.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from collab_server.auth import mint
from tests.browser.driver import Browser, Page, viewer_browser
from tests.support.hocuspocus import HocuspocusClients
from tests.support.hub import REPO, HubProcess, free_port
from tests.support.waiting import eventually

SECRET = "editors-browser-secret-long-enough-for-hs256"
SYNCED = "document.body.dataset.synced === 'true'"


@pytest.fixture
async def browser(tmp_path: Path) -> AsyncIterator[Browser]:
    async with viewer_browser(tmp_path / "chromium-profile") as launched:
        yield launched


@pytest.fixture
async def node_clients() -> AsyncIterator[HocuspocusClients]:
    async with HocuspocusClients(3) as driver:
        yield driver


EDITORS = REPO / "tests" / "browser" / "editors"


@pytest.fixture
def tiptap_site() -> Iterator[str]:
    """The Tiptap page, bundled now (esbuild, about a second) and served on a loopback port."""
    if not (EDITORS / "node_modules" / "@tiptap" / "core").exists():
        raise RuntimeError("tests/browser/editors/node_modules is missing: run scripts/setup.sh")
    subprocess.run(["node", "build.mjs"], cwd=EDITORS, check=True, timeout=120)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(EDITORS), str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}/tiptap.html"
    finally:
        server.terminate()
        server.wait(10)


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
        ada = mint(SECRET, "Ada", [("code/*", "write")])
        bob = mint(SECRET, "Bob", [("code/*", "write")])
        reader = mint(SECRET, "rita", [("code/*", "read")])
        # Another app wrote the document with y-codemirror.next's usual root name.
        await node_clients.call(
            "ws_open", client="app", url=hub.ws, room="code/main.ts", params={"token": writer}
        )
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

        # Presence: each page lists the other by name (with auth on, the token subject the hub stamps).
        await page_a.wait(
            "[...document.querySelectorAll('#presence li')].some(li => li.innerText.includes('Bob'))"
        )
        await page_b.wait(
            "[...document.querySelectorAll('#presence li')].some(li => li.innerText.includes('Ada'))"
        )

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
            line for page in (page_a, page_b) for line in await page.logs() if line.startswith("pageerror")
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
        "write_shape",
        client="editor",
        shape="prosemirror",
        text="Release plan. Ship on Friday. Tell the users",
    )
    await node_clients.call("write_shape", client="editor", shape="codemirror", text="notes()")
    page = await open_synced(browser, f"{hub.http}/d/docs/spec?mode=edit&field=default")
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
    # The page lists the document's fields; choosing the Y.Text one opens it as a live editor.
    await page.wait("!document.getElementById('field-select').hidden")
    options = await page.eval("[...document.querySelectorAll('#field-select option')].map(o => o.value)")
    assert options == ["codemirror", "default"]
    await page.eval(
        "(() => { const s = document.getElementById('field-select'); s.value = 'codemirror';"
        " s.dispatchEvent(new Event('change')); return true })()"
    )
    await page.wait(
        "window.nova?.field() === 'codemirror' && document.body.dataset.synced === 'true'", timeout=15
    )
    await page.wait(editor_has("notes()"))


async def open_tiptap(
    browser: Browser, site: str, hub: HubProcess, document: str, *, name: str, token: str
) -> Page:
    page = await browser.open(f"{site}?hub={hub.ws}&doc={document}&name={name}&token={token}")
    await page.wait("window.tiptap !== undefined && window.tiptap.synced()", timeout=15)
    return page


async def type_at_end(page: Page, text: str) -> None:
    await page.click(".ProseMirror")
    await page.press("Control+End")
    await page.type(text)


def tiptap_has(text: str) -> str:
    return f"window.tiptap.text().includes({text!r})"


async def test_tiptap_on_hocuspocus_provider_converges_shows_presence_refuses_readers_and_resumes(
    tmp_path: Path, browser: Browser, tiptap_site: str
) -> None:
    hub = HubProcess(tmp_path, auth_secret=SECRET).start()
    try:
        ada = mint(SECRET, "Ada", [("team/*", "write")])
        bob = mint(SECRET, "Bob", [("team/*", "write")])
        reader = mint(SECRET, "rita", [("team/*", "read")])
        page_a = await open_tiptap(browser, tiptap_site, hub, "team/notes", name="Ada", token=ada)
        assert await page_a.eval("window.tiptap.state.scope") == "read-write"
        await type_at_end(page_a, "Hello from Ada")
        page_b = await open_tiptap(browser, tiptap_site, hub, "team/notes", name="Bob", token=bob)
        await page_b.wait(tiptap_has("Hello from Ada"))
        # Both type at once into the same paragraph's ends; both end with the same document.
        await type_at_end(page_b, " and Bob")
        await type_at_end(page_a, "!")
        for page in (page_a, page_b):
            await page.wait(tiptap_has(" and Bob") + " && " + tiptap_has("!"), timeout=10)
        text = await page_a.eval("window.tiptap.text()")
        await page_b.wait(f"window.tiptap.text() === {text!r}", timeout=10)
        # The hub stored the Tiptap fragment and reads it as the same text.
        headers = {"authorization": f"Bearer {ada}"}

        def hub_text() -> str:
            response = httpx.get(f"{hub.http}/api/documents/team/notes/text?field=default", headers=headers)
            return str(response.json()["text"])

        await eventually(lambda: hub_text() == text, what="the hub's text of the Tiptap document")

        # Presence: each page's provider has the other user, and Tiptap draws Bob's caret labelled.
        await page_a.wait("window.tiptap.peers().includes('Bob')")
        await page_b.wait("window.tiptap.peers().includes('Ada')")
        await page_a.wait(
            "[...document.querySelectorAll('.collaboration-carets__label')].some(l => l.innerText === 'Bob')"
        )

        # A read-only token: scope "readonly"; its typing is refused and reaches nobody.
        page_r = await open_tiptap(browser, tiptap_site, hub, "team/notes", name="Rita", token=reader)
        assert await page_r.eval("window.tiptap.state.scope") == "readonly"
        await type_at_end(page_r, " VANDAL")
        await page_r.wait("window.tiptap.state.denied.some(r => r.includes('read-only'))", timeout=10)
        await type_at_end(page_a, " (checked)")
        await page_b.wait(tiptap_has("(checked)"))
        assert "VANDAL" not in await page_b.eval("window.tiptap.text()")
        assert "VANDAL" not in hub_text()

        # A reload resumes: the page syncs what it missed and its typing lands again.
        await type_at_end(page_a, " while Bob reloads")
        await page_b.goto(f"{tiptap_site}?hub={hub.ws}&doc=team/notes&name=Bob&token={bob}")
        await page_b.wait("window.tiptap !== undefined && window.tiptap.synced()", timeout=15)
        await page_b.wait(tiptap_has("while Bob reloads"))
        await type_at_end(page_b, " back")
        await page_a.wait(tiptap_has("reloads back"), timeout=10)
        errors = [
            line for page in (page_a, page_b) for line in await page.logs() if line.startswith("pageerror")
        ]
        assert errors == []
    finally:
        hub.stop()
