"""The composition root: builds the running process from its parts — settings, database,
delivery worker, scheduler, the HL7 listener (when HL7_PORT is set), the Slack app and its
serving (HTTP or Socket Mode).

The only place in `bot/` that knows about the Slack adapter (`handlers`): everything below it
is built here and handed down, so the core never imports Slack.

What only some verbs need is imported in the function that needs it: `pinbot check` uses the
Slack checks alone, `pinbot remind` no scheduler, feed or search, and none of them the portal
API. `run` imports the rest before its start-up objects are frozen (`run`)."""

from __future__ import annotations

import gc
import importlib
import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from datetime import datetime
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TYPE_CHECKING, Any

from bot import logs
from bot.config import ConfigError, Settings
from bot.db import Database
from bot.runtime.checks import CheckResult
from handlers.serving import SERVER_OPTIONS, make_wsgi_app
from handlers.slack_setup import slack_checks, verify_tokens
from models import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from slack_bolt import App
    from slack_sdk import WebClient

    from bot.delivery.worker import OutboxWorker
    from bot.feed.mllp import MllpServer
    from bot.services import Services
    from portal_api.serving import PortalApiServer

log = logging.getLogger(__name__)


def make_client(settings: Settings) -> WebClient:
    """handlers/app.py's Web API client. The Slack app's module loads every handler and what
    they use (~0.35 s of CPU), which `pinbot check` does not need: imported on first use."""
    from handlers import app

    return app.make_client(settings)


def create_app(services: Services, client: WebClient) -> App:
    """handlers/app.py's Bolt app with its listeners (see make_client)."""
    from handlers import app

    return app.create_app(services, client)


def make_services(settings: Settings, database: Database, client: WebClient) -> Services:
    from bot.delivery.sealing import PinCipher
    from bot.delivery.worker import Outbox
    from bot.secret import load_secret
    from bot.services import Services
    from handlers.notices import render_notice
    from handlers.slack_port import WebClientPort

    secret = load_secret(settings.key_file, settings.key_override)
    outbox = Outbox(
        database,
        settings,
        slack=WebClientPort(client),
        render_notice=render_notice,
        pin_cipher=PinCipher(secret),
    )
    return Services(settings=settings, database=database, outbox=outbox, secret=secret)


def start_background(services: Services) -> tuple[OutboxWorker, BackgroundScheduler]:
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    from bot.delivery.outbox import seal_legacy_payloads
    from bot.delivery.worker import OutboxWorker
    from bot.lookup.name_keys import REFRESH_SECONDS, refresh_name_keys
    from bot.portal import throttle
    from bot.reminders import jobs
    from handlers.digest import render_digest

    # Work queued by a version that wrote PINs in plaintext is sealed before anything else.
    seal_legacy_payloads(services.database, services.pin_cipher)
    worker = OutboxWorker(services.outbox)
    services.kick = worker.kick
    worker.start()
    worker.kick()  # anything left pending by a previous run goes out now
    scheduler = BackgroundScheduler(timezone=services.settings.timezone)
    scheduler.add_job(
        refresh_name_keys,
        IntervalTrigger(seconds=REFRESH_SECONDS),
        args=[services.database],
        id="name-keys",
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        throttle.prune_job,
        IntervalTrigger(minutes=15),
        args=[services.database, services.clock],
        id="portal-throttle-prune",
        coalesce=True,
        max_instances=1,
    )
    jobs.register_jobs(scheduler, services, render=render_digest)
    scheduler.start()
    return worker, scheduler


def start_feed(services: Services, **limits: Any) -> MllpServer | None:
    """The HL7 listener when HL7_PORT is set (SPEC §8), on its own threads: each connection
    has one, which parses, commits and acknowledges its messages; Bolt's listeners and the
    delivery worker never wait for it. A commit that queued thread messages wakes the worker.
    Over TLS when HL7_TLS_CERT is set (the files were checked when the settings loaded).
    `limits`: MllpServer's timeouts and caps, for tests that cannot wait a minute."""
    from bot.certificates import server_context
    from bot.feed.apply import FeedApplier
    from bot.feed.mllp import MllpServer

    config = services.settings.feed
    if not config.configured:
        return None
    applier = FeedApplier(
        services.database,
        services.settings,
        gateway=services.gateway,
        clock=services.clock,
        kick=lambda: services.kick(),  # read at call time: the worker is started later
    )
    tls = None
    if config.tls_cert is not None and config.tls_key is not None:
        tls = server_context(config.tls_cert, config.tls_key, config.tls_client_ca)
    server = MllpServer(
        config.bind,
        config.port or 0,
        handle=applier.handle,
        allowed_sources=config.allowed_sources,
        tls=tls,
        **limits,
    )
    server.start()
    return server


def portal_api_server(services: Services) -> PortalApiServer:
    """The portal API (SPEC §11) over these services, its port bound and certificate read now:
    uvicorn on its own thread and event loop, its routes on worker threads. Imported here, in
    the API's own process: FastAPI, pydantic's models and uvicorn cost ~0.2 s of CPU at every
    start of `pinbot run` and `pinbot remind`, whose own process never serves the API."""
    from portal_api.app import create_api
    from portal_api.serving import PortalApiServer

    return PortalApiServer(create_api(services), services.settings.portal_api)


# How long the portal API's process may take to import, open the database and bind its port.
PORTAL_START_TIMEOUT_S = 30.0
# A portal API process that stops on its own is started again after this pause.
PORTAL_RESTART_PAUSE_S = 5.0


class PortalApiProcess:
    """The portal API in a process of its own, started and stopped with pinbot's.

    Why a process: Python runs one thread at a time per process. Measured under the portal
    load bench (bench/RESULTS.md, issue 18), the portal's attempts and the staff's /family in
    one process kept it at one core: ~140 failed attempts/s, where the machine had room for
    more. In its own process the portal API gets its own interpreter lock and cannot take
    the Slack side's turn. It shares the database (the guessing counters are rows, so the
    limits hold across processes as across replicas); it queues thread notices, which this
    process's delivery worker sends on its next poll (within 5 s). A process that dies is
    started again; SIGTERM stops it with pinbot."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")  # no fork of a threaded process
        self._process: BaseProcess | None = None
        self._stopping = threading.Event()

    def start(self) -> None:
        """Returns once the API is listening; a taken port or a bad certificate is the
        ConfigError its process met, raised here (one clear line before anything starts)."""
        problems = self._spawn()
        if problems:
            self.stop()
            raise ConfigError(problems)
        threading.Thread(target=self._watch, name="portal-api-watch", daemon=True).start()

    def _spawn(self) -> list[str]:
        receiving, sending = self._context.Pipe(duplex=False)
        self._process = self._context.Process(
            target=serve_portal_api,
            args=(self.settings, sending, os.getpid()),
            name="pinbot-portal-api",
            daemon=True,
        )
        self._process.start()
        sending.close()
        if not receiving.poll(PORTAL_START_TIMEOUT_S):
            return [f"the portal API did not start within {PORTAL_START_TIMEOUT_S:.0f} s"]
        try:
            problems: list[str] = receiving.recv()
        except EOFError:
            return ["the portal API's process stopped while starting (its log says why)"]
        return problems

    def _watch(self) -> None:
        while self._process is not None and not self._stopping.is_set():
            self._process.join()
            if self._stopping.is_set():
                return
            log.error("portal API process stopped", extra={"exitcode": self._process.exitcode})
            if self._stopping.wait(PORTAL_RESTART_PAUSE_S):
                return
            for problem in self._spawn():
                log.error("portal API restart failed: %s", problem)

    def stop(self) -> None:
        """SIGTERM to the API's process: requests in progress finish, new ones are refused."""
        self._stopping.set()
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(timeout=10)
            if process.is_alive():
                process.kill()


def serve_portal_api(settings: Settings, ready: Connection, parent_pid: int) -> None:
    """The portal API process's main: its own database pools and services (no Slack client is
    used here), the API listening, `ready` told [] or the problems; then serve until SIGTERM
    or until pinbot's own process is gone."""
    logs.configure()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stopped.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches pinbot, which stops us
    try:
        database = Database(settings.database_url)
        server = portal_api_server(make_services(settings, database, make_client(settings)))
        server.start()
    except ConfigError as error:
        ready.send(error.problems)
        return
    ready.send([])
    freeze_start_up_objects()
    while not stopped.wait(1.0):
        if os.getppid() != parent_pid:  # pinbot was killed: do not serve on alone
            break
    server.stop()
    database.dispose()


def stop_on_sigterm(
    listener: MllpServer | None, portal_api: PortalApiProcess | None = None
) -> None:
    """SIGTERM (systemd, Docker, Kubernetes) stops the HL7 listener first — a message being
    applied is committed and acknowledged, one not fully read gets no ACK and is resent —
    then unwinds the main thread (waitress or Socket Mode) through run()'s cleanup."""

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        log.info("SIGTERM: stopping")
        if listener is not None:
            listener.stop()
        if portal_api is not None:
            portal_api.stop()  # requests in progress finish; new connections are refused
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_sigterm)


def warm_search_cache(database: Database) -> None:
    """Load the name keys now: the first /family after start would otherwise pay for it
    (0.3–0.6 s at 250,000 patients), close to Slack's 3-second budget on a busy machine; then
    run a few hundred searches on the practice's own names, so the statements they need are
    compiled before staff search (bot/lookup/search.py `warm_up`; at most 2 s)."""
    from bot.lookup.name_keys import name_keys
    from bot.lookup.search import warm_up

    with database.read_session() as session:
        name_keys(session)
        warm_up(session)


def freeze_start_up_objects() -> None:
    """Leave what start-up built — modules, the app, the name keys, the compiled statements:
    most of the process's objects, alive until it stops — out of the garbage collector's
    full collections, which walk every object it tracks: 150-400 ms on a busy machine at
    250,000 patients, once every ~250 /family requests, which made the slowest requests of
    all (bench/RESULTS.md, issue 22). Collected first, so no garbage is kept; frozen objects
    are still freed when nothing refers to them."""
    gc.collect()
    gc.freeze()


# What the functions above import when first called, by the verb that calls them.
REMIND_MODULES = (  # make_services, make_client, run_from_cli
    "bot.delivery.sealing",
    "bot.delivery.worker",
    "bot.runtime.remind",
    "bot.secret",
    "bot.services",
    "handlers.app",
    "handlers.digest",
    "handlers.notices",
    "handlers.slack_port",
)
SERVING_MODULES = (  # start_background, start_feed: called by `run` after the freeze
    "apscheduler.schedulers.background",
    "apscheduler.triggers.interval",
    "bot.certificates",
    "bot.delivery.outbox",
    "bot.delivery.worker",
    "bot.feed.apply",
    "bot.feed.mllp",
    "bot.lookup.name_keys",
    "bot.portal.throttle",
    "bot.reminders.jobs",
    "handlers.digest",
)


def import_modules(names: tuple[str, ...]) -> None:
    """Import now what a verb would import on first use: `run` before its freeze, so those
    modules are frozen with the rest of start-up; tests that release several processes at
    once, so that they race on the database rather than on their imports."""
    for name in names:
        importlib.import_module(name)


def run(settings: Settings, database: Database) -> None:
    client = make_client(settings)
    verify_tokens(settings, client)  # a refused token is one sentence, not Bolt's traceback
    services = make_services(settings, database, client)
    app = create_app(services, client)
    portal_api = PortalApiProcess(settings) if settings.portal_api.configured else None
    if portal_api is not None:
        portal_api.start()
    warm_search_cache(database)
    import_modules(SERVING_MODULES)
    freeze_start_up_objects()
    worker, scheduler = start_background(services)
    listener = start_feed(services)
    stop_on_sigterm(listener, portal_api)
    try:
        if app_token := settings.slack_app_token:  # Socket Mode
            from handlers.socket_mode import SocketModeServing

            log.info("starting in Socket Mode")
            SocketModeServing(app, app_token).start()
        else:
            import waitress

            where = {"bind": settings.http_bind, "port": settings.port}
            log.info("starting HTTP mode", extra=where)
            waitress.serve(
                make_wsgi_app(app, database, signing_secret=settings.slack_signing_secret),
                host=settings.http_bind,
                port=settings.port,
                threads=8,
                **SERVER_OPTIONS,
            )
    finally:
        if listener is not None:
            listener.stop()
        if portal_api is not None:
            portal_api.stop()
        scheduler.shutdown(wait=False)
        worker.stop()


def run_from_cli(
    settings: Settings,
    database: Database,
    *,
    force: bool,
    clock: Callable[[], datetime] = utcnow,
    client: WebClient | None = None,
    wait: float | None = None,
) -> int:
    """`pinbot remind`: the services with a Slack client, one clock for the run and its
    delivery, and the digest's Block Kit renderer, handed to the reminder run. `wait`: for
    another run's delivery in flight (default bot/runtime/remind.py OTHER_RUN_WAIT_SECONDS)."""
    from bot.runtime.remind import OTHER_RUN_WAIT_SECONDS, remind_now
    from handlers.digest import render_digest

    services = make_services(settings, database, client or make_client(settings))
    services.clock = services.outbox.clock = clock
    if wait is None:
        wait = OTHER_RUN_WAIT_SECONDS
    return remind_now(services, render=render_digest, force=force, wait=wait)


def check_slack(settings: Settings) -> list[CheckResult]:
    """`pinbot check`'s Slack lines: the tokens and the channels (handlers/slack_setup.py)."""
    return [CheckResult(*line) for line in slack_checks(settings)]
