"""Logging set-up: plain text or JSON lines carrying the node id."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from persistence.redaction import MASK, redact_secrets


class JsonFormatter(logging.Formatter):
    def __init__(self, node_id: str) -> None:
        super().__init__()
        self._node_id = node_id

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "node": self._node_id,
            "message": record.getMessage(),
        }
        for key in ("document", "connection"):
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


_TOKEN_IN_TEXT = re.compile(r"(token=|[Bb]earer\s+)[A-Za-z0-9._~+/=-]+")


class RedactTokens(logging.Filter):
    """Tokens never reach a log line (uvicorn logs request paths with their query strings)."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self._secrets = tuple(secret for secret in secrets if secret)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_secrets(_TOKEN_IN_TEXT.sub(rf"\1{MASK}", message), self._secrets)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def configure_logging(level: str, *, json_lines: bool, node_id: str, secrets: tuple[str, ...] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactTokens(secrets))
    if json_lines:
        handler.setFormatter(JsonFormatter(node_id))
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s [{node_id}] %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
