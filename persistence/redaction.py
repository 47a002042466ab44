"""URLs and known secrets in logs and messages without their secrets: the one redaction rule.

A password in the authority (``scheme://user:pw@host``) and secret-looking query parameters
(``password``, ``token``, ``secret``) become ``***``; everything else is kept so an operator
still sees which server and database is meant.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_QUERY_KEYS = frozenset({"password", "passwd", "token", "secret", "sslpassword"})
MASK = "***"


def redact_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every known secret (a password, a token, a key) masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text


def redact_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return f"{url.split('://', 1)[0]}://{MASK}" if "://" in url else MASK
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        user, has_password, _ = credentials.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(key.lower() in SECRET_QUERY_KEYS for key, _ in pairs):
            query = urlencode(
                [(k, MASK if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*"
            )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
