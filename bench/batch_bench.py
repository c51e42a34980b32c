"""Issue a batch of 4 siblings: the Issue PINs dialog's submit, signed, into the running bot
(`pinbot run`, HTTP mode, its outbox worker delivering in the background) until both the PDF
of letters is shared in the thread (files.completeUploadExternal at the fake Slack) and the
welcome email is accepted by the local SMTP server.

Each batch first posts the family's card and opens the dialog the way staff do (not timed),
then submits it (timed). Families: 4 children, all eligible, and a guardian with an email of
their own and no portal account, so every batch is the full case: 4 PINs, one welcome email,
a 4-page PDF.

The PIN-hashing share is the time of 4 `hash_pin` calls (scrypt with the production
parameters, measured in this process on the same machine) over the batch median.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from bench.procs import STAFF_IDS, BenchSlack, Served, serve, slack_and_smtp
from bench.stats import Report, Result, Summary
from bot.db import Database
from bot.families.names import check_name
from bot.issuing.gateway import SCRYPT_N, SCRYPT_P, SCRYPT_R, generate_pin, hash_pin
from handlers.ids import IssueIds
from models import Family, Guardian, Patient
from tests.support.slack_requests import (
    block_actions_payload,
    checkboxes_value,
    static_select_value,
    view_submission_payload,
)

WARMUP = 3
HASH_ROUNDS = 15
_channels = itertools.count(1)


def sibling_families(database_url: str, count: int) -> list[tuple[str, list[int], int, str]]:
    """(account number, 4 patient ids, guardian id, guardian email) per family."""
    database = Database(database_url)
    today = date.today()
    adult = today.replace(year=today.year - 18)
    try:
        with database.read_session() as session:
            fours = session.exec(
                select(Patient.family_id)
                .group_by(col(Patient.family_id))
                .having(func.count() == 4)
                .having(func.min(Patient.dob) > adult)
                .order_by(col(Patient.family_id))
                .limit(20 * count)
            ).all()
            shared = set(
                session.exec(
                    select(Guardian.match_key)
                    .group_by(col(Guardian.match_key))
                    .having(func.count() > 1)
                ).all()
            )
            chosen = []
            for family_id in fours:
                patients = session.exec(
                    select(Patient).where(Patient.family_id == family_id).order_by(col(Patient.id))
                ).all()
                if any(
                    check_name(p.first_name, p.middle_name, p.last_name, p.name_type).flagged
                    for p in patients
                ):
                    continue
                guardian = session.exec(
                    select(Guardian).where(
                        Guardian.family_id == family_id,
                        col(Guardian.email).is_not(None),
                        col(Guardian.has_portal_account).is_(False),
                    )
                ).first()
                if guardian is None or guardian.match_key in shared:
                    continue
                account = session.get(Family, family_id)
                assert account is not None and guardian.email and guardian.id
                chosen.append(
                    (
                        account.account_number,
                        [p.id or 0 for p in patients],
                        guardian.id,
                        guardian.email.lower(),
                    )
                )
                if len(chosen) == count:
                    break
    finally:
        database.dispose()
    return chosen


def _one(
    served: Served, slack: BenchSlack, family: tuple[str, list[int], int, str], user: str
) -> tuple[float, float, float]:
    """(submit ack, letters uploaded, email accepted), seconds after the submit was sent."""
    account, children, guardian_id, email = family
    channel = f"CB{next(_channels):07d}"
    card = slack.arrivals.expect("message", channel)
    served.sender.command(
        "/family", account, channel_id=channel, user_id=user, response_url=slack.response_url()
    )
    card.wait()
    card_ts = slack.last_response[channel]["ts"]
    opened = slack.arrivals.expect("view", channel)
    value = _issue_button_value(slack.last_response[channel]["message"]["blocks"])
    served.sender.block_action(
        block_actions_payload(
            IssueIds.OPEN_DIALOG,
            value,
            channel_id=channel,
            message_ts=card_ts,
            user_id=user,
            response_url=slack.response_url("actions"),
        )
    )
    opened.wait()
    view = slack.last_response[f"view:{channel}"]["view"]
    uploaded = slack.arrivals.expect("upload", channel)
    emailed = slack.arrivals.expect("email", email)
    payload = view_submission_payload(
        view["callback_id"],
        {
            IssueIds.CHILDREN: {
                IssueIds.CHILDREN_ACTION: checkboxes_value([str(c) for c in children])
            },
            IssueIds.RECIPIENT: {IssueIds.RECIPIENT_ACTION: static_select_value(str(guardian_id))},
            IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
        },
        view=view,
        user_id=user,
    )
    start = time.perf_counter()
    response = served.sender.view_submission(payload)
    acked = time.perf_counter()
    if response.status != 200 or response.body not in (b"", b"{}"):
        raise RuntimeError(f"submit answered {response.status}: {response.text[:300]}")
    return acked - start, uploaded.wait() - start, emailed.wait() - start


def _issue_button_value(blocks: Any) -> str:
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return next(
        e["value"]
        for b in blocks
        if b.get("type") == "actions"
        for e in b["elements"]
        if e["action_id"] == IssueIds.OPEN_DIALOG
    )


def hashing_seconds(pins: int = 4, rounds: int = HASH_ROUNDS) -> Summary:
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(pins):
            hash_pin(generate_pin())
        samples.append(time.perf_counter() - start)
    return Summary.of(samples)


def run(
    report: Report,
    database_url: str,
    *,
    store: str,
    size: str,
    count: int = 40,
    warmup: int = WARMUP,
    hash_rounds: int = HASH_ROUNDS,
) -> Result:
    families = sibling_families(database_url, count + warmup)
    if len(families) < 2:
        raise RuntimeError("no family with 4 eligible siblings in this practice")
    parts: dict[str, list[float]] = defaultdict(list)
    with (
        slack_and_smtp() as (slack, smtp),
        serve("bot", database_url, slack, smtp, f"batch-{store}-{size}") as bot,
    ):
        for index, family in enumerate(families):
            ack, upload, email = _one(bot, slack, family, STAFF_IDS[index % 10])
            if index < min(warmup, len(families) - 1):
                continue
            parts["ack"].append(ack)
            parts["upload"].append(upload)
            parts["email"].append(email)
            parts["total"].append(max(upload, email))
    total = Summary.of(parts["total"])
    hashing = hashing_seconds(rounds=hash_rounds)
    share = hashing.median / total.median
    result = Result(
        "batch4",
        store,
        size,
        {
            "total": total,
            "ack": Summary.of(parts["ack"]),
            "upload": Summary.of(parts["upload"]),
            "email": Summary.of(parts["email"]),
            "hash4": hashing,
            "hash_share": share,
            "scrypt": {"n": SCRYPT_N, "r": SCRYPT_R, "p": SCRYPT_P},
        },
    )
    ack = result.figures["ack"]
    return report.add(
        result,
        [
            f"batch   {total.text()}  (submit -> PDF shared and email accepted)",
            f"ack     {ack.text()}  (the submit's HTTP answer: PINs hashed and committed)",
            f"upload  {result.figures['upload'].text()}",
            f"email   {result.figures['email'].text()}",
            f"4 PIN hashes (scrypt N=2^{SCRYPT_N.bit_length() - 1}, r={SCRYPT_R}, p={SCRYPT_P}): "
            f"{hashing.text()}",
            f"PIN-hashing share of the batch median: {share:.0%}",
        ],
    )
