"""Tokens and per-document roles.

A token is a JWT (HS256 with a shared secret, or ES256/RS256 with a public key) with:
    sub     who: "alice", "agent:summarizer"
    kind    "human" or "agent"
    exp     expiry (unix seconds)
    jti     token id (for revocation; required: a token without one is refused)
    grants  [{"doc": "notes/*", "role": "read" | "write" | "admin"}, ...]
Document patterns are shell-style globs; the highest matching role wins.
With no secret and no key configured, auth is off: everyone is an admin (local development).
"""

from __future__ import annotations

import enum
import fnmatch
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt

ALGORITHMS_BY_KEY = {"secret": ["HS256"], "public_key": ["ES256", "RS256"]}


class Role(enum.IntEnum):
    READ = 1
    WRITE = 2
    ADMIN = 3

    @classmethod
    def parse(cls, name: str) -> Role:
        try:
            return cls[name.upper()]
        except KeyError as exc:
            raise InvalidToken(f"unknown role {name!r}") from exc


class InvalidToken(Exception):
    """Missing, malformed, expired, wrongly signed or revoked token (never carries the token)."""


@dataclass(frozen=True, slots=True)
class Grant:
    pattern: str
    role: Role


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    kind: str
    grants: tuple[Grant, ...]
    expires_at: float | None = None
    token_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def role_for(self, document: str) -> Role | None:
        roles = [grant.role for grant in self.grants if fnmatch.fnmatchcase(document, grant.pattern)]
        return max(roles) if roles else None

    @property
    def actor(self) -> str:
        return self.subject


ANONYMOUS = Principal("anonymous", "human", (Grant("*", Role.ADMIN),))


class Authenticator:
    def __init__(self, *, secret: str = "", public_key: str = "") -> None:
        if secret and public_key:
            raise ValueError("configure either an auth secret or a public key, not both")
        self._key: str = secret or public_key
        self._algorithms = ALGORITHMS_BY_KEY["secret" if secret else "public_key"]
        # token id -> when the revocation stops mattering (the token's expiry; None: never)
        self._revoked: dict[str, float | None] = {}

    @property
    def enabled(self) -> bool:
        return bool(self._key)

    def verify(self, token: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        if not token:
            raise InvalidToken("a token is required")
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=self._algorithms,
                options={"require": ["sub", "exp"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise InvalidToken("token signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"invalid token: {type(exc).__name__}") from exc
        token_id = claims.get("jti")
        if not isinstance(token_id, str) or not token_id:
            # A token without an id could never be revoked: refuse it (see README, Security).
            raise InvalidToken("token has no 'jti' (token id): it could not be revoked")
        if token_id in self._revoked:
            raise InvalidToken("token revoked")
        grants_raw = claims.get("grants", [])
        if not isinstance(grants_raw, list):
            raise InvalidToken("'grants' must be a list")
        grants = []
        for item in grants_raw:
            if not isinstance(item, dict) or not isinstance(item.get("doc"), str):
                raise InvalidToken("each grant needs 'doc' and 'role'")
            grants.append(Grant(item["doc"], Role.parse(str(item.get("role", "")))))
        kind = claims.get("kind", "human")
        return Principal(
            subject=str(claims["sub"]),
            kind=kind if kind in ("human", "agent") else "human",
            grants=tuple(grants),
            expires_at=float(claims["exp"]),
            token_id=token_id,
        )

    def revoke(self, token_id: str, until: float | None = None) -> None:
        """Refuse ``token_id`` until ``until`` (the token's own expiry; None: for good)."""
        self._revoked[token_id] = until
        self._prune()

    def replace_revocations(self, revoked: dict[str, float | None]) -> None:
        self._revoked = dict(revoked)
        self._prune()

    def _prune(self) -> None:
        now = time.time()
        for stale in [jti for jti, end in self._revoked.items() if end is not None and end < now]:
            del self._revoked[stale]

    def is_revoked(self, token_id: str | None) -> bool:
        return token_id is not None and token_id in self._revoked


def read_key(path: str) -> str:
    """The PEM public key in ``path`` ("" when no path is configured)."""
    if not path:
        return ""
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def mint(
    key: str,
    subject: str,
    grants: list[tuple[str, str]],
    *,
    kind: str = "human",
    ttl_seconds: float = 3600.0,
    algorithm: str = "HS256",
    token_id: str | None = None,
) -> str:
    """A signed token (for operators, tests and the CLI's ``token`` command)."""
    now = int(time.time())
    claims = {
        "sub": subject,
        "kind": kind,
        "iat": now,
        "exp": now + int(ttl_seconds),
        "jti": token_id or uuid.uuid4().hex,
        "grants": [{"doc": pattern, "role": role} for pattern, role in grants],
    }
    return jwt.encode(claims, key, algorithm=algorithm)
