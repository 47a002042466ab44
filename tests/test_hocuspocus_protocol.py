"""The Hocuspocus wire format, encoded and decoded in process (no I/O)."""

from __future__ import annotations

import pytest

import crdt_core
from collab_server import hocuspocus_protocol as hp
from crdt_core import MessageKind, ProtocolError

pytestmark = pytest.mark.fast


def test_an_envelope_is_the_name_then_a_y_protocols_frame() -> None:
    frame = crdt_core.frame_update(b"\x00\x00")
    envelope = hp.parse_envelope(hp.prefix("notes/ü") + frame)
    assert (envelope.document, envelope.type, envelope.frame) == ("notes/ü", hp.MessageType.SYNC, frame)
    assert crdt_core.parse_message(envelope.frame).kind is MessageKind.SYNC_UPDATE


def test_auth_messages_both_ways() -> None:
    token = hp.prefix("doc") + bytes((hp.MessageType.AUTH, hp.AuthType.TOKEN)) + hp.var_string("t0k3n")
    assert hp.token_of(hp.parse_envelope(token)) == "t0k3n"
    granted = hp.parse_envelope(hp.authenticated("doc", read_only=True))
    assert granted.frame[1] == hp.AuthType.AUTHENTICATED
    assert hp.read_var_string(granted.frame, 2)[0] == hp.SCOPE_READ_ONLY
    denied = hp.parse_envelope(hp.permission_denied("doc", "no access"))
    assert denied.frame[1] == hp.AuthType.PERMISSION_DENIED and hp.token_of(denied) is None


def test_close_sync_status_and_stateless() -> None:
    close = hp.parse_envelope(hp.close("doc", 1007, "malformed message"))
    assert close.type == hp.MessageType.CLOSE
    assert hp.read_var_string(close.frame, 1)[0] == "1007 malformed message"
    assert hp.sync_status("doc", applied=False)[-2:] == bytes((hp.MessageType.SYNC_STATUS, 0))
    assert hp.stateless_payload(hp.parse_envelope(hp.stateless("doc", '{"a": 1}'))) == '{"a": 1}'


def test_routing_keys_of_provider_4_sessions() -> None:
    assert hp.split_routing_key("doc") == ("doc", None)
    assert hp.split_routing_key("doc\0abc") == ("doc", "abc")


@pytest.mark.parametrize(
    "data",
    [b"", b"\x05ab", b"\x02\xff\xfe", b"\x03doc"],
    ids=["empty", "name-runs-past-end", "name-not-utf8", "no-type"],
)
def test_bad_envelopes_raise_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        hp.parse_envelope(data)
