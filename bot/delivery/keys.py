"""Every outgoing work's dedupe key, built in one place. A key names one delivery for good:
queueing the same key twice is a no-op, which is what makes retries, replicas and re-delivered
Slack requests send each thing once. The prefixes are stored in the database: never rename."""

from __future__ import annotations

from datetime import date, datetime

DIGEST, WEEKLY_REPORT = "digest", "adoption"  # the prefixes of the claimed runs' work


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


def letters_not_removed_notice(file_id: str) -> str:
    """The thread's one warning that a letter's deletion has been failing for a day."""
    return f"undeleted:{file_id}"


def run_work_prefix(prefix: str, local_date: str | date) -> str:
    """Every work of one claimed run starts with this: a run with work still queued is never
    taken over (bot/reminders/sweep.py claim_run)."""
    return f"{prefix}:{local_date}:"


def digest_prefix(local_date: str | date) -> str:
    """Every message of one day's digest starts with this (a digest may span messages)."""
    return run_work_prefix(DIGEST, local_date)


def weekly_report_prefix(monday: str | date) -> str:
    return run_work_prefix(WEEKLY_REPORT, monday)


def weekly_report(monday: str | date, token: str) -> str:
    """The adoption chart of the ISO week starting `monday` (a new token per claim)."""
    return f"{weekly_report_prefix(monday)}{token}"


def digest_message(local_date: str | date, token: str, part: int) -> str:
    return f"{digest_prefix(local_date)}{token}:{part}"


def name_fix_nudge(name_fix_id: int, local_date: str | date) -> str:
    return f"nudge:{name_fix_id}:{local_date}"


def name_fix_nudge_pattern(local_date: str | date) -> str:
    """SQL LIKE pattern of every nudge queued on one day."""
    return f"nudge:%:{local_date}"


def feed_notice(kind: str, patient_id: int, message: tuple[str, str, str]) -> str:
    """A thread notice one feed message causes for one patient (message = MSH-3, -4, -10)."""
    return f"{kind}:{patient_id}:{':'.join(message)}"[:200]


def name_fix_closed(name_fix_id: int) -> str:
    return f"name_fix_closed:{name_fix_id}"


def portal_notice(kind: str, pin_id: int) -> str:
    """The thread's line when the portal API registered or locked a PIN (once per PIN)."""
    return f"portal:{kind}:{pin_id}"


def portal_client_alarm(client_id: int, told_at: datetime) -> str:
    """The staff channel's warning about a failing API client (at most one an hour)."""
    return f"portal:slowed:{client_id}:{told_at:%Y%m%dT%H%M%S}"


LETTER_CLEANUP_PREFIXES = (
    letters_delete(""),
    letters_deleted_notice(""),
    letters_not_removed_notice(""),
)
