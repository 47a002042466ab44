"""Every HTTP API route with who may call it: one row per route, read top to bottom.

Each endpoint is wrapped by `guard` with the access it needs (`collab_server/api/access.py`);
order matters where a `{name:path}` would also match a longer route (noted in the table).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from collab_server.api import (
    admin,
    archive,
    documents,
    edits,
    events,
    health,
    history,
    lifecycle,
    presence,
    search,
    suggestions,
)
from collab_server.api.access import Access, DocumentFrom, Endpoint, guard
from collab_server.auth import Role

READ = Access(Role.READ)
WRITE = Access(Role.WRITE)
ADMIN = Access(Role.ADMIN)
ADMIN_EVERYWHERE = Access(Role.ADMIN, DocumentFrom.NONE)
ADMIN_OF_QUERY = Access(Role.ADMIN, DocumentFrom.QUERY)
SIGNED_IN = Access(None, DocumentFrom.NONE)  # the endpoint shows only what the caller may read
SCRAPER = Access(None, DocumentFrom.NONE, token_optional=True)  # aggregates without a token
ADMIN_EVEN_DELETED = Access(Role.ADMIN, deleted_ok=True)  # undelete and erase
DOCUMENT = "/api/documents/{name:path}"
SUGGESTION = DOCUMENT + "/suggestions/{suggestion}"
DEAD_LETTER = "/api/admin/dead-letters/{letter}"

# (method, path, who may call it, endpoint)
API: tuple[tuple[str, str, Access, Endpoint], ...] = (
    ("GET", "/metrics", SCRAPER, health.metrics),
    ("GET", "/api/documents", SIGNED_IN, documents.list_documents),
    ("GET", DOCUMENT + "/text", READ, edits.read_text),
    ("POST", DOCUMENT + "/edits", WRITE, edits.apply_edits),
    ("POST", DOCUMENT + "/suggestions", WRITE, suggestions.suggest),
    ("GET", DOCUMENT + "/suggestions", READ, suggestions.list_suggestions),
    ("POST", SUGGESTION + "/accept", WRITE, suggestions.accept),
    ("POST", SUGGESTION + "/reject", WRITE, suggestions.reject),
    ("PUT", DOCUMENT + "/presence", WRITE, presence.put_presence),
    ("DELETE", DOCUMENT + "/presence/{agent}", WRITE, presence.delete_presence),
    ("GET", DOCUMENT + "/state", READ, documents.document_state),
    ("GET", DOCUMENT + "/status", READ, documents.document_status),
    ("GET", DOCUMENT + "/history", READ, history.history),
    ("GET", DOCUMENT + "/versions/{seq}", READ, history.version_text),
    ("GET", DOCUMENT + "/activity", READ, history.activity),
    # Before .../restore, which would match with the name "<name>/archive".
    ("POST", DOCUMENT + "/archive/restore", ADMIN, archive.restore_from_archive),
    ("POST", DOCUMENT + "/restore", ADMIN, history.restore),
    ("POST", DOCUMENT + "/undelete", ADMIN_EVEN_DELETED, lifecycle.undelete_document),
    ("POST", DOCUMENT + "/erase", ADMIN_EVEN_DELETED, lifecycle.erase_document),
    ("GET", "/api/search", SIGNED_IN, search.search_readable),
    ("POST", "/api/admin/revoke", ADMIN_EVERYWHERE, admin.revoke),
    ("GET", "/api/admin/deleted", ADMIN_EVERYWHERE, lifecycle.list_deleted),
    ("GET", "/api/admin/archive", ADMIN_EVERYWHERE, archive.status),
    ("POST", "/api/admin/archive", ADMIN_EVERYWHERE, archive.archive_now),
    ("GET", "/api/audit", ADMIN_OF_QUERY, admin.audit),
    ("GET", "/api/admin/events", ADMIN_EVERYWHERE, events.status),
    ("GET", "/api/admin/webhooks/{endpoint}/deliveries", ADMIN_EVERYWHERE, events.deliveries),
    ("GET", "/api/admin/dead-letters", ADMIN_EVERYWHERE, events.dead_letters),
    ("POST", DEAD_LETTER + "/retry", ADMIN_EVERYWHERE, events.retry_dead_letter),
    ("DELETE", DEAD_LETTER, ADMIN_EVERYWHERE, events.delete_dead_letter),
    # After every /api/documents/<name>/... route: `{name:path}` alone would match those too.
    ("DELETE", DOCUMENT, ADMIN, lifecycle.delete_document),
)


def api_routes() -> list[BaseRoute]:
    """The health probes (open to all) and every guarded API route, in the table's order."""
    probes: list[BaseRoute] = [Route("/healthz", health.healthz), Route("/readyz", health.readyz)]
    return probes + [
        Route(path, guard(access, endpoint), methods=[method]) for method, path, access, endpoint in API
    ]
