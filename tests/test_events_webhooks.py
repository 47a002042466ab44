"""Signed webhooks from a real hub to a real HTTP receiver: signature, filters, retries with
backoff, the dead-letter list and the delivery log over the admin API."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from collab_server.client import YClient
from collab_server.events.webhooks import InvalidSignature, sign, verify
from tests.support.hub import HubProcess
from tests.support.waiting import eventually

SECRET = "whsec-test-5f2c"


class Receiver:
    """A threaded HTTP server: /ok accepts, /flaky refuses each event's first 3 tries, /dead refuses."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {"ok": [], "flaky": [], "dead": []}
        self.attempts: dict[tuple[str, str], int] = {}
        self.bad_signatures = 0
        self.dead_alive = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                name = self.path.strip("/")
                if not receiver.signature_ok(body, self.headers.get("Nova-Signature", "")):
                    receiver.bad_signatures += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                event = json.loads(body)
                key = (name, event["id"])
                receiver.attempts[key] = receiver.attempts.get(key, 0) + 1
                refuse = (name == "flaky" and receiver.attempts[key] <= 3) or (
                    name == "dead" and not receiver.dead_alive
                )
                if not refuse:
                    receiver.received[name].append(event)
                self.send_response(503 if refuse else 204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @staticmethod
    def signature_ok(body: bytes, header: str) -> bool:
        """Checked here independently of the hub's code: t=<unix>,v1=<hex HMAC-SHA256(t.body)>."""
        fields = dict(part.split("=", 1) for part in header.split(","))
        expected = hmac.new(SECRET.encode(), f"{fields['t']}.".encode() + body, hashlib.sha256).hexdigest()
        return abs(time.time() - int(fields["t"])) < 300 and hmac.compare_digest(expected, fields["v1"])

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/{name}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver.thread.start()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.mark.fast
def test_signature_helper_refuses_tampering_and_replays() -> None:
    body = b'{"id":"doc@1"}'
    header = sign(SECRET, body, int(time.time()))
    verify(SECRET, body, header)
    with pytest.raises(InvalidSignature):
        verify(SECRET, body + b" ", header)
    with pytest.raises(InvalidSignature):
        verify("other-secret", body, header)
    with pytest.raises(InvalidSignature, match="window"):
        verify(SECRET, body, sign(SECRET, body, int(time.time()) - 3600))


async def test_webhooks_are_signed_filtered_retried_and_dead_lettered(
    tmp_path: Path, receiver: Receiver
) -> None:
    endpoints = [
        {"name": "ok", "url": receiver.url("ok"), "secret": SECRET, "documents": ["hooks/*"]},
        {"name": "flaky", "url": receiver.url("flaky"), "secret": SECRET, "events": ["document.created"]},
        {"name": "dead", "url": receiver.url("dead"), "secret": SECRET, "events": ["document.created"]},
    ]
    hub = HubProcess(
        tmp_path, webhooks=json.dumps(endpoints), webhook_max_attempts=4, webhook_backoff_ms=50
    ).start()
    try:
        async with YClient(hub.url("hooks/a") + "?actor=ada") as client:
            await client.wait_synced()
            for word in ("one ", "two ", "three "):
                client.text += word
            await eventually(lambda: hub.text("hooks/a") == "one two three ", 10, "hub has the edits")
        async with YClient(hub.url("elsewhere") + "?actor=bob") as other:
            await other.wait_synced()
            other.text += "not for ok"
            await eventually(lambda: hub.text("elsewhere") == "not for ok", 10, "hub has the edit")

        def ok_has_all() -> bool:
            changed = [e for e in receiver.received["ok"] if e["type"] == "document.changed"]
            return "".join(e["data"]["delta"]["content"][-1]["insert"] for e in changed) == "one two three "

        await eventually(ok_has_all, 15, "the ok endpoint receiving every change of hooks/a")
        assert {e["document"] for e in receiver.received["ok"]} == {"hooks/a"}  # document filter
        await eventually(lambda: len(receiver.received["flaky"]) == 2, 15, "flaky endpoint's events")
        assert {e["type"] for e in receiver.received["flaky"]} == {"document.created"}  # type filter
        assert all(receiver.attempts[("flaky", e["id"])] == 4 for e in receiver.received["flaky"])
        assert receiver.bad_signatures == 0

        def dead_letters() -> list[dict[str, Any]]:
            response = hub.get("/api/admin/dead-letters?endpoint=dead")
            assert response.status_code == 200, response.text
            letters: list[dict[str, Any]] = response.json()["dead_letters"]
            return letters

        await eventually(lambda: len(dead_letters()) == 2, 15, "the dead endpoint's events dead-lettered")
        letters = dead_letters()
        assert {json.loads(letter["payload"])["document"] for letter in letters} == {"hooks/a", "elsewhere"}
        assert all(letter["attempts"] == 4 and letter["error"] == "HTTP 503" for letter in letters)
        assert all(receiver.attempts[("dead", letter["event_id"])] == 4 for letter in letters)

        log = hub.get("/api/admin/webhooks/flaky/deliveries").json()["deliveries"]
        first = receiver.received["flaky"][0]["id"]
        tries = sorted((r["attempt"], r["ok"], r["status"]) for r in log if r["event_id"] == first)
        assert tries == [(1, False, 503), (2, False, 503), (3, False, 503), (4, True, 204)]
        timestamps = sorted(r["at"] for r in log if r["event_id"] == first)
        gaps = [b - a for a, b in itertools.pairwise(timestamps)]
        assert gaps[2] > gaps[0], f"backoff grows: {gaps}"

        # The receiver is back: an admin retries one dead letter; it is delivered and leaves the list.
        receiver.dead_alive = True
        retried = hub.get("/api/admin/events")  # status endpoint answers too
        assert retried.status_code == 200 and "webhook:dead" in retried.json()["sinks"]
        response = httpx.post(f"{hub.http}/api/admin/dead-letters/{letters[0]['id']}/retry", timeout=10)
        assert response.status_code == 200, response.text
        assert [e["id"] for e in receiver.received["dead"]] == [letters[0]["event_id"]]
        assert [letter["id"] for letter in dead_letters()] == [letters[1]["id"]]
        missing = httpx.post(f"{hub.http}/api/admin/dead-letters/999999/retry", timeout=10)
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "unknown_dead_letter"
    finally:
        hub.stop()
