"""A real browser for tests and benchmarks: ``driver.mjs`` (playwright-core + Debian's chromium).

async with Browser(tmp_path / "profile") as browser:
    page = await browser.open(f"{hub.http}/d/notes.md")
    await page.wait("document.body.dataset.synced === 'true'")
"""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import Any

from collab_server import viewer
from tests.support.jsonlines import DriverError, LineDriver

BROWSER_DIR = Path(__file__).resolve().parent


class BrowserError(DriverError):
    pass


def browser_available() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        return "tests/browser/node_modules is missing: run scripts/setup.sh"
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        return "chromium is not installed: run scripts/install_browser.sh"
    return None


class Page:
    def __init__(self, browser: Browser, name: str) -> None:
        self.browser = browser
        self.name = name

    async def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        return await self.browser.call(op, timeout=timeout, page=self.name, **args)

    async def wait(self, expression: str, timeout: float = 10.0) -> Any:
        """Wait until a JavaScript expression is truthy in the page; returns its value."""
        try:
            return await self.call(
                "wait", timeout=timeout + 5, expression=expression, timeoutMs=int(timeout * 1000)
            )
        except BrowserError as exc:
            logs = "\n".join(await self.logs())
            raise AssertionError(
                f"page never satisfied {expression!r} within {timeout}s: {exc}\n{logs}"
            ) from exc

    async def eval(self, expression: str) -> Any:
        return await self.call("eval", expression=expression)

    async def goto(self, url: str) -> int | None:
        result = await self.call("goto", url=url)
        return None if result["status"] is None else int(result["status"])

    async def click(self, selector: str) -> None:
        await self.call("click", selector=selector)

    async def type(self, text: str, delay_ms: int = 0) -> None:
        await self.call("type", text=text, delay=delay_ms)

    async def press(self, key: str) -> None:
        await self.call("press", key=key)

    async def text(self, selector: str) -> str:
        return str(await self.call("text", selector=selector))

    async def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.call("screenshot", path=str(path), fullPage=full_page)
        return path

    async def logs(self) -> list[str]:
        return [str(line) for line in await self.browser.call("logs", page=self.name)]

    async def close(self) -> None:
        await self.call("close_page")


class Browser:
    """One chromium (fresh profile in ``user_data_dir``) with any number of pages."""

    def __init__(self, user_data_dir: Path, *, viewport: tuple[int, int] = (1280, 800)) -> None:
        self.user_data_dir = user_data_dir
        self.viewport = viewport
        self.version: str | None = None
        self._driver: LineDriver | None = None
        self._pages = itertools.count(1)

    async def __aenter__(self) -> Browser:
        self.user_data_dir.mkdir(parents=True, exist_ok=True)
        self._driver = await LineDriver.start(BROWSER_DIR / "driver.mjs", BROWSER_DIR, BrowserError)
        width, height = self.viewport
        launched = await self.call(
            "launch",
            timeout=90,
            userDataDir=str(self.user_data_dir),
            viewport={"width": width, "height": height},
        )
        self.version = launched.get("version")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._driver is not None
        with contextlib.suppress(BrowserError, TimeoutError):  # the process is ended below either way
            await self.call("close", timeout=30)
        await self._driver.close(timeout=15)

    async def call(self, op: str, timeout: float = 30.0, **args: Any) -> Any:
        assert self._driver is not None
        return await self._driver.call(op, timeout, **args)

    async def open(self, url: str) -> Page:
        page = Page(self, f"page-{next(self._pages)}")
        result = await self.call("open", timeout=60, page=page.name, url=url)
        if result["status"] != 200:
            raise BrowserError(f"{url} answered {result['status']}")
        return page


@contextlib.asynccontextmanager
async def viewer_browser(profile: Path) -> AsyncIterator[Browser]:
    """Chromium for the hub's own pages; a missing browser or viewer bundle fails, never skips."""
    reason = browser_available()
    if reason is not None:
        raise RuntimeError(f"browser tests cannot run: {reason}")
    missing = viewer.missing_assets()
    if missing:
        raise RuntimeError(f"viewer bundle missing ({', '.join(missing)}): run scripts/build_frontend.sh")
    async with Browser(profile) as launched:
        yield launched
