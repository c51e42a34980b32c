"""Every error body of the portal API, built here and nowhere else: the core's refusals and
malformed requests become HTTP answers in these handlers, so no route can word a failure its
own way (and the one `no_match` answer cannot leak a difference)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from bot.db import DatabaseUnavailable
from bot.portal.answers import (
    AlreadyRegistered,
    NoMatch,
    PortalRefusal,
    TooManyAttempts,
    Unauthorized,
)
from portal_api.schemas import NO_MATCH_MESSAGE, ErrorBody

log = logging.getLogger(__name__)

# Built once: every failure of every kind sends these very bytes.
_NO_MATCH = JSONResponse({"error": "no_match", "message": NO_MATCH_MESSAGE}, status_code=404).body


class BodyTooLarge(HTTPException):
    """Raised while a streamed body is read (portal_api/limits.py). An HTTPException, because
    FastAPI turns any other error raised while reading a body into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413)
        self.limit = limit


_NOT_AN_OBJECT = {
    "error": "bad_request",
    "field": "body",
    "message": "The body must be a JSON object.",
}
_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed"}


def error_response(status: int, body: dict[str, Any], **headers: str) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers or None)


def refusal_response(refusal: PortalRefusal) -> JSONResponse:
    if isinstance(refusal, Unauthorized):
        return error_response(401, {"error": "unauthorized"}, **{"WWW-Authenticate": "Bearer"})
    if isinstance(refusal, TooManyAttempts):
        return error_response(
            429,
            {"error": "too_many_attempts"},
            **{"Retry-After": str(refusal.retry_after_seconds)},
        )
    if isinstance(refusal, AlreadyRegistered):
        return error_response(409, {"error": "already_registered"})
    assert isinstance(refusal, NoMatch)
    response = JSONResponse(None, status_code=404)
    response.body = _NO_MATCH
    response.init_headers()
    return response


def too_large_response(limit: int) -> JSONResponse:
    return error_response(
        413, {"error": "too_large", "message": f"Request bodies are at most {limit} bytes."}
    )


def _bad_request(error: RequestValidationError) -> JSONResponse:
    """400 naming the first field at fault (never echoing what was sent: it may be a PIN)."""
    problems = error.errors()
    first = problems[0] if problems else {}
    kind = first.get("type", "")
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    if kind in {"json_invalid", "model_attributes_type", "dict_type"} or not location:
        return error_response(400, _NOT_AN_OBJECT)
    field = ".".join(location)
    reason = "is required" if kind == "missing" else str(first.get("msg", "is not valid")).lower()
    return error_response(
        400, {"error": "bad_request", "field": field, "message": f"{field}: {reason}"}
    )


def install(app: FastAPI) -> None:
    async def on_refusal(_request: Request, refusal: Exception) -> JSONResponse:
        assert isinstance(refusal, PortalRefusal)
        return refusal_response(refusal)

    async def on_invalid(_request: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, RequestValidationError)
        return _bad_request(error)

    async def on_http(_request: Request, error: Exception) -> JSONResponse:
        """The framework's own refusals (a body it could not read, no such path, a wrong
        method) in pinbot's shape too."""
        assert isinstance(error, HTTPException)
        if isinstance(error, BodyTooLarge):
            return too_large_response(error.limit)
        if error.status_code == 400:
            return error_response(400, _NOT_AN_OBJECT)
        kind = _HTTP_ERRORS.get(error.status_code, f"http_{error.status_code}")
        return error_response(error.status_code, {"error": kind}, **(error.headers or {}))

    async def on_unavailable(_request: Request, error: Exception) -> JSONResponse:
        log.warning("portal API: %s", error)
        return error_response(503, {"error": "unavailable"}, **{"Retry-After": "5"})

    app.add_exception_handler(DatabaseUnavailable, on_unavailable)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(PortalRefusal, on_refusal)
    app.add_exception_handler(RequestValidationError, on_invalid)


# The documented answers of the two PIN calls (OpenAPI), beside the handlers that send them.
PIN_CALL_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Malformed JSON or a missing or invalid field."},
    401: {"model": ErrorBody, "description": "No API key, or an unknown or revoked one."},
    404: {
        "model": ErrorBody,
        "description": (
            "no_match: unknown PIN, wrong date of birth, expired, revoked, locked or used "
            "before. The same body for all."
        ),
    },
    413: {"model": ErrorBody, "description": "The body is over 8 KiB."},
    503: {"model": ErrorBody, "description": "pinbot's database does not answer: retry."},
    429: {
        "model": ErrorBody,
        "description": "too_many_attempts: wait the Retry-After header's seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
