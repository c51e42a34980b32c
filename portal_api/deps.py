"""What a route needs, declared by name (like the Slack pipeline's `db` and `staff`): the
core's desk and the authenticated client. Sync functions: FastAPI runs them, like the routes,
in its thread pool, so database work never blocks the event loop."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.portal.answers import Client
from bot.portal.desk import PortalDesk

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `pinbot portal key create NAME`, as `Bearer KEY`.",
)


def desk(request: Request) -> PortalDesk:
    found: PortalDesk = request.app.state.desk
    return found


Desk = Annotated[PortalDesk, Depends(desk)]


def authenticated_client(
    desk: Desk,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Client:
    """The API client whose key the request carries; Unauthorized (401) otherwise."""
    return desk.authenticate(credentials.credentials if credentials else None)


AuthenticatedClient = Annotated[Client, Depends(authenticated_client)]
