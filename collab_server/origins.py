"""Which browser origins may talk to the hub: one policy for WebSocket and HTTP alike.

``--allowed-origins`` (comma-separated, e.g. ``https://app.example``) restricts callers
that send an ``Origin`` header (browsers do on every socket, every cross-origin request
and every POST/PUT/DELETE). Pages served by the hub itself (the viewer) are always
same-origin. Callers without an ``Origin`` (agents, curl, the SDK) are not browsers: the
token decides for them. An empty list allows every origin (local development).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class OriginPolicy:
    allowed: frozenset[str]

    @classmethod
    def from_setting(cls, setting: str) -> OriginPolicy:
        return cls(frozenset(origin.strip().rstrip("/") for origin in setting.split(",") if origin.strip()))

    @property
    def restricted(self) -> bool:
        return bool(self.allowed)

    def allows(self, origin: str | None, host: str | None) -> bool:
        """Whether a request with this ``Origin`` (and ``Host``) header may proceed."""
        if not self.allowed or origin is None:
            return True
        if origin.rstrip("/") in self.allowed:
            return True
        # Same origin: the page was served by this hub (its Host is the origin's authority).
        try:
            authority = urlsplit(origin).netloc
        except ValueError:  # not a URL at all
            return False
        return host is not None and bool(authority) and authority.lower() == host.lower()
