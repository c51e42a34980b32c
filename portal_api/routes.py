"""The portal API's routes: parse (pydantic), one call into the core, a response model."""

from __future__ import annotations

from anyio.to_thread import run_sync as in_worker
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from bot.portal.answers import Attempt
from portal_api.deps import Desk, PresentedKey, WorkerThreads
from portal_api.errors import PIN_CALL_ERRORS
from portal_api.schemas import (
    HealthResponse,
    RedeemRequest,
    RedeemResponse,
    VerifyRequest,
    VerifyResponse,
)

router = APIRouter(prefix="/portal/v1")


def _attempt(body: VerifyRequest) -> Attempt:
    return Attempt(
        pin=body.pin, dob=body.dob, client_ip=str(body.client_ip) if body.client_ip else None
    )


@router.post(
    "/pins/verify",
    response_model=VerifyResponse,
    responses=PIN_CALL_ERRORS,
    summary="Which child does this PIN + date of birth belong to?",
    description=(
        "Call it when a parent types a PIN and a date of birth. Changes nothing. Every failure "
        "is the same 404 no_match."
    ),
)
async def verify(
    body: VerifyRequest, key: PresentedKey, desk: Desk, threads: WorkerThreads
) -> VerifyResponse:
    return VerifyResponse.of(await in_worker(desk.verify, key, _attempt(body), limiter=threads))


@router.post(
    "/pins/redeem",
    response_model=RedeemResponse,
    responses={
        **PIN_CALL_ERRORS,
        409: {"description": "already_registered: another portal account redeemed this PIN."},
    },
    summary="The PIN was used: register it to this portal account",
    description=(
        "Call it once the account is created or the child added to it. Single use: the same "
        "account again answers first_use false; another account gets 409."
    ),
)
async def redeem(
    body: RedeemRequest, key: PresentedKey, desk: Desk, threads: WorkerThreads
) -> RedeemResponse:
    attempt = _attempt(body)
    answer = await in_worker(desk.redeem, key, attempt, body.portal_account_id, limiter=threads)
    return RedeemResponse.of(answer)


@router.get(
    "/health",
    response_model=HealthResponse,
    responses={503: {"model": HealthResponse, "description": "The database does not answer."}},
    summary="Is pinbot up? (no key needed)",
)
def health(desk: Desk) -> JSONResponse:
    if desk.healthy():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable"}, status_code=503)
