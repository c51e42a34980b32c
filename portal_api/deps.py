"""What a route needs, declared by name (like the Slack pipeline's `db` and `staff`): the
core's desk, the API key the request presents and the desk's worker threads. All async with
no I/O, so a request makes one trip to a worker thread — the desk's call, where it checks the
key and judges the attempt in one database session (each extra trip cost more than a
statement)."""

from __future__ import annotations

from typing import Annotated

from anyio import CapacityLimiter
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.portal.answers import Unauthorized
from bot.portal.desk import PortalDesk

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `pinbot portal key create NAME`, as `Bearer KEY`.",
)


async def desk(request: Request) -> PortalDesk:
    found: PortalDesk = request.app.state.desk
    return found


Desk = Annotated[PortalDesk, Depends(desk)]


async def presented_key(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The key after `Bearer`; Unauthorized (401) when there is none. Whether it is a live
    client's is the desk's question (bot/portal/clients.py)."""
    if credentials is None or not credentials.credentials:
        raise Unauthorized()
    return credentials.credentials


PresentedKey = Annotated[str, Depends(presented_key)]


async def worker_threads(request: Request) -> CapacityLimiter:
    found: CapacityLimiter = request.app.state.worker_threads
    return found


WorkerThreads = Annotated[CapacityLimiter, Depends(worker_threads)]
