"""Who is who in the workspace: guests (users.info) and supervisors (SUPERVISOR_IDS, with user
groups expanded by usergroups.users.list). Cached, because every request asks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from functools import partial
from typing import Any, Generic, TypeVar, cast

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


V = TypeVar("V")


class TtlCache(Generic[V]):
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self.clock = clock
        self._values: dict[str, tuple[float, V]] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: str, load: Callable[[], V]) -> V:
        """The cached value, or `load()`; a load that raises LookupFailed is not cached, so
        one Slack hiccup doesn't lock anybody out for the whole TTL."""
        with self._lock:
            hit = self._values.get(key)
            if hit and hit[0] > self.clock():
                return hit[1]
        try:
            value = load()
        except LookupFailed as failure:
            return cast(V, failure.fallback)
        with self._lock:
            self._values[key] = (self.clock() + self.seconds, value)
        return value


class LookupFailed(Exception):
    def __init__(self, fallback: Any) -> None:
        super().__init__("lookup failed")
        self.fallback = fallback


class Directory:
    def __init__(
        self, client: WebClient, supervisor_ids: Iterable[str], *, ttl_seconds: float = 300
    ) -> None:
        self.client = client
        self.supervisor_ids = tuple(supervisor_ids)
        self._guests: TtlCache[bool] = TtlCache(ttl_seconds)
        self._groups: TtlCache[tuple[str, ...]] = TtlCache(ttl_seconds)

    def is_guest(self, user_id: str) -> bool:
        """Restricted and ultra-restricted (guest) accounts are refused. An unknown user is
        treated as a guest: we never grant access on a failed lookup."""
        return bool(self._guests.get_or_load(user_id, lambda: self._load_is_guest(user_id)))

    def _load_is_guest(self, user_id: str) -> bool:
        try:
            user = self.client.users_info(user=user_id)["user"]
        except SlackApiError as error:
            log.warning(
                "users.info failed",
                extra={"user_id": user_id, "error": error.response.get("error")},
            )
            raise LookupFailed(fallback=True) from error
        return bool(user.get("is_restricted") or user.get("is_ultra_restricted"))

    def supervisors(self) -> frozenset[str]:
        """User ids allowed to approve: listed users plus members of listed groups."""
        users = {i for i in self.supervisor_ids if not i.startswith("S")}
        for group in (i for i in self.supervisor_ids if i.startswith("S")):
            users |= set(self._groups.get_or_load(group, partial(self._members, group)))
        return frozenset(users)

    def is_supervisor(self, user_id: str) -> bool:
        return user_id in self.supervisors()

    def _members(self, group_id: str) -> tuple[str, ...]:
        try:
            return tuple(self.client.usergroups_users_list(usergroup=group_id)["users"])
        except SlackApiError as error:
            log.warning(
                "usergroups.users.list failed",
                extra={"group_id": group_id, "error": error.response.get("error")},
            )
            raise LookupFailed(fallback=()) from error

    def mention_supervisors(self) -> str:
        """Mentions for a request message: groups as <!subteam^S…>, users as <@U…>."""
        return " ".join(
            f"<!subteam^{i}>" if i.startswith("S") else f"<@{i}>" for i in self.supervisor_ids
        )
