"""The bot's long-lived collaborators, built once at start-up and handed to every request
(Bolt context) and every scheduled job."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property

from bot.config import Settings
from bot.db import Database
from bot.delivery.sealing import PinCipher
from bot.delivery.worker import Outbox
from bot.issuing.gateway import BuiltinGateway, PortalGateway
from bot.issuing.requests import IssuePolicy
from bot.secret import KeyPurpose, Secret
from models import utcnow


@dataclass
class Services:
    settings: Settings
    database: Database
    outbox: Outbox
    gateway: PortalGateway = field(default_factory=BuiltinGateway)
    # The one secret outside the database (SPEC §12); make_services loads the practice's own.
    secret: Secret = field(default_factory=Secret.ephemeral)
    clock: Callable[[], datetime] = utcnow
    # Wakes the delivery worker after a commit; a no-op until the worker is started.
    kick: Callable[[], None] = lambda: None

    def __post_init__(self) -> None:
        # The built-in gateway writes each PIN's lookup under the practice's own secret.
        if isinstance(self.gateway, BuiltinGateway) and self.gateway.lookup_key is None:
            self.gateway = BuiltinGateway(self.secret.derive(KeyPurpose.PIN_LOOKUP))

    @cached_property
    def pin_cipher(self) -> PinCipher:
        """Seals PINs into outgoing work; the outbox opens them with the same secret's key."""
        return PinCipher(self.secret)

    def now_local(self) -> datetime:
        return self.clock().astimezone(self.settings.timezone)

    def today(self) -> date:
        return self.now_local().date()

    def issue_policy(self) -> IssuePolicy:
        return IssuePolicy(
            now=self.clock(),
            today=self.today(),
            pin_ttl_days=self.settings.pin_ttl_days,
            minor_age_limit=self.settings.minor_age_limit,
            pin_cipher=self.pin_cipher,
            default_language=self.settings.default_language,
            timezone=self.settings.timezone,
        )
