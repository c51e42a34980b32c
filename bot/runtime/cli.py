"""`pinbot` command line (SPEC §4). Every failure is a plain sentence and a non-zero exit,
never a traceback."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from datetime import date
from functools import partial
from pathlib import Path

from sqlalchemy.exc import OperationalError, SQLAlchemyError

from bot import logs
from bot.clock import Clock
from bot.config import NO_TOKENS_GUIDANCE, ConfigError, Settings, default_key_file, load_settings
from bot.db import Database, DatabaseUnavailable, safe_url, upgrade, why_unreachable
from bot.errors import CannotStart

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
MAX_REPORT_WEEKS = 104


def _say(*lines: str) -> None:
    for line in lines:
        print(line)


def _fail(*lines: str, code: int = EXIT_FAILED) -> int:
    for line in lines:
        print(line, file=sys.stderr)
    return code


def _open_database(settings: Settings) -> Database:
    """The database, migrated to the current schema (run before anything touches it)."""
    database = Database(settings.database_url)
    upgrade(database)
    return database


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001 - one verb signature
    database = _open_database(settings)
    if not settings.has_slack_tokens:
        return _fail(NO_TOKENS_GUIDANCE, code=EXIT_CONFIG)
    settings.require_runnable()
    from bot.runtime import process

    process.run(settings, database)
    return EXIT_OK


def cmd_db_upgrade(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001 - one verb signature
    _open_database(settings)
    _say(f"Database is up to date: {safe_url(settings.database_url)}")
    return EXIT_OK


def cmd_db_backup(settings: Settings, args: argparse.Namespace) -> int:
    from bot.backup import BackupFailed, backup, parse_recipients

    try:
        result = backup(
            settings.database_url,
            Path(args.file),
            overwrite=args.force,
            recipients=parse_recipients(settings.backup_recipient),
        )
    except BackupFailed as error:
        return _fail(*str(error).splitlines())
    _say(result.summary())
    return EXIT_OK


ProgressHooks = tuple[
    Callable[[int], None] | None, Callable[[int], None] | None, Callable[[], None]
]


def _progress_bar() -> ProgressHooks:
    """A tqdm bar (rows, rate, time left) on a terminal; nothing when output is piped.
    The importer announces the total once validation has counted the rows to write."""
    if not sys.stderr.isatty():
        return None, None, lambda: None
    from tqdm import tqdm

    bar = tqdm(unit="rows", file=sys.stderr, dynamic_ncols=True, desc="importing")

    def set_total(total: int) -> None:
        bar.total = total
        bar.refresh()

    return bar.update, set_total, bar.close


def cmd_import(settings: Settings, args: argparse.Namespace) -> int:
    from bot.importing import importer
    from bot.importing.base import ImportReport

    path = Path(args.file)
    if not path.is_file():
        return _fail(f"No such file: {path}")
    database = _open_database(settings)
    runs: dict[str, Callable[..., ImportReport]] = {
        "families": importer.import_families,
        "appointments": partial(importer.import_appointments, timezone=settings.timezone),
        "registrations": partial(importer.import_registrations, timezone=settings.timezone),
    }
    run_import = runs[args.kind]
    progress, on_total, close = _progress_bar()
    try:
        report = run_import(
            database,
            path,
            skip_invalid=args.skip_invalid,
            progress=progress,
            on_total=on_total,
            clock=Clock(settings.timezone),
        )
    finally:
        close()
    _say(*report.summary_lines())
    return EXIT_OK if report.written and (report.ok or args.skip_invalid) else EXIT_FAILED


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    """The sample practice goes into its own database unless --database-url says where, and
    never into one that holds a practice's families."""
    from dataclasses import replace

    from bot.importing import demo

    url = args.database_url or demo.DEMO_DATABASE_URL
    if settings.key_file == default_key_file(settings.database_url):  # PINBOT_KEY_FILE unset
        # The key `DATABASE_URL=<demo> pinbot run` will read, so the printed PIN is found.
        settings = replace(settings, key_file=default_key_file(url))
    database = _open_database(replace(settings, database_url=url))
    if real := demo.practice_families(database):
        return _fail(
            f"{safe_url(url)} holds {real} famil{'y' if real == 1 else 'ies'} that are not the "
            "demo's: the sample practice is not loaded there. Run `pinbot demo` without "
            "--database-url to use its own database (pinbot-demo.db)."
        )
    today = Clock(settings.timezone).today()
    report = demo.load_demo(database, tz=settings.timezone, today=today)
    _say(*report.summary_lines(), "", *demo.demo_hints(today=today, database_url=url), "")
    _say(*_demo_portal_lines(settings, database, today, demo.on_demo_database(url)))
    return EXIT_OK


def _demo_portal_lines(
    settings: Settings, database: Database, today: date, on_demo: str
) -> list[str]:
    """A fresh PIN for one demo child and the curl calls that use it (bot/portal/demo.py)."""
    from bot.issuing.gateway import BuiltinGateway
    from bot.portal.demo import issue_demo_pin
    from bot.secret import KeyPurpose, SecretError, load_secret

    try:
        secret = load_secret(settings.key_file, settings.key_override)
    except SecretError as error:
        return [f"(No portal API demo: {error})"]
    gateway = BuiltinGateway(secret.derive(KeyPurpose.PIN_LOOKUP))
    return issue_demo_pin(database, gateway, today=today, on_demo=on_demo)


def cmd_remind(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime.process import run_from_cli

    database = _open_database(settings)
    settings.require_runnable()
    return run_from_cli(settings, database, force=args.force)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from bot.reports.adoption import build_report
    from bot.reports.figures import to_csv, to_table
    from models import utcnow

    if not 1 <= args.weeks <= MAX_REPORT_WEEKS:
        return _fail(f"--weeks must be between 1 and {MAX_REPORT_WEEKS} (got {args.weeks}).")
    database = _open_database(settings)
    with database.read_session() as session:
        report = build_report(
            session,
            now=utcnow(),
            tz=settings.timezone,
            practice_name=settings.practice_name or "pinbot",
            weeks=args.weeks,
        )
    print(to_table(report), end="")
    outputs: list[tuple[str, str, Callable[[], bytes]]] = []
    if args.csv:
        outputs.append(("CSV", args.csv, lambda: to_csv(report).encode("utf-8")))
    if args.png:
        from bot.reports.chart import render_chart

        outputs.append(("Chart", args.png, lambda: render_chart(report)))
    for what, name, content in outputs:
        try:
            Path(name).write_bytes(content())
        except OSError as error:
            return _fail(f"Can't write {name}: {error.strerror or error}.")
        _say(f"{what} written to {name}")
    return EXIT_OK


def cmd_check(settings: Settings, args: argparse.Namespace) -> int:  # noqa: ARG001 - one verb signature
    from bot.runtime import checks
    from bot.runtime.process import check_slack

    results = checks.run_checks(settings, check_slack=check_slack)
    for result in results:
        _say(f"{result.verdict} {result.name}: {result.detail}")
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILED


def cmd_letters_sample(settings: Settings, args: argparse.Namespace) -> int:
    """A sample page of every letter kind, in every shipped language, with this practice's
    settings: synthetic data only, yet written owner-only since it looks like a credential."""
    from bot.delivery.performers import practice_of
    from bot.documents.sample import render_sample
    from bot.secret import write_owner_only

    needed = {
        "PORTAL_URL": settings.portal_url,
        "PRACTICE_NAME": settings.practice_name,
        "PRACTICE_PHONE": settings.practice_phone,
    }
    if missing := [name for name, value in needed.items() if not value]:
        return _fail(f"Set {', '.join(missing)} first: the sample prints this practice's own.")
    path = Path(args.file)
    if path.exists() and not args.force:
        return _fail(f"{path} already exists; pass --force to replace it.")
    pdf = render_sample(
        practice_of(settings),
        today=Clock(settings.timezone).today(),
        pin_ttl_days=settings.pin_ttl_days,
    )
    try:
        path.unlink(missing_ok=True)
        write_owner_only(path, pdf)
    except OSError as error:
        return _fail(f"Can't write {path}: {error.strerror or error}.")
    _say(f"Sample letters written to {path} (readable by you only). Every page is stamped SAMPLE.")
    return EXIT_OK


def cmd_hl7(settings: Settings, args: argparse.Namespace) -> int:
    from bot.runtime import hl7

    database = _open_database(settings)
    if args.hl7_verb == "status":
        _say(*hl7.status_lines(settings, database))
        return EXIT_OK
    path = Path(args.file)
    if not path.is_file():
        return _fail(f"No such file: {path}")
    codes: set[str] = set()
    for receipt in hl7.replay(settings, database, path):
        _say(hl7.receipt_line(receipt))
        codes.add(receipt.code.value)
    if not codes:
        return _fail(f"No HL7 message in {path} (each message starts with an MSH segment).")
    return EXIT_OK if codes == {"AA"} else EXIT_FAILED


IMPORT_EPILOG = """\
columns, in a header row (names as here, in any order):
  families       account_number, patient_id, patient_first_name, patient_middle_name,
                 patient_last_name, patient_dob, patient_sex, name_type,
                 guardian_first_name, guardian_last_name, guardian_relationship,
                 guardian_email, guardian_phone, guardian_has_portal_account
                 and optionally guardian_language (es, spa, Spanish…)
                 one row per patient-guardian pair; name_type, patient_middle_name,
                 guardian_phone and guardian_email may be empty
  appointments   patient_id, starts_at, provider
                 starts_at in ISO 8601 local time (2026-03-09T14:30)
  registrations  patient_id, registered_at
                 marks the patient's active PIN registered (local time or a date)
dates: YYYY-MM-DD or MM/DD/YYYY

example:
  .venv/bin/pinbot import families export.csv"""


def cmd_portal(settings: Settings, args: argparse.Namespace) -> int:
    """`pinbot portal key create NAME | list | revoke NAME` (the portal API's clients)."""
    from bot.runtime import portal_keys

    return portal_keys.run(settings, _open_database(settings), args.key_verb, args.name)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pinbot", description="Patient-portal PINs for whole families, from Slack."
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    verbs.add_parser("run", help="start the bot").set_defaults(func=cmd_run)
    db = verbs.add_parser("db", help="database maintenance").add_subparsers(
        dest="db_verb", required=True
    )
    db.add_parser("upgrade", help="create or upgrade the schema").set_defaults(func=cmd_db_upgrade)
    backup = db.add_parser(
        "backup",
        help="copy the database to FILE while the bot runs "
        "(SQLite online backup; PostgreSQL: pg_dump), encrypted to BACKUP_RECIPIENT when set",
    )
    backup.add_argument("file")
    backup.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    backup.set_defaults(func=cmd_db_backup)
    imports = verbs.add_parser(
        "import",
        help="import an EHR export (CSV)",
        description="Import a CSV export from the EHR. The whole file is checked first: any\n"
        "bad row is listed with its line number and nothing is written (exit 1),\n"
        "unless --skip-invalid. Re-importing updates records and never deletes.",
        epilog=IMPORT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    imports.add_argument(
        "kind",
        choices=["families", "appointments", "registrations"],
        help="what FILE holds (its columns are listed below)",
    )
    imports.add_argument(
        "file", metavar="FILE", help="the CSV file: UTF-8 or Windows-1252, comma or semicolon"
    )
    imports.add_argument(
        "--skip-invalid", action="store_true", help="write the good rows and list the bad ones"
    )
    imports.set_defaults(func=cmd_import)
    demo = verbs.add_parser(
        "demo",
        help="load a synthetic sample practice into its own database (pinbot-demo.db)",
        description="Load a synthetic sample practice (invented families, account numbers "
        "DEMO-…) into its own SQLite database, pinbot-demo.db in this folder, and print what "
        "to try. DATABASE_URL is not used: the demo never touches the practice's database.",
    )
    demo.add_argument(
        "--database-url",
        metavar="URL",
        help="load it here instead (refused if the database holds any non-demo family)",
    )
    demo.set_defaults(func=cmd_demo)
    remind = verbs.add_parser("remind", help="run the reminder sweep now")
    remind.add_argument("--force", action="store_true", help="post again today (audited)")
    remind.set_defaults(func=cmd_remind)
    report = verbs.add_parser("report", help="reports (counts only)").add_subparsers(
        dest="report_verb", required=True
    )
    adoption = report.add_parser(
        "adoption", help="PINs issued per week and the share registered within 30 days"
    )
    adoption.add_argument("--weeks", type=int, default=12, help="full weeks to show (12)")
    adoption.add_argument("--png", metavar="FILE", help="also write the chart as a PNG")
    adoption.add_argument("--csv", metavar="FILE", help="also write the weeks as CSV")
    adoption.set_defaults(func=cmd_report)
    hl7 = verbs.add_parser("hl7", help="the live EHR feed (HL7 v2)").add_subparsers(
        dest="hl7_verb", required=True
    )
    replay = hl7.add_parser(
        "replay",
        help="apply a file of HL7 messages as the listener would",
        description="Apply a file of HL7 v2 messages (ADT and SIU) with exactly the live "
        "listener's rules, and print one line per message with its ACK code (AA applied, AE "
        "the field and why, AR not supported). Exit 1 unless every message was AA.",
    )
    replay.add_argument(
        "file",
        metavar="FILE",
        help="HL7 v2 messages as the interface engine exports them: each message starts at "
        "its MSH segment; segments end with CR, LF or CRLF; batch files (FHS/BHS … BTS/FTS) "
        "are fine",
    )
    replay.set_defaults(func=cmd_hl7)
    hl7.add_parser("status", help="last message time and the last 24 h's counts").set_defaults(
        func=cmd_hl7
    )
    letters = verbs.add_parser("letters", help="PIN letters").add_subparsers(
        dest="letters_verb", required=True
    )
    sample = letters.add_parser(
        "sample",
        help="write a page of every letter kind in every language, for a made-up family, "
        "with this practice's PORTAL_URL, PORTAL_SIGNIN_URL, name and phone",
    )
    sample.add_argument("file", metavar="FILE.pdf", help="where to write the PDF (mode 0600)")
    sample.add_argument("--force", action="store_true", help="replace FILE.pdf if it exists")
    sample.set_defaults(func=cmd_letters_sample)
    portal = verbs.add_parser("portal", help="the portal API").add_subparsers(
        dest="portal_verb", required=True
    )
    key = portal.add_parser("key", help="API keys the practice's portal calls pinbot with")
    key_verbs = key.add_subparsers(dest="key_verb", required=True)
    for verb, help_text in (
        ("create", "make a key for NAME and print it once"),
        ("revoke", "refuse NAME's key from the next request on"),
    ):
        one = key_verbs.add_parser(verb, help=help_text)
        one.add_argument("name", metavar="NAME")
        one.set_defaults(func=cmd_portal)
    key_verbs.add_parser("list", help="names, created, last used (never the keys)").set_defaults(
        func=cmd_portal, name=None
    )
    verbs.add_parser("check", help="check configuration, database, SMTP and Slack").set_defaults(
        func=cmd_check
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.configure()
    settings = load_settings()
    if settings.problems and args.verb != "check":
        return _fail(*settings.problems, code=EXIT_CONFIG)
    try:
        return int(args.func(settings, args))
    except ConfigError as error:
        return _fail(*error.problems, code=EXIT_CONFIG)
    except CannotStart as error:
        return _fail(str(error))
    except OperationalError as error:
        return _fail(
            f"Can't reach the database at {safe_url(settings.database_url)}: "
            f"{why_unreachable(settings.database_url, error)}"
        )
    except DatabaseUnavailable as error:
        return _fail(
            f"Can't reach the database at {safe_url(settings.database_url)} "
            f"({error}). Nothing was changed."
        )
    except SQLAlchemyError as error:
        return _fail(f"Database error: {type(error).__name__}. Nothing was changed.")
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
