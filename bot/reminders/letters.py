"""The PIN-letter sweep (SPEC §6): letters are credentials, so each uploaded PDF is deleted from
Slack PIN_LETTER_TTL_HOURS after upload, and the thread is told."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import String, exists, literal
from sqlmodel import col, select

from bot import audit
from bot.config import Settings
from bot.db import Database
from bot.delivery import keys
from bot.reminders.claims import enqueue_once
from bot.reminders.outcome import DAILY as DAILY  # re-exported: the digest run's kind
from models import (
    IssueBatch,
    LetterFile,
    OutgoingWork,
    WorkKind,
)


def sweep_letters(database: Database, settings: Settings, *, now: datetime) -> int:
    """Queue files.delete for every PIN-letter PDF older than PIN_LETTER_TTL_HOURS (0 = keep).
    Each file is queued once ever (dedupe key delete:<file id>); delivery records the deletion
    and tells the thread (bot/delivery/outbox.py)."""
    hours = settings.pin_letter_ttl_hours
    if hours == 0:
        return 0
    cutoff = now - timedelta(hours=hours)
    queued_before = exists().where(
        col(OutgoingWork.dedupe_key) == literal("delete:", String) + col(LetterFile.file_id)
    )
    with database.transaction() as session:
        rows = session.exec(
            select(LetterFile, IssueBatch.family_id)
            .join(IssueBatch, col(LetterFile.batch_id) == col(IssueBatch.id), isouter=True)
            .where(
                col(LetterFile.deleted_at).is_(None),
                col(LetterFile.uploaded_at) <= cutoff,
                ~queued_before,
            )
        ).all()
        queued = 0
        for letter, family_id in rows:
            work_id = enqueue_once(
                session,
                kind=WorkKind.LETTERS_DELETE,
                dedupe_key=keys.letters_delete(letter.file_id),
                now=now,
                family_id=family_id,
                payload={
                    "file_id": letter.file_id,
                    "channel_id": letter.channel_id,
                    "thread_ts": letter.thread_ts,
                    "ttl_hours": hours,
                },
            )
            if work_id is not None:
                audit.record(
                    session,
                    actor="system",
                    action="letters.delete",
                    family_id=family_id,
                    batch_id=letter.batch_id,
                )
                queued += 1
    return queued
