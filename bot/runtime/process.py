"""The composition root: builds the running process from its parts — settings, database,
delivery worker, scheduler, the Slack app and its serving (HTTP or Socket Mode).

The only place in `bot/` that knows about the Slack adapter (`handlers`): everything below it
is built here and handed down, so the core never imports Slack."""

from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient

from bot.config import Settings
from bot.db import Database
from bot.delivery.outbox import Outbox, OutboxWorker
from bot.lookup.name_keys import name_keys
from bot.reminders import jobs
from bot.services import Services
from handlers.app import create_app, make_client
from handlers.digest import render_digest
from handlers.notices import render_notice
from handlers.serving import make_wsgi_app
from handlers.slack_port import WebClientPort

log = logging.getLogger(__name__)

RETRY_EVERY_SECONDS = 30


def make_services(settings: Settings, database: Database, client: WebClient) -> Services:
    outbox = Outbox(database, settings, slack=WebClientPort(client), render_notice=render_notice)
    return Services(settings=settings, database=database, outbox=outbox)


def start_background(services: Services) -> tuple[OutboxWorker, BackgroundScheduler]:
    worker = OutboxWorker(services.outbox)
    services.kick = worker.kick
    worker.start()
    worker.kick()  # anything left pending by a previous run goes out now
    scheduler = BackgroundScheduler(timezone=services.settings.timezone)
    scheduler.add_job(
        worker.kick,
        IntervalTrigger(seconds=RETRY_EVERY_SECONDS),
        id="outbox-retry",
        coalesce=True,
        max_instances=1,
    )
    jobs.register_jobs(scheduler, services, render=render_digest)
    scheduler.start()
    return worker, scheduler


def warm_search_cache(database: Database) -> None:
    """Load the name keys now: the first /family after start would otherwise pay for it
    (0.3–0.6 s at 250,000 patients), close to Slack's 3-second budget on a busy machine."""
    with database.read_session() as session:
        name_keys(session)


def run(settings: Settings, database: Database) -> None:
    client = make_client(settings)
    services = make_services(settings, database, client)
    app = create_app(services, client)
    warm_search_cache(database)
    worker, scheduler = start_background(services)
    try:
        if settings.socket_mode:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            log.info("starting in Socket Mode")
            SocketModeHandler(app, settings.slack_app_token).start()
        else:
            import waitress

            log.info("starting HTTP mode", extra={"port": settings.port})
            waitress.serve(
                make_wsgi_app(app, database, signing_secret=settings.slack_signing_secret),
                host="0.0.0.0",
                port=settings.port,
                threads=8,
                ident="pinbot",
            )
    finally:
        scheduler.shutdown(wait=False)
        worker.stop()
