"""Which letter a child's PIN gets. Apart from letters.py, which loads reportlab (~0.2 s of
CPU), so that issuing PINs, the EHR feed and the importer can name a case without it."""

from __future__ import annotations

from enum import StrEnum


class LetterCase(StrEnum):
    FIRST_CHILD = "first_child"  # this PIN opens the family's account
    SIBLING = "sibling"  # added to the account opened with another child's PIN
    HAS_ACCOUNT = "has_account"  # the guardian already has an account: add the child to it
