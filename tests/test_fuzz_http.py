"""Fuzzing the HTTP API of a live hub: JSON bodies, raw bodies, paths and query strings.

A short run is part of the suite; `scripts/fuzz.sh` runs a long one (FUZZ_EXAMPLES).
Properties: no answer is a 5xx (the store is in memory and up, search is off: 503
``search_unavailable`` is the one expected); every 4xx is the JSON error shape; the hub stays
up and keeps serving a document that the fuzzer cannot reach (no write role on it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collab_server.auth import mint
from tests.support.hub import HubProcess

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
SECRET = "fuzz-http-secret-long-enough-for-hs256!"
# Everything under fuzz/ may be written; "guarded" may only be read by the fuzzer.
FUZZER = mint(SECRET, "fuzzer", [("fuzz/*", "admin"), ("guarded", "read"), ("*", "read")], ttl_seconds=3600)
OWNER = mint(SECRET, "owner", [("*", "admin")], ttl_seconds=3600)
GUARDED_TEXT = "nobody but the owner changes this"

SUFFIXES = [
    "text", "edits", "suggestions", "suggestions/x/accept", "suggestions/x/reject", "presence",
    "presence/agent-1", "state", "status", "history", "versions/1", "versions/99999999999999999999",
    "activity", "restore",
]  # fmt: skip
OTHER_PATHS = [
    "/api/documents", "/api/search", "/api/audit", "/api/admin/revoke", "/api/admin/events",
    "/api/admin/dead-letters", "/api/admin/dead-letters/1", "/metrics", "/healthz", "/readyz", "/api/x",
]  # fmt: skip
KEYS = [
    "text", "edits", "start", "end", "find", "replace", "version", "field", "actor", "seq", "agent",
    "ttl", "cursor", "index", "length", "color", "name", "model", "jti", "status",
]  # fmt: skip
QUERY_KEYS = ["limit", "field", "status", "document", "subject", "q", "token", "mode"]


def scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=20),
        st.sampled_from(["content", "nova:suggestions", "#8b5cf6", "", "\u0000", "fuzz/a", "."]),
    )


json_values = st.recursive(
    scalars(),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=5)), inner, max_size=5),
    ),
    max_leaves=20,
)
edit_bodies = st.fixed_dictionaries(
    {},
    optional={
        "edits": st.lists(
            st.fixed_dictionaries(
                {},
                optional={
                    k: st.one_of(scalars(), st.integers(0, 40)) for k in ("start", "end", "text", "find")
                },
            ),
            max_size=4,
        ),
        "text": st.one_of(st.text(max_size=30), scalars()),
        "version": scalars(),
        "field": scalars(),
        "actor": scalars(),
        "seq": st.one_of(st.integers(-5, 2**66), scalars()),
        "agent": scalars(),
        "ttl": st.one_of(st.floats(), scalars()),
        "cursor": json_values,
    },
)
raw_bodies = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"[" * 3000, b'{"ttl": 1e309, "agent": "a"}', b'{"text": "\\ud800"}', b"{", b"null"]),
)
names = st.one_of(
    st.sampled_from(["fuzz/a", "fuzz/b", "guarded", "fuzz/..", "fuzz/./a", "fuzz//a", "fuzz\\a"]),
    st.text(min_size=1, max_size=12).map(lambda t: "fuzz/" + t),
)


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, str, dict[str, str], bytes | None]:
    if draw(st.integers(0, 4)) == 0:
        path = draw(st.sampled_from(OTHER_PATHS))
    else:
        path = f"/api/documents/{quote(draw(names), safe='/')}/{draw(st.sampled_from(SUFFIXES))}"
    method = draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]))
    query = draw(st.dictionaries(st.sampled_from(QUERY_KEYS), st.text(max_size=12), max_size=3))
    kind = draw(st.integers(0, 2))
    body: bytes | None
    if kind == 0:
        body = json.dumps(draw(edit_bodies)).encode()
    elif kind == 1:
        body = json.dumps(draw(json_values)).encode()
    else:
        body = draw(raw_bodies)
    return method, path, query, body


@pytest.fixture(scope="module")
def fuzzed_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, httpx.Client]]:
    hub = HubProcess(tmp_path_factory.mktemp("fuzz-http"), store="memory", auth_secret=SECRET).start()
    with httpx.Client(base_url=hub.http, timeout=20) as client:
        answer = client.post(
            "/api/documents/guarded/edits",
            json={"text": GUARDED_TEXT},
            headers={"authorization": f"Bearer {OWNER}"},
        )
        assert answer.status_code == 200, answer.text
        yield hub, client
    hub.stop()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request=requests())
def test_http_api_answers_every_request_with_a_clear_status(
    fuzzed_hub: tuple[HubProcess, httpx.Client], request: tuple[str, str, dict[str, str], bytes | None]
) -> None:
    _hub, client = fuzzed_hub
    method, path, query, body = request
    response = client.request(
        method, path, params=query, content=body, headers={"authorization": f"Bearer {FUZZER}"}
    )
    status = response.status_code
    if status == 503:
        assert path == "/api/search" and response.json()["error"]["code"] == "search_unavailable", (
            response.text
        )
    else:
        assert status < 500, (method, path, query, body, response.text)
    if status >= 400:
        error = response.json()["error"]
        assert isinstance(error["code"], str) and isinstance(error["message"], str)


def test_hub_survived_the_fuzzing(fuzzed_hub: tuple[HubProcess, httpx.Client]) -> None:
    hub, client = fuzzed_hub
    assert client.get("/readyz").status_code == 200
    guarded = client.get("/api/documents/guarded/text", headers={"authorization": f"Bearer {OWNER}"})
    assert guarded.json()["text"] == GUARDED_TEXT
    assert "Traceback" not in hub.log(), hub.log()[-3000:]
