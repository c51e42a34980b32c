"""Issuing PINs the way staff do, for tests that need the printed PINs: /family → card →
Issue PINs… → submit, then the letters read back from the PDF uploaded into the thread."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

from pypdf import PdfReader

from handlers.ids import NO_EMAIL, IssueIds
from tests.support.slack_requests import checkboxes_value, static_select_value
from tests.support.stack import Stack, eventually

PIN_PATTERN = re.compile(r"\b([0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4})\b")


@dataclass(frozen=True)
class Letters:
    pages: list[str]
    card_ts: str

    def pin_of(self, full_name: str) -> str:
        page = next(p for p in self.pages if full_name in p)
        found = PIN_PATTERN.search(page)
        assert found is not None
        return found.group(1)


def _blocks(args: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def open_card(stack: Stack, query: str) -> tuple[str, list[dict[str, Any]]]:
    """Post the family's card; its ts and blocks."""
    before = len(stack.cards())
    assert stack.command("/family", query).status == 200

    def posted() -> Any:
        cards = [
            c
            for c in stack.fake_slack.calls_to("chat.postMessage")
            if any(b.get("block_id") == "family_actions" for b in _blocks(c.args))
        ]
        assert len(cards) == before + 1
        return cards[-1]

    call = eventually(posted)
    return call.response["ts"], _blocks(call.args)


def issue(stack: Stack, query: str, children: list[int], recipient: int | None) -> Letters:
    """Issue PINs for `children` of the family `query` finds; the letters uploaded."""
    card_ts, blocks = open_card(stack, query)
    button = next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"] == IssueIds.OPEN_DIALOG
    )
    views = len(stack.fake_slack.calls_to("views.open"))
    uploads = len(stack.fake_slack.uploaded_files())
    stack.click(IssueIds.OPEN_DIALOG, button["value"], message_ts=card_ts)
    stack.fake_slack.wait_for("views.open", count=views + 1)
    response = stack.submit(
        stack.opened_view(),
        {
            IssueIds.CHILDREN: {
                IssueIds.CHILDREN_ACTION: checkboxes_value([str(c) for c in children])
            },
            IssueIds.RECIPIENT: {
                IssueIds.RECIPIENT_ACTION: static_select_value(
                    str(recipient) if recipient else NO_EMAIL
                )
            },
            IssueIds.EMAILED_CHILD: {IssueIds.EMAILED_CHILD_ACTION: static_select_value(None)},
        },
    )
    assert response.status == 200 and response.body in (b"", b"{}"), response.body
    stack.deliver()
    upload = stack.fake_slack.uploaded_files()[uploads]
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(upload.data)).pages]
    return Letters(pages=pages, card_ts=card_ts)
