"""The portal API served on loopback beside the whole bot (the Slack stack), with a key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.portal import PortalClient, new_key, portal_client, serve_portal_api
from tests.support.stack import Stack


@pytest.fixture
def api_url(stack: Stack) -> Iterator[str]:
    with serve_portal_api(stack.services) as url:
        yield url


@pytest.fixture
def portal(stack: Stack, api_url: str) -> Iterator[PortalClient]:
    with portal_client(api_url, new_key(stack.services)) as client:
        yield client
