"""The portal API's app factory, as `handlers.app.create_app` is Slack's: builds the FastAPI
app once over the services, installs the body limit and the error handlers, includes the
routes. The composition root (bot/runtime/process.py) serves it with uvicorn."""

from __future__ import annotations

from typing import Any

from anyio import CapacityLimiter
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from bot.portal.desk import PortalDesk
from bot.services import Services
from portal_api import errors
from portal_api.limits import BodyLimit
from portal_api.routes import router

OPENAPI_PATH = "/portal/v1/openapi.json"


def create_api(services: Services) -> FastAPI:
    api = FastAPI(
        title="pinbot portal API",
        version="1",
        description=(
            "The practice's patient portal asks pinbot whether a PIN and a date of birth belong "
            "to a child (verify) and tells pinbot when the PIN was used (redeem). Every call "
            "but health carries `Authorization: Bearer KEY`."
        ),
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
    )
    api.state.desk = PortalDesk(services)
    api.state.worker_threads = CapacityLimiter(worker_threads(services))
    api.add_middleware(BodyLimit)
    errors.install(api)
    api.include_router(router)
    api.openapi = lambda: _without_422(api)  # type: ignore[method-assign]
    return api


def worker_threads(services: Services) -> int:
    """How many attempts the desk works on at once (its calls block: the database, a pre-API
    PIN's scrypt). Few: measured under the portal load bench (bench/RESULTS.md, issue 18),
    FastAPI's default of 40 threads only made them contend for the interpreter lock and, on
    SQLite, for its one writer — SQLite did best with one (197 failed attempts/s against
    139 with 40), PostgreSQL with four (its round trips overlap). The others wait their turn
    on the event loop, which costs nothing."""
    return 1 if services.database.is_sqlite else 4


def _without_422(api: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 on every route; pinbot answers malformed requests with the 400
    of portal_api/errors.py instead, so the document the vendor reads says so."""
    if api.openapi_schema is None:
        document = get_openapi(
            title=api.title,
            version=api.version,
            description=api.description,
            routes=api.routes,
        )
        for path in document["paths"].values():
            for operation in path.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        api.openapi_schema = document
    return api.openapi_schema
