"""What every endpoint reads from the app's lifespan state."""

from __future__ import annotations

from starlette.requests import Request

from collab_server.hub import Hub


def hub_of(request: Request) -> Hub:
    hub: Hub = request.state.hub
    return hub
