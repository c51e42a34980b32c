"""What really happened to today's digest, as `pinbot remind` reports it.

Several runs may start together (a cron job and a person, two replicas' timers): the day's
ReminderRun claim decides which run queues the digest, and the outbox's claim on each message
decides which run posts it — not necessarily the one that queued it. So a run's own view
(what it queued, what `deliver()` returned) is not the answer; the rows are: the current
claim's digest messages (queued at or after the claim), their status and who delivered them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from sqlmodel import col, select

from bot.db import Database
from bot.delivery import keys
from models import OutgoingWork, ReminderRun, WorkStatus

DAILY = "daily"  # ReminderRun.kind of the digest run


class DigestState(StrEnum):
    NOTHING_QUEUED = "nothing queued"  # nothing to post, or nowhere to post it
    POSTED_BY_ME = "posted by this run"
    POSTED_BY_OTHER = "posted by another run"
    BEING_DELIVERED = "being delivered by another run"
    RETRYING = "failed for now; retried"
    FAILED = "gave up"


UNDELIVERED = frozenset({DigestState.BEING_DELIVERED, DigestState.RETRYING, DigestState.FAILED})


@dataclass(frozen=True)
class DigestOutcome:
    state: DigestState
    work_ids: frozenset[int] = frozenset()  # the current claim's digest messages
    posted_at: datetime | None = None  # when its last message went out
    error: str = ""  # the last delivery error of a message not posted ("Slack said …")

    @property
    def undelivered(self) -> bool:
        return self.state in UNDELIVERED


def digest_outcome(
    database: Database,
    local_date: date,
    *,
    delivered_by_me: Collection[int],
    now: datetime,
    kind: str = DAILY,
    work_prefix: str = keys.DIGEST,
) -> DigestOutcome:
    """The state of the day's digest (or, with the weekly report's `kind` and `work_prefix`,
    of the week's chart): `delivered_by_me` are the work ids this run's `deliver()` calls
    delivered; `now` is on the outbox's clock (its claims' leases)."""
    day = local_date.isoformat()
    with database.read_session() as session:
        run = session.exec(
            select(ReminderRun).where(ReminderRun.kind == kind, ReminderRun.local_date == day)
        ).first()
        if run is None:
            return DigestOutcome(DigestState.NOTHING_QUEUED)
        rows = session.exec(
            select(OutgoingWork).where(
                col(OutgoingWork.dedupe_key).startswith(
                    keys.run_work_prefix(work_prefix, day), autoescape=True
                ),
                col(OutgoingWork.created_at) >= run.claimed_at,
            )
        ).all()
    ids = frozenset(row.id for row in rows if row.id is not None)
    if not rows:
        return DigestOutcome(DigestState.NOTHING_QUEUED, ids, run.posted_at)
    statuses = {row.status for row in rows}
    if statuses == {WorkStatus.DONE}:
        posted_at = max((row.done_at for row in rows if row.done_at), default=run.posted_at)
        mine = any(row.id in delivered_by_me for row in rows)
        state = DigestState.POSTED_BY_ME if mine else DigestState.POSTED_BY_OTHER
        return DigestOutcome(state, ids, posted_at)
    error = next((row.last_error for row in rows if row.last_error), "")
    if WorkStatus.FAILED in statuses:
        return DigestOutcome(DigestState.FAILED, ids, error=error)
    pending = [row for row in rows if row.status == WorkStatus.PENDING]
    if any(_held(row, now) for row in pending):
        return DigestOutcome(DigestState.BEING_DELIVERED, ids)
    return DigestOutcome(DigestState.RETRYING, ids, error=error)


def delivered_elsewhere(database: Database, work_ids: Collection[int], *, now: datetime) -> int:
    """How many of these pending works another run holds a delivery claim on right now."""
    if not work_ids:
        return 0
    with database.read_session() as session:
        rows = session.exec(
            select(OutgoingWork).where(
                col(OutgoingWork.id).in_(list(work_ids)),
                col(OutgoingWork.status) == WorkStatus.PENDING,
            )
        ).all()
    return sum(1 for row in rows if _held(row, now))


def _held(work: OutgoingWork, now: datetime) -> bool:
    return work.claimed_until is not None and work.claimed_until > now


def digest_line(
    outcome: DigestOutcome,
    *,
    claimed: bool,
    day: str,
    entries: int,
    messages: int,
    channel: str | None,
    posted_at_label: str,
    waited: float,
) -> str:
    """The CLI's sentence for a digest that was queued (by this run or another)."""
    what = f"{entries} entr{'y' if entries == 1 else 'ies'} in {messages} message(s)"
    match outcome.state, claimed:
        case DigestState.POSTED_BY_ME, True:
            return f"Digest for {day}: {what}, posted to {channel} by this run."
        case DigestState.POSTED_BY_ME, False:
            return (
                f"Today's digest ({day}) was queued by another run; this run posted it "
                f"to {channel}."
            )
        case DigestState.POSTED_BY_OTHER, True:
            return (
                f"Digest for {day}: {what}, queued by this run and posted to {channel} by "
                f"another run at {posted_at_label}."
            )
        case DigestState.POSTED_BY_OTHER, False:
            return (
                f"Today's digest ({day}) was already posted by another run at "
                f"{posted_at_label}: nothing posted. Run `pinbot remind --force` to post it again."
            )
        case DigestState.BEING_DELIVERED, _:
            return (
                f"Today's digest ({day}) is being delivered by another run but was not posted "
                f"within {waited:g} s; run `pinbot remind` again in a few minutes to see "
                "whether it went out."
            )
        case DigestState.FAILED, _:
            return (
                f"Today's digest ({day}) was not posted: {why_not_posted(outcome.error, channel)}."
                " Fix that, then run `pinbot remind --force` to post it."
            )
    why = f": {why_not_posted(outcome.error, channel)}" if outcome.error else ""
    return (
        f"Today's digest ({day}) was not posted yet{why}. The running bot retries it "
        "(or run `pinbot remind` again)."
    )


def why_not_posted(error: str, channel: str | None) -> str:
    """A delivery error as stored ("Slack said not_in_channel", "files.completeUploadExternal:
    Slack said channel_not_found") in words that say what to do about it."""
    where = channel or "REMINDER_CHANNEL_ID"
    for codes, advice in _ADVICE:
        if any(code in error for code in codes):
            return advice.format(channel=where)
    return error or "no reason was recorded"


_ADVICE = (
    (("not_in_channel",), "pinbot is not in {channel}: /invite @pinbot there"),
    (
        ("channel_not_found",),
        "Slack has no channel {channel} that pinbot can see: check REMINDER_CHANNEL_ID "
        "(the channel's ID, not its name) and /invite @pinbot there",
    ),
    (("is_archived",), "{channel} is archived: unarchive it or set another REMINDER_CHANNEL_ID"),
    (
        ("invalid_auth", "token_revoked", "account_inactive", "not_authed"),
        "Slack refused SLACK_BOT_TOKEN: copy the Bot User OAuth Token again",
    ),
    (("missing_scope",), "the Slack app lacks a permission: reinstall it from manifest.yml"),
    (("unreachable",), "Slack could not be reached (network, proxy or SLACK_API_URL)"),
)
