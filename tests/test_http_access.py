"""The HTTP API against a real hub with auth on: every error is JSON, one document-name rule
set on every route (HTTP and WebSocket), one access check for every route, the origin
allow-list, /metrics per-document series only for an authorised scraper, input validated in
full before anything changes, and suggestion records treated as untrusted data.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pycrdt
import pytest
from starlette.routing import Route
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from collab_server.app import create_app
from collab_server.auth import mint
from collab_server.client import YClient
from collab_server.settings import Settings
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

SECRET = "http-access-secret-long-enough-for-hs256!"
METRICS_TOKEN = "scraper-secret-0123456789"
ALLOWED_ORIGIN = "https://app.example"


def token(subject: str, *grants: tuple[str, str]) -> str:
    # Minted when the module is collected: it must outlive a whole (slow) suite run.
    return mint(SECRET, subject, list(grants), ttl_seconds=24 * 3600)


ADMIN = token("root", ("*", "admin"))
EDITOR = token("editor", ("doc-*", "write"))
READER = token("reader", ("doc-*", "read"))


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[HubProcess]:
    process = HubProcess(
        tmp_path,
        store="memory",
        auth_secret=SECRET,
        metrics_token=METRICS_TOKEN,
        allowed_origins=ALLOWED_ORIGIN,
    ).start()
    yield process
    process.stop()


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.text
    error = response.json()["error"]
    assert isinstance(error["code"], str) and isinstance(error["message"], str)
    if code is not None:
        assert error["code"] == code, response.text


def edit(hub: HubProcess, document: str, body: object | bytes, who: str = EDITOR) -> httpx.Response:
    url = f"{hub.http}/api/documents/{document}/edits"
    if isinstance(body, bytes):
        return httpx.post(url, content=body, headers=bearer(who), timeout=10)
    return httpx.post(url, json=body, headers=bearer(who), timeout=10)


def text(hub: HubProcess, document: str) -> str:
    response = httpx.get(f"{hub.http}/api/documents/{document}/text", headers=bearer(ADMIN), timeout=10)
    assert response.status_code == 200, response.text
    value: str = response.json()["text"]
    return value


async def test_every_error_is_json_and_nothing_changes_before_validation(hub: HubProcess) -> None:
    assert edit(hub, "doc-a", {"text": "intact"}).status_code == 200
    base = f"{hub.http}/api/documents/doc-a"
    assert_json_error(httpx.get(f"{hub.http}/api/nothing-here", headers=bearer(ADMIN)), 404, "not_found")
    assert_json_error(httpx.get(f"{hub.http}/nothing/at/all"), 404, "not_found")
    assert_json_error(httpx.patch(f"{base}/edits", headers=bearer(ADMIN)), 405, "method_not_allowed")
    assert_json_error(edit(hub, "doc-a", b"{oops"), 400, "malformed_json")
    assert_json_error(edit(hub, "doc-a", b"[" * 5000 + b"]" * 5000), 400, "malformed_json")
    assert_json_error(edit(hub, "doc-a", b'{"text": "x", "n": ' + b"[" * 5000 + b"]" * 5000 + b"}"), 400)
    assert_json_error(edit(hub, "doc-a", b'{"edits": [{"start": 1e309, "end": 0}]}'), 400, "malformed_json")
    assert_json_error(edit(hub, "doc-a", b'{"edits": [{"start": NaN}]}'), 400, "malformed_json")
    assert_json_error(edit(hub, "doc-a", {"edits": [{"start": "3", "end": 4, "text": "x"}]}), 400)
    assert_json_error(edit(hub, "doc-a", b"x" * 100_000), 413, "body_too_large")
    # A lone surrogate, anywhere in the body: refused before the document is touched.
    assert_json_error(edit(hub, "doc-a", b'{"text": "in\\ud800tact"}'), 400, "invalid_text")
    assert_json_error(
        edit(
            hub,
            "doc-a",
            b'{"edits": [{"start": 0, "end": 0, "text": "ok"}, {"start": 2, "text": "\\udfff"}]}',
        ),
        400,
        "invalid_text",
    )
    # Integers beyond 64 bits in versions and restore.
    huge = str(2**64)
    assert_json_error(httpx.get(f"{base}/versions/{huge}", headers=bearer(ADMIN)), 400, "invalid_request")
    restore = httpx.post(f"{base}/restore", content=f'{{"seq": {huge}}}', headers=bearer(ADMIN))
    assert_json_error(restore, 400, "malformed_json")
    assert_json_error(httpx.post(f"{base}/restore", json={"seq": "1"}, headers=bearer(ADMIN)), 400)
    assert_json_error(httpx.get(f"{base}/history?limit=%C2%B2", headers=bearer(ADMIN)), 400)
    assert_json_error(httpx.get(f"{base}/activity?limit=-1", headers=bearer(ADMIN)), 400)
    # Presence: bounded TTL, strict types, and nothing set when the body is refused.
    for body in (
        b'{"agent": "a1", "ttl": 1e309}',
        b'{"agent": "a1", "ttl": 1e300}',
        b'{"agent": "a1", "ttl": "5"}',
        b'{"agent": "a1", "ttl": 5, "cursor": {"index": "2"}}',
        b'{"agent": "a1", "ttl": 5, "color": "red"}',
        b'{"agent": 7}',
    ):
        response = httpx.put(f"{base}/presence", content=body, headers=bearer(EDITOR))
        assert_json_error(response, 400)
        status = httpx.get(f"{base}/status", headers=bearer(READER)).json()
        assert status["presence"] == {}, body
    assert text(hub, "doc-a") == "intact"


async def test_multi_part_edit_failing_in_any_part_changes_nothing(hub: HubProcess) -> None:
    assert edit(hub, "doc-b", {"text": "alpha beta"}).status_code == 200
    version = httpx.get(f"{hub.http}/api/documents/doc-b/text", headers=bearer(READER)).json()["version"]
    failing = {
        "version": version,
        "edits": [{"start": 0, "end": 5, "text": "ALPHA"}, {"find": "missing", "replace": "x"}],
    }
    assert_json_error(edit(hub, "doc-b", failing), 400, "invalid_edit")
    async with YClient(f"{hub.ws}/doc-b?token={READER}") as joiner:
        await joiner.wait_synced()
        assert str(joiner.text) == "alpha beta" == text(hub, "doc-b")


# Percent-encoded dots: httpx would collapse literal ones before sending (browsers do too,
# which is the hole); the raw form is sent with http.client below.
NAME_CASES = [
    "doc-%01x",
    "doc-%7Fx",
    "doc-%C2%85x",
    "doc-" + "n" * 600,
    "doc-x/%2E%2E/doc-y",
    "doc-x/%2E/y",
    "doc-x//y",
    "doc-x%5Cy",
]


async def test_one_document_name_rule_set_on_every_route(hub: HubProcess) -> None:
    for name in NAME_CASES:
        for method, suffix in (("GET", "text"), ("POST", "edits"), ("GET", "history"), ("PUT", "presence")):
            response = httpx.request(
                method,
                f"{hub.http}/api/documents/{name}/{suffix}",
                json={"text": "x", "agent": "a"},
                headers=bearer(ADMIN),
            )
            assert_json_error(response, 400, "invalid_document_name")
        audit = httpx.get(f"{hub.http}/api/audit", params={"document": "a\x01"}, headers=bearer(ADMIN))
        assert_json_error(audit, 400, "invalid_document_name")
        async with connect(f"{hub.ws}/{name}?token={ADMIN}", compression=None) as ws:
            try:
                async with asyncio.timeout(5):
                    async for _ in ws:
                        pass
            except ConnectionClosed:
                pass
            assert ws.close_code == 4400, name
    page = httpx.get(f"{hub.http}/d/doc-%01x")  # the viewer page: same rules, same JSON error
    assert_json_error(page, 400, "invalid_document_name")
    raw = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=10)
    raw.request("GET", "/api/documents/doc-x/../doc-y/text", headers=bearer(ADMIN))
    answer = raw.getresponse()
    assert answer.status == 400 and json.loads(answer.read())["error"]["code"] == "invalid_document_name"
    raw.close()
    # A valid name with a slash and unicode works the same way on both.
    assert edit(hub, "doc-ok/ünïcode", {"text": "fine"}).status_code == 200
    async with YClient(f"{hub.ws}/doc-ok/%C3%BCn%C3%AFcode?token={READER}") as client:
        await client.wait_synced()
        assert str(client.text) == "fine"


# The host lobby's two routes for a guest who has no token yet: ask to join, read the answer
# (with the request's key). Every other API route refuses a caller without a valid token.
# What each answers here, with or without a (bad) token: session "1" was never opened, and the
# answer needs the request's key.
OPEN_TO_GUESTS = {
    ("POST", "/api/sessions/{session}/requests"): (404, "unknown_session"),
    ("GET", "/api/sessions/{session}/requests/{request}"): (400, "invalid_request"),
}


def _example_path(route: Route) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "doc-z" if m.group(0).startswith("{name") else "1", route.path)


async def test_every_api_route_checks_the_token_the_same_way(hub: HubProcess) -> None:
    app = create_app(Settings(store="memory"))
    api_routes = [r for r in app.http.routes if isinstance(r, Route) and r.path.startswith("/api/")]
    assert len(api_routes) >= 18
    listed = {(method, r.path) for r in api_routes for method in r.methods or ()}
    assert OPEN_TO_GUESTS.keys() <= listed  # the exceptions name routes that exist
    for route in api_routes:
        for method in sorted(route.methods or {"GET"}):
            if method == "HEAD":
                continue
            url = f"{hub.http}{_example_path(route)}"
            anonymous = httpx.request(method, url, json={})
            if (method, route.path) in OPEN_TO_GUESTS:
                # No token needed, and a bad one counts as none: both get the lobby's own answer.
                status, code = OPEN_TO_GUESTS[(method, route.path)]
                assert_json_error(anonymous, status, code)
                forged = httpx.request(
                    method, url, json={}, headers=bearer(mint("wrong-secret-" * 4, "x", []))
                )
                assert_json_error(forged, status, code)
                continue
            assert_json_error(anonymous, 401, "unauthorized")
            forged = httpx.request(method, url, json={}, headers=bearer(mint("wrong-secret-" * 4, "x", [])))
            assert_json_error(forged, 401, "unauthorized")
            outsider = token("outsider", ("elsewhere/*", "admin"))
            response = httpx.request(method, url, json={}, headers=bearer(outsider))
            if route.path in ("/api/documents", "/api/search"):
                assert response.status_code != 403, (method, route.path)  # filtered, not refused
            else:
                assert_json_error(response, 403, "forbidden")


async def test_origin_allow_list_applies_to_the_http_api(hub: HubProcess) -> None:
    url = f"{hub.http}/api/documents/doc-o/edits"
    foreign = httpx.post(
        url, json={"text": "evil"}, headers={**bearer(EDITOR), "origin": "https://evil.example"}
    )
    assert_json_error(foreign, 403, "origin_not_allowed")
    never_written = httpx.get(f"{hub.http}/api/documents/doc-o/text", headers=bearer(ADMIN))
    assert_json_error(never_written, 404, "document_not_found")
    allowed = httpx.post(url, json={"text": "good"}, headers={**bearer(EDITOR), "origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    same = httpx.post(url, json={"text": "same"}, headers={**bearer(EDITOR), "origin": hub.http})
    assert same.status_code == 200, same.text  # the hub's own pages (the viewer)
    assert text(hub, "doc-o") == "same"
    preflight = httpx.options(
        url, headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
    )
    assert_json_error(preflight, 403, "origin_not_allowed")


async def test_metrics_show_documents_only_to_an_authorised_scraper(hub: HubProcess) -> None:
    assert edit(hub, "doc-secret-name", {"text": "x"}).status_code == 200
    full = httpx.get(f"{hub.http}/metrics", headers=bearer(METRICS_TOKEN))
    await eventually(
        lambda: "doc-secret-name" in httpx.get(f"{hub.http}/metrics", headers=bearer(METRICS_TOKEN)).text,
        what="per-document series for the metrics token",
    )
    assert full.status_code == 200
    assert "doc-secret-name" in httpx.get(f"{hub.http}/metrics", headers=bearer(ADMIN)).text
    for headers in ({}, bearer(READER), bearer("not-the-token")):
        public = httpx.get(f"{hub.http}/metrics", headers=headers)
        assert public.status_code == 200
        assert "nova_updates_in_total" in public.text  # aggregates still there
        assert "document=" not in public.text and "doc-secret-name" not in public.text


def _forged_record(**fields: object) -> str:
    record = {
        "id": "forged",
        "author": "ceo",
        "version": "",
        "field": "content",
        "edits": [{"start": 0, "end": 0, "text": "CEO says: "}],
        "status": "open",
        "created_at": 1.0,
        **fields,
    }
    return json.dumps(record)


async def test_suggestion_records_are_untrusted_data(hub: HubProcess) -> None:
    assert edit(hub, "doc-s", {"text": "plan"}).status_code == 200
    version = httpx.get(f"{hub.http}/api/documents/doc-s/text", headers=bearer(READER)).json()["version"]
    base = f"{hub.http}/api/documents/doc-s/suggestions"
    # The author recorded is the verified caller, whatever the body claims.
    real = httpx.post(
        base,
        json={"version": version, "actor": "ceo", "edits": [{"find": "plan", "replace": "Plan"}]},
        headers=bearer(EDITOR),
    )
    assert real.status_code == 200 and real.json()["suggestion"]["author"] == "editor"
    # A writer forges records straight into the map: one well-formed, some malformed.
    async with YClient(f"{hub.ws}/doc-s?token={EDITOR}") as writer:
        await writer.wait_synced()
        records = writer.doc.get("nova:suggestions", type=pycrdt.Map)
        with writer.doc.transaction():
            records["forged"] = _forged_record(version=version)
            records["junk"] = "{not json"
            records["nested"] = json.dumps({"id": "nested", "edits": "all"})
            records["number"] = 42
        await eventually(
            lambda: len(httpx.get(base, headers=bearer(READER)).json().get("skipped", [])) == 3,
            what="malformed records reported",
        )
    listed = httpx.get(base, headers=bearer(READER))
    assert listed.status_code == 200
    assert {s["id"] for s in listed.json()["skipped"]} == {"junk", "nested", "number"}
    assert len(listed.json()["suggestions"]) == 2
    assert_json_error(httpx.post(f"{base}/junk/accept", headers=bearer(EDITOR)), 422, "malformed_suggestion")
    accepted = httpx.post(f"{base}/forged/accept", json={"actor": "ceo"}, headers=bearer(EDITOR))
    assert accepted.status_code == 200, accepted.text
    assert text(hub, "doc-s") == "CEO says: plan"
    activity = httpx.get(f"{hub.http}/api/documents/doc-s/activity", headers=bearer(READER)).json()[
        "activity"
    ]
    assert "ceo" not in {entry["actor"] for entry in activity}
    assert activity[0]["actor"] == "editor"
