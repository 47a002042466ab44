"""Browser viewers: the landing page, the live document page, and their built assets.

The pages are small HTML shells rendered here; CodeMirror, yjs and y-websocket come from the
bundle that ``scripts/build_frontend.sh`` writes to ``collab_server/static/build/`` at set-up
time (never committed). Without that bundle every page answers 503 saying how to build it.

What a link may do is chosen by ``?mode=view|edit`` until tokens exist (the security work);
``?token=`` is passed through to the hub, which will then enforce the role. The page only
reflects it: a view-mode editor is read-only and says so.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from collab_server.api.access import principal_of
from collab_server.api.context import state_of
from collab_server.api.errors import ApiError
from collab_server.auth import InvalidToken, Principal
from collab_server.document_access import may_read
from collab_server.document_names import InvalidDocumentName, check_document_name

BUILD_DIR = Path(__file__).resolve().parent / "static" / "build"
ASSET_PREFIX = "/static/build/"
REQUIRED_ASSETS = ("viewer.js", "landing.js", "style.css")
MODES = ("view", "edit")
MAX_NAME_CHARS = 64
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
}
# The assets' names do not change between builds: browsers revalidate (ETag) on every load.
ASSET_CACHE_CONTROL = "no-cache"
# Pages run only what the hub serves: no CDN, no inline script, sockets to this origin only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self' ws: wss:; img-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
SETUP_MISSING = (
    "The viewer's front end is not built: {missing} missing in collab_server/static/build/. "
    "Run scripts/setup.sh (or scripts/build_frontend.sh) and reload."
)


def missing_assets() -> list[str]:
    """The bundle files the pages need that the build has not written (empty when built)."""
    return [name for name in REQUIRED_ASSETS if not (BUILD_DIR / name).is_file()]


def _json_for_script(value: dict[str, Any]) -> str:
    """JSON safe inside <script type="application/json">: no way to close the element."""
    return (
        json.dumps(value, separators=(",", ":"))
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
    )


def _page(title: str, body: str, *, script: str | None, config: dict[str, Any] | None = None) -> str:
    head = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        '<link rel="icon" href="data:,">',
        f'<link rel="stylesheet" href="{ASSET_PREFIX}style.css">',
    ]
    if config is not None:
        head.append(f'<script id="nova-config" type="application/json">{_json_for_script(config)}</script>')
    if script is not None:
        head.append(f'<script type="module" src="{ASSET_PREFIX}{script}"></script>')
    return '<!doctype html>\n<html lang="en">\n<head>\n{}\n</head>\n{}\n</html>\n'.format(
        "\n".join(head), body
    )


def _html(content: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        content,
        status_code=status_code,
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-store"},
    )


def _setup_missing(missing: list[str]) -> HTMLResponse:
    message = SETUP_MISSING.format(missing=", ".join(missing))
    body = (
        '<body><main class="setup-missing"><h1>Nova Collab viewer unavailable</h1>'
        f"<p>{html.escape(message)}</p></main></body>"
    )
    # Inline style: the stylesheet is one of the missing files.
    page = _page("Viewer not built · Nova Collab", body, script=None).replace(
        "</head>", "<style>body{font-family:sans-serif;margin:48px}</style>\n</head>"
    )
    return HTMLResponse(page, status_code=503, headers={"Retry-After": "30", "Cache-Control": "no-store"})


def _document_href(name: str, mode: str | None = None) -> str:
    return f"/d/{quote(name, safe='/')}" + ("?mode=edit" if mode == "edit" else "")


def _relative(updated_at: float, now: float) -> str:
    if updated_at <= 0:
        return "—"
    seconds = max(0, round(now - updated_at))
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    if seconds < 86400:
        return f"{seconds // 3600} h ago"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(updated_at))


async def landing(request: Request) -> Response:
    opened = request.query_params.get("name", "").strip()
    if opened:  # the landing page's form, submitted without JavaScript
        return RedirectResponse(_document_href(opened, request.query_params.get("mode")), status_code=303)
    missing = missing_assets()
    if missing:
        return _setup_missing(missing)
    try:
        principal: Principal | None = principal_of(request)
    except InvalidToken:
        principal = None  # with auth on and no valid ?token=, nothing is listed
    summaries = [s for s in await state_of(request).documents.summaries() if may_read(principal, s.name)]
    now = time.time()
    rows = []
    for s in summaries:
        live = " live" if s.connections else ""
        rows.append(
            f'<tr data-document="{html.escape(s.name)}">'
            f'<td class="doc-name"><a href="{html.escape(_document_href(s.name))}">{html.escape(s.name)}</a></td>'
            f'<td class="participants{live}" data-count="{s.connections}">{s.connections}</td>'
            f'<td class="updated">{html.escape(_relative(s.updated_at, now))}</td>'
            f'<td class="actions"><a class="button" href="{html.escape(_document_href(s.name, "edit"))}">'
            "edit</a></td></tr>"
        )
    live_total = sum(s.connections for s in summaries)
    empty = '<tr><td colspan="4" class="muted">No documents yet: open one below.</td></tr>'
    body = f"""<body class="page-landing">
<header class="topbar"><a class="brand" href="/">Nova Collab</a><span class="spacer"></span></header>
<main class="landing">
<h1>Documents</h1>
<p id="documents-status" class="muted">{len(summaries)} documents · {live_total} connected now</p>
<table id="documents">
<thead><tr><th>Document</th><th>Participants</th><th>Last change</th><th></th></tr></thead>
<tbody id="documents-body">{"".join(rows) or empty}</tbody>
</table>
<form id="open-form" class="open-form" action="/" method="get">
<input name="name" placeholder="document name, e.g. notes/plan.md" aria-label="document name" required>
<button type="submit" name="mode" value="view">View</button>
<button type="submit" name="mode" value="edit" class="primary">Edit</button>
</form>
<p class="muted">Links: <code>/d/&lt;document&gt;</code> watches a document live;
<code>?mode=edit</code> makes the page an editor.</p>
</main>
</body>"""
    return _html(_page("Nova Collab", body, script="landing.js"))


def _page_name(request: Request) -> str | None:
    raw = (request.query_params.get("name") or request.query_params.get("actor") or "").strip()
    return raw[:MAX_NAME_CHARS] or None


async def document_page(request: Request) -> Response:
    missing = missing_assets()
    if missing:
        return _setup_missing(missing)
    name: str = request.path_params["name"]
    if not name:
        return RedirectResponse("/", status_code=303)
    try:
        check_document_name(name)  # the same rules as the socket the page opens
    except InvalidDocumentName as exc:
        raise ApiError(400, "invalid_document_name", str(exc)) from exc
    mode = request.query_params.get("mode", "view")
    if mode not in MODES:
        mode = "view"
    config = {
        "document": name,
        "mode": mode,
        "token": request.query_params.get("token"),
        "name": _page_name(request),
        # The root field shown (?field=); none: "content" if the document has it, else its first.
        "field": request.query_params.get("field") or None,
    }
    editing = mode == "edit"
    banner = (
        ""
        if editing
        else '<div id="readonly-banner" class="banner" role="status">Read-only: this link lets you '
        "watch the document live; your typing changes nothing. Open an editing link to edit.</div>"
    )
    body = f"""<body class="page-document" data-mode="{mode}">
<header class="topbar">
<a class="brand" href="/">Nova Collab</a>
<h1 id="document-name">{html.escape(name)}</h1>
<span class="mode-badge" data-mode="{mode}">{"Editing" if editing else "View only"}</span>
<select id="field-select" class="field-select" aria-label="field shown" hidden></select>
<span class="spacer"></span>
<span id="connection" class="connection" data-state="connecting" role="status" aria-live="polite">connecting</span>
</header>
{banner}
<div id="notice" class="notice" role="status" hidden></div>
<main class="layout">
<section class="editor-pane">
<div id="editor"><p class="loading">Loading document…</p></div>
<div id="preview" hidden>
<div class="preview-bar"><strong id="preview-title"></strong>
<button type="button" id="preview-restore" class="primary" hidden>Restore this version</button>
<button type="button" id="preview-back">Back to live</button></div>
<div id="preview-editor"></div>
</div>
<div id="doc-stats" class="status-line"></div>
</section>
<aside class="sidebar">
<section><h2>Present <span id="presence-count" class="count">0</span></h2><ul id="presence"></ul></section>
<section>
<div class="tabs" role="tablist">
<button type="button" role="tab" data-tab="activity" aria-selected="true">Activity</button>
<button type="button" role="tab" data-tab="history" aria-selected="false">History</button>
</div>
<ol id="activity" aria-label="recent activity"></ol>
<ol id="history" aria-label="versions" hidden></ol>
</section>
</aside>
</main>
</body>"""
    return _html(_page(f"{name} · Nova Collab", body, script="viewer.js", config=config))


async def asset(request: Request) -> Response:
    """A file of the built bundle; ``.gz`` twin sent to browsers that accept gzip."""
    relative: str = request.path_params["path"]
    root = BUILD_DIR.resolve()
    path = (root / relative).resolve()
    if root not in path.parents or not path.is_file() or path.suffix == ".gz":
        if missing_assets():
            return _setup_missing(missing_assets())
        return Response("not found", status_code=404, media_type="text/plain")
    media_type = MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    headers = {"Cache-Control": ASSET_CACHE_CONTROL, "Vary": "Accept-Encoding"}
    compressed = path.with_name(path.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and compressed.is_file():
        headers["Content-Encoding"] = "gzip"
        return FileResponse(compressed, media_type=media_type, headers=headers)
    return FileResponse(path, media_type=media_type, headers=headers)


def viewer_routes() -> list[BaseRoute]:
    """HTTP routes only: they never shadow ``ws://host/<document>`` (WebSocket routes)."""
    return [
        Route("/", landing, methods=["GET", "HEAD"]),
        Route("/d/{name:path}", document_page, methods=["GET", "HEAD"]),
        Route(ASSET_PREFIX + "{path:path}", asset, methods=["GET", "HEAD"]),
    ]
