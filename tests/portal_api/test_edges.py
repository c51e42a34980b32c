"""The HTTP edges: keys (none, wrong, revoked from the next request on), bodies over 8 KiB
refused before they are read whole, malformed requests answered 400 naming the field, health
and the OpenAPI document without a key."""

from __future__ import annotations

import json
import socket
from datetime import date
from urllib.parse import urlsplit

import httpx

from bot.portal.clients import revoke_client
from models import utcnow
from tests.support.portal import (
    HEALTH,
    VERIFY,
    PortalClient,
    child_with_pin,
    new_key,
    portal_client,
)
from tests.support.stack import Stack


def test_no_key_a_wrong_key_and_a_revoked_key_are_refused(stack: Stack, api_url: str) -> None:
    issued = child_with_pin(stack.services, "KY-1", "Lia", date(2022, 8, 1))
    key = new_key(stack.services, "portal")
    with portal_client(api_url, key) as portal:
        assert portal.verify(issued.pin, "2022-08-01").status_code == 200
        with stack.database.transaction() as session:
            revoke_client(session, name="portal", now=utcnow())
        revoked = portal.verify(issued.pin, "2022-08-01")
    assert revoked.status_code == 401 and revoked.json() == {"error": "unauthorized"}
    for headers in ({}, {"Authorization": "Bearer pinbot_wrong"}, {"Authorization": key}):
        answer = httpx.post(
            api_url + VERIFY, json={"pin": issued.pin, "dob": "2022-08-01"}, headers=headers
        )
        assert answer.status_code == 401 and answer.json() == {"error": "unauthorized"}


def test_a_body_over_8_kib_is_refused(stack: Stack, api_url: str, portal: PortalClient) -> None:
    big = json.dumps({"pin": "X" * 9 * 1024, "dob": "2022-08-01"}).encode()
    declared = portal.http.post(VERIFY, content=big, headers={"Content-Type": "application/json"})
    assert declared.status_code == 413 and declared.json()["error"] == "too_large"

    def chunks() -> object:  # streamed without a Content-Length: counted as it arrives
        for start in range(0, len(big), 1024):
            yield big[start : start + 1024]

    streamed = portal.http.post(
        VERIFY, content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413


def test_a_huge_declared_body_is_answered_before_it_is_sent(stack: Stack, api_url: str) -> None:
    """Only the headers go out: the 413 comes back without pinbot waiting for 50 MB."""
    parts = urlsplit(api_url)
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as conn:
        conn.sendall(
            b"POST /portal/v1/pins/verify HTTP/1.1\r\nHost: x\r\n"
            b"Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n"
        )
        assert conn.recv(100).startswith(b"HTTP/1.1 413")


def test_malformed_requests_name_the_field(stack: Stack, portal: PortalClient) -> None:
    not_json = portal.http.post(
        VERIFY, content=b'{"pin": ', headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"] == "bad_request" and not_json.json()["field"] == "body"
    missing = portal.http.post(VERIFY, json={"pin": "ABCD-EFGH"})
    assert missing.status_code == 400 and missing.json()["field"] == "dob"
    assert missing.json()["message"] == "dob: is required"
    wrong = portal.http.post(VERIFY, json={"pin": "ABCD-EFGH", "dob": "11/02/2023"})
    assert wrong.status_code == 400 and wrong.json()["field"] == "dob"
    no_account = portal.http.post(
        "/portal/v1/pins/redeem", json={"pin": "ABCD-EFGH", "dob": "2023-11-02"}
    )
    assert no_account.status_code == 400 and no_account.json()["field"] == "portal_account_id"
    listed = portal.http.post(VERIFY, json=["pin"])
    assert listed.status_code == 400 and listed.json()["field"] == "body"
    assert "ABCD" not in missing.text + wrong.text  # what was sent is never echoed


def test_health_and_the_openapi_document_need_no_key(stack: Stack, api_url: str) -> None:
    health = httpx.get(api_url + HEALTH)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    document = httpx.get(api_url + "/portal/v1/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/portal/v1/pins/verify", "/portal/v1/pins/redeem", "/portal/v1/health"} <= set(
        document["paths"]
    )
    verify = document["paths"]["/portal/v1/pins/verify"]["post"]
    assert {"200", "400", "401", "404", "413", "429"} <= set(verify["responses"])
