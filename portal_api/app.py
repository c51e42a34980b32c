"""The portal API's app factory, as `handlers.app.create_app` is Slack's: builds the FastAPI
app once over the services, installs the body limit and the error handlers, includes the
routes. The composition root (bot/runtime/process.py) serves it with uvicorn."""

from __future__ import annotations

from fastapi import FastAPI

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
    api.add_middleware(BodyLimit)
    errors.install(api)
    api.include_router(router)
    return api
