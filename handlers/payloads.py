"""Typed values carried in button values and private_metadata, validated on the way back in:
a tampered or stale value is refused with a sentence, never a traceback."""

from __future__ import annotations

from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.errors import PinbotError

M = TypeVar("M", bound="Payload")
MAX_ID = 2**31 - 1  # the largest id any store holds; a bigger one would be a database error
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def dump(self) -> str:
        return self.model_dump_json(exclude_none=True)

    @classmethod
    def load(cls: type[M], raw: str | None) -> M:
        try:
            return cls.model_validate_json(raw or "")
        except ValidationError as error:
            raise PinbotError(
                "That button or dialog is out of date. Search again with /family."
            ) from error


class FamilyRef(Payload):
    family_id: Id


class ChildRef(Payload):
    family_id: Id
    patient_id: Id


class IssueDialogMeta(Payload):
    family_id: Id
    channel_id: str | None = None
    thread_ts: str | None = None
    seen_active_pin_ids: tuple[Id, ...] = ()
