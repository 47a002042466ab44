"""Reading request input strictly: JSON bodies, query integers, text values.

Everything an endpoint reads passes through here, so every endpoint refuses the same
things the same way, before anything is set or changed:
- a body over the ``max_http_body_bytes`` setting (read in bounded chunks, never whole
  first): 413;
- JSON that does not parse, nests deeper than ``MAX_JSON_DEPTH``, holds NaN/Infinity or a
  number that does not fit (``1e309``, integers beyond 64 bits), or a string with a lone
  surrogate (not valid Unicode, cannot be stored): 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from collab_server.api.context import state_of
from collab_server.api.errors import ApiError

MAX_JSON_DEPTH = 32  # deeper JSON is refused before Python's parser could recurse far
# Integers in requests are versions, positions, counts: all fit a signed 64-bit integer.
MAX_INTEGER = 2**63 - 1


def malformed(message: str) -> ApiError:
    return ApiError(400, "malformed_json", message)


def invalid(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdecimal() and int(declared) > limit:
        raise ApiError(413, "body_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "body_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _bounded_int(raw: str) -> int:
    if len(raw.lstrip("-")) > 19:
        raise ValueError(f"integer out of range (at most {MAX_INTEGER})")
    value = int(raw)
    if not -MAX_INTEGER <= value <= MAX_INTEGER:
        raise ValueError(f"integer out of range (at most {MAX_INTEGER})")
    return value


def _finite_float(raw: str) -> float:
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {raw[:40]}")
    return value


def _no_constants(raw: str) -> Any:
    raise ValueError(f"{raw} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """Strictly parsed JSON (raises ApiError); the checks run before the value is used."""
    if _nesting(body) > MAX_JSON_DEPTH:
        raise malformed(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(
            body, parse_int=_bounded_int, parse_float=_finite_float, parse_constant=_no_constants
        )
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise malformed(str(exc)[:200]) from exc
    _check_strings(value)
    return value


def _nesting(body: bytes) -> int:
    """Deepest bracket nesting outside strings: refuses deep JSON before the parser recurses."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:  # quote
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest


def _check_strings(value: Any) -> None:
    """Refuse lone surrogates anywhere (keys included): they are not text and cannot be stored."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            check_text(item, "a string in the body")
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())


def check_text(value: str, what: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ApiError(400, "invalid_text", f"{what} is not valid Unicode (a lone surrogate)") from exc
    return value


async def read_json_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object (an empty body is ``{}``); raises ApiError."""
    body = await read_body(request, state_of(request).settings.max_http_body_bytes)
    data = parse_json(body) if body.strip() else {}
    if not isinstance(data, dict):
        raise malformed("the body must be a JSON object")
    return data


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter within ``low..high``; raises ApiError (400) otherwise."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    return bounded_int(raw, name, low, high)


def bounded_int(raw: str, name: str, low: int, high: int) -> int:
    stripped = raw.strip()
    digits = stripped.removeprefix("-")
    if not digits.isascii() or not digits.isdecimal() or len(digits) > 19 or not low <= int(stripped) <= high:
        raise invalid(f"'{name}' must be an integer from {low} to {high}")
    return int(stripped)


def query_text(request: Request, name: str, default: str, max_chars: int = 256) -> str:
    raw = request.query_params.get(name, default)
    if not raw or len(raw) > max_chars:
        raise invalid(f"'{name}' must be 1-{max_chars} characters")
    return check_text(raw, f"'{name}'")


def optional_string(
    data: dict[str, Any], key: str, max_chars: int, *, default: str | None = None
) -> str | None:
    """``data[key]`` as a string of 1..max_chars, ``default`` when absent; raises ApiError."""
    value = data.get(key)
    if value is None:
        return default
    if not isinstance(value, str) or not value or len(value) > max_chars:
        raise invalid(f"'{key}' must be a string of 1-{max_chars} characters")
    return value
