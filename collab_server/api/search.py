"""GET /api/search?q=...&limit=N: semantic search over the documents' text.

Answers ``{"results": [{"document", "field", "start", "end", "snippet", "score"}]}``, closest
first. ``field`` is the document's root type the snippet is from (``crdt_core.fields``);
``start``/``end`` are character offsets (Unicode code points) of the snippet in that field's
plain text as last indexed; the live text may have moved on since. Errors: 400
``empty_query`` or ``invalid_limit``; 503 ``search_unavailable`` when the index cannot be
reached or search is not configured (edits are unaffected either way).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from collab_server.api.access import caller
from collab_server.api.context import state_of
from collab_server.api.errors import error_response
from collab_server.document_access import may_read
from persistence.index.base import EmptyQuery, IndexUnavailable, SearchIndex

logger = logging.getLogger(__name__)

# Hits per search: ranking beyond a few dozen is noise for an embedding index.
DEFAULT_LIMIT = 10
MAX_LIMIT = 50


async def search(request: Request) -> Response:
    index: SearchIndex | None = state_of(request).search.index
    query = request.query_params.get("q", "")
    raw_limit = request.query_params.get("limit", str(DEFAULT_LIMIT)).strip()
    limit = int(raw_limit) if raw_limit.isascii() and raw_limit.isdecimal() and len(raw_limit) < 6 else 0
    if not 1 <= limit <= MAX_LIMIT:
        return error_response(400, "invalid_limit", f"limit must be an integer from 1 to {MAX_LIMIT}")
    if not query.strip():
        return error_response(400, "empty_query", "the query parameter q is empty")
    if index is None:
        return error_response(503, "search_unavailable", "search is not enabled on this hub")
    try:
        hits = await index.search(query, limit)
    except EmptyQuery as exc:
        return error_response(400, "empty_query", str(exc))
    except IndexUnavailable as exc:
        logger.warning("search failed: %s", exc)
        return error_response(503, "search_unavailable", "the search index is unavailable; try again later")
    readable = getattr(request.state, "readable", None)
    results = [
        {
            "document": h.document,
            "field": h.field,
            "start": h.start,
            "end": h.end,
            "snippet": h.snippet,
            "score": round(h.score, 4),
        }
        for h in hits
        if readable is None or readable(h.document)
    ]
    return JSONResponse({"results": results})


async def search_readable(request: Request) -> Response:
    """The search endpoint behind tokens: results only from documents the caller may read."""
    principal = caller(request)
    request.state.readable = lambda document: may_read(principal, document)
    return await search(request)
