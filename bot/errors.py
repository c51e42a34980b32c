"""Domain exceptions. Each carries the sentence the user sees; handlers never build their own
error text for these, and nothing here ever includes a PIN."""

from __future__ import annotations


class PinbotError(Exception):
    """An expected problem the user can act on. `str(error)` is shown to them as is."""

    def __init__(self, user_message: str, *, field: str | None = None) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.field = field  # the dialog block this error belongs to, when there is one


class InvalidQuery(PinbotError):
    pass


class NotFound(PinbotError):
    pass


class NotAllowed(PinbotError):
    pass


class ValidationFailed(PinbotError):
    """Dialog input that cannot be accepted; `errors` maps block ids to sentences."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(" ".join(errors.values()))
        self.errors = errors


class AlreadyDecided(PinbotError):
    pass
