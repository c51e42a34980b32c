"""Sample letters for `pinbot letters sample`: one page of every letter kind in every shipped
language, for a synthetic family, with the practice's own address, name and phone, so a
manager sees exactly what parents will get before go-live.

Everything about the family is made up (accented names, an example.com address, PINs no
gateway ever issued); each page is stamped SAMPLE so it is never handed out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from bot.documents.letters import Letter, LetterCase, PageSpec, Practice, render_pages
from bot.documents.locale import available_languages, texts

SAMPLE_EMAIL = "parent@example.com"
FIRST_CHILD = "Lucía Nguyễn"


@dataclass(frozen=True)
class _Kind:
    label: str  # what the page shows, in the stamp
    case: LetterCase
    name: str
    dob: date
    pin: str  # made up, with zeros to show their dot
    emailed: bool = False


_KINDS = (
    _Kind("first child, PIN also emailed", LetterCase.FIRST_CHILD, FIRST_CHILD,
          date(2018, 3, 14), "0D0B7K2Q", emailed=True),
    _Kind("first child, printed only", LetterCase.FIRST_CHILD, "Mateo Nguyễn",
          date(2019, 9, 2), "8J0NX5P0"),
    _Kind("brother or sister", LetterCase.SIBLING, "Łukasz Nguyễn", date(2021, 11, 23), "4F0H9M0W"),
    _Kind("parent already has an account", LetterCase.HAS_ACCOUNT, "Zoë Nguyễn",
          date(2024, 6, 5), "Z0R83T0C"),
)  # fmt: skip


def sample_pages(*, today: date, pin_ttl_days: int) -> list[PageSpec]:
    """Every kind in every shipped language, language by language; dated `today` (the
    practice's date) with the practice's PIN lifetime."""
    expires = today + timedelta(days=pin_ttl_days) if pin_ttl_days else None
    return [
        PageSpec(
            Letter(
                child_full_name=kind.name,
                child_dob=kind.dob,
                pin=kind.pin,
                issued_on=today,
                expires_on=expires,
                case=kind.case,
                emailed_to=SAMPLE_EMAIL if kind.emailed else None,
                first_child_name=FIRST_CHILD if kind.case == LetterCase.SIBLING else None,
            ),
            language,
            stamp=f"SAMPLE, not a real PIN · {kind.label} · {language}",
        )
        for language in available_languages()
        for kind in _KINDS
    ]


def render_sample(practice: Practice, *, today: date, pin_ttl_days: int) -> bytes:
    pages = sample_pages(today=today, pin_ttl_days=pin_ttl_days)
    return render_pages(practice, pages, title="Sample " + texts().text("letter.document_title"))
