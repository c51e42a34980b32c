"""Every outgoing work's dedupe key, built in one place. A key names one delivery for good:
queueing the same key twice is a no-op, which is what makes retries, replicas and re-delivered
Slack requests send each thing once. The prefixes are stored in the database: never rename."""

from __future__ import annotations

from datetime import date


def welcome_email(batch_id: int) -> str:
    return f"email:{batch_id}"


def letters_upload(batch_id: int) -> str:
    return f"letters:{batch_id}"


def batch_summary(batch_id: int) -> str:
    return f"summary:{batch_id}"


def delivered_notice(work_id: int) -> str:
    """The thread's "sent" line after a welcome email went out."""
    return f"sent:{work_id}"


def failure_notice(work_id: int, attempts: int) -> str:
    return f"failed:{work_id}:{attempts}"


def letters_delete(file_id: str) -> str:
    return f"delete:{file_id}"


def letters_deleted_notice(file_id: str) -> str:
    return f"deleted:{file_id}"


def digest_prefix(local_date: str | date) -> str:
    """Every message of one day's digest starts with this (a digest may span messages)."""
    return f"digest:{local_date}:"


def digest_message(local_date: str | date, token: str, part: int) -> str:
    return f"{digest_prefix(local_date)}{token}:{part}"


def name_fix_nudge(name_fix_id: int, local_date: str | date) -> str:
    return f"nudge:{name_fix_id}:{local_date}"


def name_fix_nudge_pattern(local_date: str | date) -> str:
    """SQL LIKE pattern of every nudge queued on one day."""
    return f"nudge:%:{local_date}"


def name_fix_closed(name_fix_id: int) -> str:
    return f"name_fix_closed:{name_fix_id}"


LETTER_CLEANUP_PREFIXES = (letters_delete(""), letters_deleted_notice(""))
