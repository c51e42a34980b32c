"""The Issue PINs dialog's Letter language select (SPEC §9): every shipped locale by its own
name and its English one ("Español (Spanish)"), then "<language> and English" for each
non-English one; preselected: the receiving guardian's language when pinbot has its words."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import InputBlock, Option, StaticSelectElement

from bot.documents.locale import choice_value, default_choice, letter_choices
from bot.families.record import FamilyRecord
from bot.languages import english_name, native_name
from handlers.blocks import plain
from handlers.ids import IssueIds

OPTION_LIMIT = 100  # Block Kit's maximum options in one static select
HINT = (
    "“… and English” prints each child's letter twice, the guardian's language first. "
    "The welcome email is in the first language."
)


def language_name(code: str) -> str:
    """'es' -> 'Español (Spanish)'; 'en' -> 'English'."""
    native, english = native_name(code), english_name(code)
    return native if native.casefold() == english.casefold() else f"{native} ({english})"


def choice_label(languages: Sequence[str]) -> str:
    return " and ".join(language_name(code) for code in languages)


def language_input(
    family: FamilyRecord, recipient_id: int | None, default_language: str
) -> InputBlock:
    options = [
        Option(value=choice_value(languages), label=plain(choice_label(languages), 75))
        for languages in letter_choices()[:OPTION_LIMIT]
    ]
    guardian_language = family.language_of(recipient_id)
    initial = default_choice(guardian_language, default_language)
    hint = HINT
    if guardian_language and guardian_language == initial:
        hint = f"Preselected: the guardian prefers {english_name(initial)}. {HINT}"
    return InputBlock(
        block_id=IssueIds.LANGUAGE,
        label="Letter language",
        hint=plain(hint, 2000),
        element=StaticSelectElement(
            action_id=IssueIds.LANGUAGE_ACTION,
            options=options,
            initial_option=next((o for o in options if o.value == initial), options[0]),
        ),
    )
