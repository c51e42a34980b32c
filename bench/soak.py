"""Load and soak (issue 6, item 6): 20 staff at once for 5 minutes against the real bot in HTTP
mode, on SQLite and on PostgreSQL, then an audit of everything that should have happened.

    python -m bench.soak                      # both stores, 5 minutes each
    python -m bench.soak --quick              # 20 s each, for a smoke run
    python -m bench.soak --store sqlite --duration 120 --staff 20

The bot runs as `pinbot run` in its own process (waitress, outbox worker, scheduler — as
deployed) against the test suite's fake Slack Web API and a local SMTP server that keeps every
message. Each simulated person, in a channel of their own, loops: `/family <account>` → waits
for the card → "Issue PINs…" → waits for the dialog → submits it for every eligible child
(a welcome email 80% of the time, "No email — print every PIN" otherwise; 10% of submits are
sent twice, as a double click). Two pacings: "busy" (the default) pauses like a person does —
1-3 s reading the card, 2-5 s in the dialog, 1-4 s before the next family: a batch about every
8 s per person, some 2.5 a second for the desk, far above a real practice; "saturated" pauses
0.2-1 s between rounds only, to find where the machine tops out. With several hundred families,
two people sometimes issue for the same family at once; the later dialog is then refused inside
the dialog ("someone issued PINs … while this dialog was open"): a conflict, not an error.

Afterwards, with the outbox drained, the audit compares the database, the SMTP capture and the
fake Slack's files: every accepted submission has exactly one batch with one PIN per chosen
child; one active PIN per child; every delivered welcome email arrived exactly once (by
Message-ID) and nothing else did; every batch's letters were uploaded exactly once; nothing
pending, nothing failed except emails cancelled because a newer PIN replaced theirs. Errors:
any non-200, any ack over Slack's 3 s, any "something went wrong" told to a user, any ERROR
line in the bot's log, any audit mismatch. Prints ack latency (p50/p95/p99/max) per step.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import func
from sqlmodel import select

from bench.procs import serving, stop, wait_healthy
from bot.db import Database, upgrade
from bot.importing.importer import FAMILY_COLUMNS, import_families
from handlers.ids import IssueIds
from models import IssueBatch, OutgoingWork, Pin, PinStatus, WorkKind, WorkStatus
from tests.support.fake_slack import FakeSlack, Reply
from tests.support.pg import scratch_database
from tests.support.slack_requests import (
    SlackSender,
    block_actions_payload,
    checkboxes_value,
    new_trigger_id,
    static_select_value,
    view_submission_payload,
)
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.stack import SIGNING_SECRET, stack_env

REPO = Path(__file__).resolve().parent.parent
SLACK_LIMIT = 3.0
# Seconds paused (low, high) after the card, after the dialog opens, and after a round.
PACES = {
    "busy": ((1.0, 3.0), (2.0, 5.0), (1.0, 4.0)),
    "saturated": ((0.0, 0.0), (0.0, 0.0), (0.2, 1.0)),
}
WAIT = 15.0  # seconds to wait for a card or a dialog before calling it an error
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
CONFLICT = "Someone issued PINs for this family while this dialog was open"
SUPERSEDED = "superseded by a newer PIN"
FIRST_NAMES = ("Ava", "Ben", "Cora", "Dev", "Elin", "Finn", "Gia", "Hugo", "Iris", "Jude")
SURNAMES = (
    "Ashgrove",
    "Birchwood",
    "Cedarly",
    "Dunmore",
    "Elmstead",
    "Fernhill",
    "Glenrose",
    "Hollins",
    "Ivydale",
    "Juniper",
    "Kestrel",
    "Larchmont",
    "Merriweather",
    "Northby",
)


# -- the fake Slack and SMTP server, remembering only what the audit needs -------------------


class SoakSlack(FakeSlack):
    """The test suite's fake Slack without its call log (a soak makes tens of thousands of
    calls); cards are handed to whoever waits in their channel, dialogs by trigger id."""

    def __init__(self) -> None:
        super().__init__()
        self.cards: dict[str, queue.Queue[tuple[str, str]]] = {}
        self.views: dict[str, queue.Queue[dict[str, Any]]] = {}
        self.counts: Counter[str] = Counter()
        self.told: list[str] = []  # ephemeral sentences

    def channel_cards(self, channel: str) -> queue.Queue[tuple[str, str]]:
        with self._lock:
            return self.cards.setdefault(channel, queue.Queue())

    def dialog(self, trigger_id: str) -> queue.Queue[dict[str, Any]]:
        with self._lock:
            return self.views.setdefault(trigger_id, queue.Queue())

    def _record(self, method: str, args: dict[str, Any], token: str | None, reply: Reply) -> Reply:
        response = json.loads(reply.body) if reply.body.startswith(b"{") else {}
        with self._lock:
            self.counts[f"{method}{'' if response.get('ok', True) else ' (failed)'}"] += 1
        if method == "chat.postMessage" and response.get("ok"):
            value = _issue_button(args.get("blocks"))
            if value is not None:
                self.channel_cards(str(args["channel"])).put((response["ts"], value))
        elif method == "views.open" and response.get("ok"):
            self.dialog(str(args.get("trigger_id"))).put(response["view"])
        elif method in ("chat.postEphemeral", "response_url"):
            with self._lock:
                self.told.append(str(args.get("text") or ""))
        return reply


def _issue_button(blocks: Any) -> str | None:
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    for block in blocks or []:
        for element in block.get("elements") or []:
            if element.get("action_id") == IssueIds.OPEN_DIALOG:
                return str(element["value"])
    return None


@contextmanager
def fake_services(staff: int) -> Iterator[tuple[SoakSlack, SmtpServer]]:
    slack = SoakSlack()
    smtp = SmtpServer(port=free_port())
    with serving(slack, smtp, [staff_id(n) for n in range(staff)]):
        yield slack, smtp


def staff_id(n: int) -> str:
    return f"U0SOAK{n:03d}"


# -- the store and the practice ----------------------------------------------------------------


@contextmanager
def store(kind: str, work_dir: Path, pg_admin: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{work_dir / 'soak.db'}"
        return
    with scratch_database(pg_admin, "pinbot_soak") as url:
        yield url


def seed(database_url: str, families: int, work_dir: Path) -> list[str]:
    """A practice of `families` families, 2-3 children each, imported the way practices do."""
    rng = random.Random(7)
    path = work_dir / "families.csv"
    accounts = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(FAMILY_COLUMNS)
        for f in range(families):
            account, last = f"SK-{f:06d}", f"{rng.choice(SURNAMES)}{rng.choice(SURNAMES).lower()}"
            accounts.append(account)
            has_account = "yes" if rng.random() < 0.15 else "no"
            for c in range(rng.choice((2, 2, 3))):
                writer.writerow(
                    [
                        account,
                        f"SKP-{f:06d}-{c}",
                        rng.choice(FIRST_NAMES),
                        "",
                        last,
                        date(
                            rng.randint(2012, 2023), rng.randint(1, 12), rng.randint(1, 28)
                        ).isoformat(),
                        rng.choice("FM"),
                        "",
                        "Robin",
                        last,
                        "Parent",
                        f"robin.{f}@example.com",
                        "(555) 010-0000",
                        has_account,
                    ]
                )
    database = Database(database_url)
    try:
        upgrade(database)
        report = import_families(database, path, actor="soak")
        assert report.ok, report.problems[:5]
    finally:
        database.dispose()
    return accounts


# -- the bot under test ------------------------------------------------------------------------


@dataclass
class Bot:
    process: subprocess.Popen[bytes]
    sender: SlackSender
    log_path: Path

    def peak_rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def error_lines(self) -> list[str]:
        return [
            line
            for line in self.log_path.read_text(errors="replace").splitlines()
            if " ERROR " in line or "Traceback" in line
        ]


@contextmanager
def running_bot(
    database_url: str, slack: SoakSlack, smtp: SmtpServer, work_dir: Path
) -> Iterator[Bot]:
    port = free_port()
    env = {
        **os.environ,
        **stack_env(database_url, slack, smtp),
        "PORT": str(port),
        "PYTHONPATH": str(REPO),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("SLACK_APP_TOKEN", None)  # HTTP mode
    log_path = work_dir / "bot.log"
    with log_path.open("wb") as log:  # cwd: an empty folder, so no stray .env is read
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.runtime.cli", "run"],
            env=env,
            cwd=work_dir,
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(process, base, log_path)
        yield Bot(process, SlackSender(base, SIGNING_SECRET, timeout=30), log_path)
    finally:
        stop(process)


# -- the staff -------------------------------------------------------------------------------


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    acks: dict[str, list[float]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    accepted: dict[str, int] = field(default_factory=dict)  # view id -> children chosen
    outcomes: Counter[str] = field(default_factory=Counter)

    def ack(self, step: str, seconds: float, status: int) -> None:
        with self.lock:
            self.acks.setdefault(step, []).append(seconds)
            if status != 200:
                self.errors.append(f"{step}: HTTP {status}")
            elif seconds > SLACK_LIMIT:
                self.errors.append(f"{step}: ack took {seconds:.2f} s")

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)

    def outcome(self, what: str) -> None:
        with self.lock:
            self.outcomes[what] += 1


def _timed(tally: Tally, step: str, send: Any) -> Any:
    started = time.perf_counter()
    response = send()
    tally.ack(step, time.perf_counter() - started, response.status)
    return response


def _choices(view: dict[str, Any]) -> tuple[list[str], list[str]]:
    children, recipients = [], []
    for block in view.get("blocks") or []:
        element = block.get("element") or {}
        values = [o["value"] for o in element.get("options") or []]
        if str(block.get("block_id", "")).startswith(IssueIds.CHILDREN):
            children += values
        elif block.get("block_id") == IssueIds.RECIPIENT:
            recipients = values
    return children, recipients


def one_round(
    bot: Bot, slack: SoakSlack, tally: Tally, rng: random.Random, n: int, account: str, pace: str
) -> None:
    read_card, fill_dialog, _ = PACES[pace]
    user, channel = staff_id(n), f"C0SOAK{n:03d}"
    cards = slack.channel_cards(channel)
    _timed(
        tally,
        "/family",
        lambda: bot.sender.command("/family", account, channel_id=channel, user_id=user),
    )
    try:
        card_ts, value = cards.get(timeout=WAIT)
    except queue.Empty:
        tally.error(f"no card for {account}")
        return
    time.sleep(rng.uniform(*read_card))
    trigger = new_trigger_id()
    _timed(
        tally,
        "Issue PINs…",
        lambda: bot.sender.block_action(
            block_actions_payload(
                IssueIds.OPEN_DIALOG,
                value,
                user_id=user,
                channel_id=channel,
                message_ts=card_ts,
                trigger_id=trigger,
            )
        ),
    )
    try:
        view = slack.dialog(trigger).get(timeout=WAIT)
    except queue.Empty:
        tally.error(f"no dialog for {account}")
        return
    time.sleep(rng.uniform(*fill_dialog))
    children, recipients = _choices(view)
    guardians = [r for r in recipients if r != "none"]
    recipient = rng.choice(guardians) if guardians and rng.random() < 0.8 else "none"
    values = {
        IssueIds.CHILDREN: {IssueIds.CHILDREN_ACTION: checkboxes_value(children)},
        IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value(recipient)},
        IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
    }
    for _ in range(2 if rng.random() < 0.1 else 1):  # a double click, sometimes
        payload = view_submission_payload(IssueIds.CALLBACK, values, view=view, user_id=user)
        response = _timed(tally, "submit", lambda p=payload: bot.sender.view_submission(p))
        _judge_submit(tally, response.body, view["id"], len(children))


def _judge_submit(tally: Tally, body: bytes, view_id: str, children: int) -> None:
    if body in (b"", b"{}"):
        with tally.lock:
            tally.accepted[view_id] = children
        tally.outcome("issued")
        return
    answer = json.loads(body)
    said = " ".join(str(v) for v in (answer.get("errors") or {}).values())
    if CONFLICT in said:
        tally.outcome("conflict (refused in the dialog)")
    else:
        tally.error(f"submit refused: {said[:120]}")


def staff_loop(
    bot: Bot,
    slack: SoakSlack,
    tally: Tally,
    accounts: list[str],
    n: int,
    deadline: float,
    pace: str,
) -> None:
    rng = random.Random(1000 + n)
    while time.monotonic() < deadline:
        try:
            one_round(bot, slack, tally, rng, n, rng.choice(accounts), pace)
        except Exception as error:
            tally.error(f"staff {n}: {type(error).__name__}: {error}")
        time.sleep(rng.uniform(*PACES[pace][2]))


# -- the audit ---------------------------------------------------------------------------------


def drain(database: Database, timeout: float = 180) -> int:
    """Wait for the bot's outbox to finish; returns what is still pending."""
    deadline = time.monotonic() + timeout
    while True:
        with database.read_session() as session:
            pending = session.execute(
                select(func.count())
                .select_from(OutgoingWork)
                .where(OutgoingWork.status == WorkStatus.PENDING)
            ).scalar_one()
        if pending == 0 or time.monotonic() > deadline:
            return int(pending)
        time.sleep(0.5)


def audit(database: Database, tally: Tally, slack: SoakSlack, smtp: SmtpServer) -> dict[str, int]:
    problems = tally.errors
    with database.read_session() as session:
        batches = {b.idempotency_key: b for b in session.exec(select(IssueBatch))}
        pins = session.exec(select(Pin)).all()
        work = session.exec(select(OutgoingWork)).all()
    per_batch = Counter(p.batch_id for p in pins)
    for view_id, children in tally.accepted.items():
        batch = batches.get(f"view:{view_id}")
        if batch is None:
            problems.append(f"lost: accepted submission {view_id} has no batch")
        elif per_batch[batch.id] != children:
            problems.append(f"batch {batch.id}: {per_batch[batch.id]} PINs for {children}")
    problems += [
        f"batch {b.id} nobody was told about"
        for key, b in batches.items()
        if key.removeprefix("view:") not in tally.accepted
    ]
    if len({(p.batch_id, p.patient_id) for p in pins}) != len(pins):
        problems.append("duplicated PIN: one child twice in a batch")
    active = Counter(p.patient_id for p in pins if p.status == PinStatus.ACTIVE)
    problems += [f"patient {p} has {n} active PINs" for p, n in active.items() if n > 1]
    _audit_work(work, slack, smtp, problems)
    return {
        "batches": len(batches),
        "pins": len(pins),
        "emails": len(smtp.received),
        "uploads": len(slack.uploaded_files()),
    }


def _audit_work(
    work: list[OutgoingWork], slack: SoakSlack, smtp: SmtpServer, problems: list[str]
) -> None:
    for item in work:
        if item.status == WorkStatus.PENDING:
            problems.append(f"still pending: {item.kind} {item.id}")
        elif item.status == WorkStatus.FAILED and item.last_error != SUPERSEDED:
            problems.append(f"failed: {item.kind} {item.id}: {item.last_error}")
    sent = [
        json.loads(w.result)["message_id"]
        for w in work
        if w.kind == WorkKind.WELCOME_EMAIL and w.status == WorkStatus.DONE
    ]
    received = Counter(str(m["Message-ID"]) for m in smtp.messages)
    problems += [f"email {mid} arrived {n} times" for mid, n in received.items() if n > 1]
    problems += [
        f"email {mid} recorded as sent but never arrived" for mid in sent if mid not in received
    ]
    problems += [
        f"email {mid} arrived but is not recorded" for mid in received if mid not in set(sent)
    ]
    uploads = [
        w.batch_id
        for w in work
        if w.kind == WorkKind.LETTERS_UPLOAD and w.status == WorkStatus.DONE
    ]
    files = Counter(f.filename for f in slack.uploaded_files())
    problems += [f"letters {name} uploaded {n} times" for name, n in files.items() if n > 1]
    if sorted(files) != sorted(f"pin-letters-{b}.pdf" for b in uploads):
        problems.append(f"uploads: {len(files)} files for {len(uploads)} delivered uploads")
    problems += [
        f"a user was told: {t[:100]}" for t in slack.told if "went wrong" in t or "can't reach" in t
    ]


# -- running and reporting ---------------------------------------------------------------------


def percentile(ordered: list[float], pct: float) -> float:
    """Nearest rank, in milliseconds."""
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))] * 1000


def latency(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "p50": statistics.median(ordered) * 1000 if ordered else 0.0,
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "max": ordered[-1] * 1000 if ordered else 0.0,
    }


def soak(
    kind: str, *, seconds: float, staff: int, families: int, pg_admin: str, pace: str
) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix=f"pinbot-soak-{kind}-") as tmp,
        store(kind, Path(tmp), pg_admin) as url,
        fake_services(staff) as (slack, smtp),
    ):
        work_dir = Path(tmp)
        accounts = seed(url, families, work_dir)
        with running_bot(url, slack, smtp, work_dir) as bot:
            tally = Tally()
            started = time.monotonic()
            threads = [
                threading.Thread(
                    target=staff_loop,
                    args=(bot, slack, tally, accounts, n, started + seconds, pace),
                )
                for n in range(staff)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.monotonic() - started
            database = Database(url)
            try:
                left = drain(database)
                counts = audit(database, tally, slack, smtp)
            finally:
                database.dispose()
            tally.errors += [f"bot log: {line[:160]}" for line in bot.error_lines()]
            peak = bot.peak_rss_mib()
        kept = Path(tempfile.gettempdir()) / f"pinbot-soak-{kind}-{pace}.log"
        shutil.copyfile(work_dir / "bot.log", kept)  # the scratch folder goes; the log stays
        all_acks = [s for values in tally.acks.values() for s in values]
        return {
            "store": kind,
            "pace": pace,
            "seconds": round(elapsed, 1),
            "staff": staff,
            "families": families,
            "left_pending": left,
            **counts,
            "outcomes": dict(tally.outcomes),
            "errors": len(tally.errors),
            "error_samples": tally.errors[:20],
            "bot_peak_rss_mib": round(peak, 1),
            "bot_log": str(kept),
            "requests": len(all_acks),
            "ack_ms": {
                "all": latency(all_acks),
                **{step: latency(values) for step, values in tally.acks.items()},
            },
        }


def print_result(result: dict[str, Any]) -> None:
    print(
        f"\n== {result['store']}: {result['staff']} staff ({result['pace']}), "
        f"{result['seconds']} s, {result['families']} families"
    )
    print(
        f"   requests {result['requests']}, batches {result['batches']}, PINs "
        f"{result['pins']}, emails {result['emails']}, uploads {result['uploads']}, "
        f"outcomes {result['outcomes']}"
    )
    for step, ms in result["ack_ms"].items():
        print(
            f"   ack {step:<12} n={ms['n']:<6} p50 {ms['p50']:7.1f} ms  p95 {ms['p95']:7.1f} ms"
            f"  p99 {ms['p99']:7.1f} ms  max {ms['max']:7.1f} ms"
        )
    print(
        f"   bot peak RSS {result['bot_peak_rss_mib']} MiB; errors: {result['errors']}; "
        f"bot log: {result['bot_log']}"
    )
    for sample in result["error_samples"]:
        print(f"     - {sample}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--store", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--duration", type=float, default=300.0, help="seconds per store")
    parser.add_argument("--quick", action="store_true", help="20 s per store")
    parser.add_argument("--staff", type=int, default=20)
    parser.add_argument("--pace", choices=sorted(PACES), default="busy")
    parser.add_argument("--families", type=int, default=400)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "PINBOT_SOAK_POSTGRES_URL", os.environ.get("PINBOT_TEST_POSTGRES_URL", DEFAULT_PG)
        ),
        help="a server where a scratch database can be created and dropped",
    )
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    seconds = 20.0 if args.quick else args.duration
    kinds = ["sqlite", "postgresql"] if args.store == "both" else [args.store]
    results = []
    for kind in kinds:
        result = soak(
            kind,
            seconds=seconds,
            staff=args.staff,
            families=args.families,
            pg_admin=args.postgres_url,
            pace=args.pace,
        )
        print_result(result)
        results.append(result)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(r["errors"] == 0 for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
