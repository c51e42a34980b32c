"""One bot replica's daily run, as its own OS process, for tests/core/reminders/test_reminders.py.

Usage: python -m tests.support.reminder_worker <now as ISO 8601>, configured by the environment
(DATABASE_URL, SLACK_API_URL, ...). Prints "ready", waits for "go" on stdin so that several
processes start the sweep together, runs it, delivers what is due and prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import datetime

from bot.config import load_settings
from bot.db import Database
from bot.delivery.worker import Outbox
from bot.reminders.sweep import run_daily
from handlers.app import make_client
from handlers.digest import render_digest
from handlers.notices import render_notice
from handlers.slack_port import WebClientPort


def main(argv: list[str]) -> int:
    now = datetime.fromisoformat(argv[1])
    settings = load_settings(dict(os.environ))
    database = Database(settings.database_url)
    outbox = Outbox(
        database,
        settings,
        slack=WebClientPort(make_client(settings)),
        render_notice=render_notice,
    )
    with database.read_session() as session:  # connect before the start line, not after
        session.connection()
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    result = run_daily(database, settings, now=now, render=render_digest)
    delivered = 0
    while attempted := outbox.deliver_due():
        delivered += attempted
    print(json.dumps({"claimed": result.claimed, "delivered": delivered}), flush=True)
    database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
