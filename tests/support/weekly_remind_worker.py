"""One `pinbot remind` as its own OS process, for tests/flows/test_weekly_report.py.

Usage: python -m tests.support.weekly_remind_worker <now as ISO 8601>, configured by the environment
(DATABASE_URL, SLACK_API_URL, ...). Prints "ready", waits for "go" on stdin so that several
processes start together, then runs exactly what `pinbot remind` runs (the daily sweep, the
week's adoption report, delivery) with the clock at <now>, and exits with its exit code.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime

from bot.config import load_settings
from bot.db import Database
from bot.runtime.process import REMIND_MODULES, import_modules, run_from_cli


def main(argv: list[str]) -> int:
    now = datetime.fromisoformat(argv[1])
    settings = load_settings(dict(os.environ))
    database = Database(settings.database_url)
    with database.read_session() as session:  # connect before the start line, not after
        session.connection()
    import_modules(REMIND_MODULES)  # what run_from_cli imports: loaded before the start line
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return 2
    code = run_from_cli(settings, database, force=False, clock=lambda: now)
    database.dispose()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
