"""Domain exceptions. Each carries the sentence the user sees; handlers never build their own
error text for these, and nothing here ever includes a PIN."""

from __future__ import annotations

from typing import ClassVar


class PinbotError(Exception):
    """An expected problem the user can act on. `str(error)` is shown to them as is.

    In a submitted dialog the sentence shows on the field it names (or the first); an error
    that `closes_dialog` (nothing left to type: decided meanwhile, not yours to decide) closes
    the dialog and reaches the user as a message instead."""

    closes_dialog: ClassVar[bool] = False

    def __init__(self, user_message: str, *, field: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.field = field  # the dialog block this error belongs to, when there is one


class InvalidQuery(PinbotError):
    pass


class NotFound(PinbotError):
    pass


class NotAllowed(PinbotError):
    closes_dialog = True


class ValidationFailed(PinbotError):
    """Dialog input that cannot be accepted; `errors` maps block ids to sentences."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


class AlreadyDecided(PinbotError):
    """Someone decided first; `decided_by` (a Slack user id) is named to the user as a mention
    by the Slack adapter."""

    closes_dialog = True

    def __init__(self, user_message: str, *, decided_by: str | None = None) -> None:
        super().__init__(user_message)
        self.decided_by = decided_by


class CannotStart(Exception):
    """`pinbot run` cannot start (Slack refused a token, or cannot be reached). `str(error)` is
    one sentence for the terminal that names the variable to fix; no traceback is shown."""
