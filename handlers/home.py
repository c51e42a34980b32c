"""The Home tab (SPEC §10): app_home_opened -> views.publish with today's workload as counts
(bot/reports/workload.py), and buttons that post the `/pinbot today` and `/pinbot pending`
lists into the staff channel (the first of ALLOWED_CHANNEL_IDS; REMINDER_CHANNEL_ID when that
is *). Counts only: Slack allows PHI in messages and files, not in a Home tab. A guest sees one
sentence and nothing else."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from bot.config import Settings
from bot.reports.figures import percent
from bot.reports.workload import CACHE_SECONDS, Workload, WorkloadCache, measure_workload
from bot.services import Services
from handlers.directory import Directory
from handlers.ids import HomeIds
from handlers.notices import mention
from handlers.pipeline import RequestDatabase, Staff, listener
from handlers.worklists import pending_text, today_text

log = logging.getLogger(__name__)

GUEST_SENTENCE = "pinbot is for practice staff only; guest accounts can't use it."
NO_STAFF_CHANNEL = (
    "Set ALLOWED_CHANNEL_IDS to the staff channel (or REMINDER_CHANNEL_ID, when it is *) and "
    "these buttons will post today's appointments and the waiting name fixes there."
)


def staff_channel(settings: Settings) -> str | None:
    if settings.any_channel:  # commands work anywhere: the digest's channel is the staff's
        return settings.reminder_channel_id
    return settings.allowed_channel_ids[0] if settings.allowed_channel_ids else None


def _when(value: datetime) -> str:
    return f"{value:%a %m/%d} {value:%I:%M %p}".replace(" 0", " ")


def _ago(then: datetime, now: datetime) -> str:
    minutes = max(0, int((now - then).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes} min ago"
    hours = minutes // 60
    return f"{hours} h ago" if hours < 48 else f"{hours // 24} days ago"


def _count(n: int, one: str, many: str) -> str:
    return f"*{n}* {one if n == 1 else many}"


def _rate_line(workload: Workload) -> str:
    if workload.registration_rate is None:
        return (
            "*Registered within 30 days:* no rate yet (no PINs in the last 12 weeks whose "
            "30 days are over)."
        )
    return (
        f"*Registered within 30 days:* *{percent(workload.registration_rate)}* of "
        f"{workload.rated_pins} PINs issued in the weeks of {workload.rated_range} "
        "(the last 12 weeks whose 30 days are over)."
    )


def _feed_line(workload: Workload) -> str:
    last = workload.feed_last_message
    if last is None:
        return "*EHR feed:* no message received yet."
    return f"*EHR feed:* last message {_when(last)} ({_ago(last, workload.measured_at)})."


def home_view(workload: Workload, *, channel: str | None, practice_name: str) -> View:
    """Counts and the buttons; the data in, a view out (no database, no Web API)."""
    fields = [
        MarkdownTextObject(text=_count(workload.pending_name_fixes, "name fix waiting",
                                       "name fixes waiting") + " for a supervisor"),
        MarkdownTextObject(text=_count(workload.no_portal_today, "appointment", "appointments")
                           + " today without portal access"),
        MarkdownTextObject(text=_count(workload.unregistered_pins, "PIN", "PINs")
                           + " issued 7+ days ago, not registered"),
        MarkdownTextObject(text=_count(workload.expiring_pins, "PIN", "PINs")
                           + " expiring within 7 days"),
    ]  # fmt: skip
    blocks: list[Block] = [
        HeaderBlock(text=f"pinbot at {practice_name}"[:150]),
        SectionBlock(fields=fields),
        SectionBlock(text=MarkdownTextObject(text=_rate_line(workload))),
    ]
    if workload.feed_configured:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=_feed_line(workload))))
    blocks.append(DividerBlock())
    if channel is None:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=NO_STAFF_CHANNEL)))
    else:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=f"Post the lists into <#{channel}>:"))
        )
        blocks.append(
            ActionsBlock(
                elements=[
                    ButtonElement(text="Today's appointments", action_id=HomeIds.POST_TODAY,
                                  value="today"),
                    ButtonElement(text="Pending name fixes", action_id=HomeIds.POST_PENDING,
                                  value="pending"),
                ]
            )
        )  # fmt: skip
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Counts only, as of {_when(workload.measured_at)} (updated at most "
                    f"every {CACHE_SECONDS} s). Names are in the staff channel, never here."
                )
            ]
        )
    )
    return View(type="home", blocks=blocks)


def guest_view() -> View:
    return View(type="home", blocks=[SectionBlock(text=GUEST_SENTENCE)])


def register(app: App) -> None:
    cache = WorkloadCache()  # one per app: every staff member's tab shares it

    def workload(services: Services, db: RequestDatabase) -> Workload:
        now = services.clock()

        def load() -> Workload:
            return measure_workload(db.reads, now=now, settings=services.settings)

        return cache.get(now, load)

    def home_opened(
        event: dict[str, Any],
        client: WebClient,
        services: Services,
        directory: Directory,
        db: RequestDatabase,
    ) -> None:
        user = event.get("user")
        if event.get("tab") != "home" or not isinstance(user, str):
            return
        if directory.is_guest(user):
            view = guest_view()
        else:
            settings = services.settings
            view = home_view(
                workload(services, db),
                channel=staff_channel(settings),
                practice_name=settings.practice_name or "your practice",
            )
        client.views_publish(user_id=user, view=view)
        log.info("home tab published", extra={"user_id": user})

    def post_list(
        ack: Ack,
        body: dict[str, Any],
        client: WebClient,
        services: Services,
        db: RequestDatabase,
        staff: Staff,
    ) -> None:
        ack()
        channel = staff_channel(services.settings)
        action = (body.get("actions") or [{}])[0].get("action_id")
        if channel is None:
            return  # the tab shows no buttons then; an old tab's click does nothing
        if action == HomeIds.POST_TODAY:
            text = today_text(db.reads, services)
        else:
            text = pending_text(db.reads, services, client)
        heading = f"From {mention(staff.user_id)}'s Home tab:"
        client.chat_postMessage(channel=channel, text=f"{heading}\n{text}")

    app.event("app_home_opened")(listener(home_opened))
    app.action(HomeIds.POST_TODAY)(listener(post_list))
    app.action(HomeIds.POST_PENDING)(listener(post_list))
