"""The weekly adoption report (SPEC §10): Mondays at REMINDER_TIME in PRACTICE_TIMEZONE, the
chart of the last 12 full weeks uploaded to REMINDER_CHANNEL_ID, once per ISO week.

It uses the digest's exactly-once machinery (bot/reminders/sweep.py): a ReminderRun row of kind
"adoption" whose local_date is the ISO week's Monday, claimed with INSERT ... ON CONFLICT DO
NOTHING in the transaction that queues the upload as outgoing work (kind REPORT_UPLOAD,
delivered and retried by the outbox like the PIN letters). Restarts, replicas and concurrent
`pinbot remind` runs therefore end with one chart; a bot or `pinbot remind` that runs any time
later in the week and finds the week unclaimed posts it then. A claim whose upload failed for
good (the outbox gave up after its retries) can be taken over by a `pinbot remind` later that
week, as the digest's can that day; the bot's catch-up only looks for unclaimed weeks.

The chart shows the 12 full weeks before the week's Monday, whenever in the week it is
posted, so a late post shows the same weeks as Monday's would (their rates may have risen).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlmodel import col, select

from bot import audit
from bot.config import Settings
from bot.db import Database
from bot.delivery import keys
from bot.reminders.claims import claim_run, enqueue_once, worker_id
from bot.reminders.digest import as_local, clock_label, day_label
from bot.reminders.outcome import DigestOutcome, DigestState, why_not_posted
from bot.reports.adoption import DEFAULT_WEEKS, build_report, week_start
from bot.reports.post import report_to_json, summary_text
from models import OutgoingWork, ReminderRun, WorkKind, WorkStatus

log = logging.getLogger(__name__)

ADOPTION = "adoption"  # ReminderRun.kind of the weekly report; local_date = the week's Monday
WEEKLY_JOB = "reports-weekly"
WORK_PREFIX = keys.WEEKLY_REPORT


def report_due(now_local: datetime, at: time) -> bool:
    """From this week's Monday at REMINDER_TIME to the end of Sunday, the week's report is
    owed (unless its week is claimed)."""
    monday = week_start(now_local.date())
    return now_local.date() > monday or now_local.time() >= at


def week_claimed(database: Database, monday: date) -> bool:
    with database.read_session() as session:
        return (
            session.exec(
                select(ReminderRun.id).where(
                    ReminderRun.kind == ADOPTION, ReminderRun.local_date == monday.isoformat()
                )
            ).first()
            is not None
        )


@dataclass(frozen=True)
class WeeklyResult:
    monday: date
    due: bool
    claimed: bool = False  # this call won the week's run
    run: ReminderRun | None = None
    issued: int = 0  # PINs in the report's weeks
    queued: bool = False  # the chart is queued for REMINDER_CHANNEL_ID


def run_weekly(
    database: Database,
    settings: Settings,
    *,
    now: datetime,
    actor: str = "system",
    worker: str | None = None,
    force: bool = False,
) -> WeeklyResult:
    """Claim this ISO week's report if it is due (or `force`: now, even if already posted)
    and, if this call won, queue the upload in the same transaction. When nothing is posted —
    REMINDER_CHANNEL_ID unset, or no PIN issued in the 12 weeks — no claim is kept: the week
    stays open and a later run that week posts the report once it can."""
    now = now.astimezone(UTC)
    local = now.astimezone(settings.timezone)
    monday = week_start(local.date())
    if not (force or report_due(local, settings.reminder_time)):
        return WeeklyResult(monday, due=False)
    if not settings.reminder_channel_id:
        return WeeklyResult(monday, due=True)
    with database.transaction() as session:
        run = claim_run(
            session,
            kind=ADOPTION,
            work_prefix=WORK_PREFIX,
            local_date=monday.isoformat(),
            worker=worker or worker_id(),
            now=now,
            force=force,
        )
        if run is None:
            existing = session.exec(
                select(ReminderRun).where(
                    ReminderRun.kind == ADOPTION, ReminderRun.local_date == monday.isoformat()
                )
            ).one()
            return WeeklyResult(monday, due=True, claimed=False, run=existing)
        report = build_report(
            session,
            now=now,
            tz=settings.timezone,
            practice_name=settings.practice_name or "pinbot",
            weeks=DEFAULT_WEEKS,
            current_week=False,
        )
        channel = settings.reminder_channel_id
        issued = report.totals.issued
        queued = bool(issued)
        if queued:
            token = uuid.uuid4().hex[:8]  # a taken-over run posts anew
            first, last = report.weeks[0].week_start, report.weeks[-1].week_end
            enqueue_once(
                session,
                kind=WorkKind.REPORT_UPLOAD,
                dedupe_key=keys.weekly_report(monday, token),
                now=now,
                payload={
                    "channel_id": channel,
                    "filename": f"pin-adoption-{first.isoformat()}-to-{last.isoformat()}.png",
                    "title": f"PIN adoption, {report.date_range}",
                    "comment": summary_text(report),
                    "report": report_to_json(report),
                    "reminder_run_id": run.id,
                },
            )
            run.entries = issued
        else:
            session.delete(run)  # nothing to post: the week stays open (a later run posts it)
        if queued or actor != "system":  # the catch-up re-checks an open week: news only
            audit.record(
                session,
                actor=actor,
                action="reports.adoption.force" if force else "reports.adoption",
                local_date=monday.isoformat(),
                issued=issued,
                queued=queued,
            )
    log.info(
        "adoption report queued" if queued else "adoption report: nothing to post",
        extra={"local_date": monday.isoformat(), "issued": issued},
    )
    return WeeklyResult(monday, due=True, claimed=True, run=run, issued=issued, queued=queued)


def pending_report_work(database: Database, monday: date) -> list[int]:
    """This week's report upload, if still undelivered (what `pinbot remind` delivers)."""
    with database.read_session() as session:
        rows = session.exec(
            select(OutgoingWork.id)
            .where(
                col(OutgoingWork.status) == WorkStatus.PENDING,
                col(OutgoingWork.dedupe_key).startswith(keys.weekly_report_prefix(monday)),
            )
            .order_by(col(OutgoingWork.id))
        ).all()
    return [i for i in rows if i is not None]


def describe_weekly(
    result: WeeklyResult, settings: Settings, outcome: DigestOutcome | None = None
) -> list[str]:
    """What `pinbot remind` says about the week's report; `outcome` (when given) is what
    became of the chart this run queued."""
    week = result.monday.isoformat()
    if not result.due:
        due = datetime.combine(result.monday, settings.reminder_time)
        at = f"{day_label(result.monday)} {clock_label(due)}"
        return [f"This week's adoption report is due {at}: not posted yet."]
    report = f"The adoption report for the week of {week}"
    run = result.run
    if not settings.reminder_channel_id:
        return [f"{report} was not posted: REMINDER_CHANNEL_ID is not set."]
    if not result.claimed and run is not None:
        when = as_local(run.posted_at or run.claimed_at, settings.timezone)
        stamp = f"{day_label(when)} {clock_label(when)}"
        if run.posted_at is None:
            return [f"{report} was queued at {stamp} and is being delivered: nothing posted."]
        return [f"{report} was already posted ({stamp}): nothing posted. Run "
                "`pinbot remind --force` to post it again."]  # fmt: skip
    if not result.queued:
        return [
            f"{report} was not posted: no PIN was issued in the 12 weeks before {week}. "
            "The week stays open: a later run this week posts it once there are PINs."
        ]
    channel = settings.reminder_channel_id
    what = f"{result.issued} PINs in the last 12 weeks"
    if outcome is None or outcome.state in {DigestState.POSTED_BY_ME, DigestState.POSTED_BY_OTHER}:
        return [f"{report}: {what}, chart posted to {channel}."]
    if outcome.state is DigestState.BEING_DELIVERED:
        return [f"{report}: {what}, chart queued; another run is posting it."]
    why = f": {why_not_posted(outcome.error, channel)}" if outcome.error else ""
    if outcome.state is DigestState.FAILED:
        return [
            f"{report} ({what}) was not posted{why}. Fix that, then run "
            "`pinbot remind --force` to post it."
        ]
    return [f"{report} ({what}) was not posted yet{why}. The running bot retries it "
            "(or run `pinbot remind` again)."]  # fmt: skip
