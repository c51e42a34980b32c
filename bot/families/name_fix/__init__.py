"""Name fixes (SPEC §1.2, §5): front-desk staff ask for a newborn's placeholder name to be
replaced; a supervisor decides in the family thread, or the EHR brings the real name first. No
Slack here: handlers/name_fix.py renders. This package is the public API (records, requests,
decisions); it imports bot's top-level modules, bot.families' own modules, bot.delivery (to
queue thread notices) and models."""

from bot.families.name_fix.decisions import (
    check_decider,
    close_resolved,
    decide,
    record_refusal,
)
from bot.families.name_fix.records import (
    IMPORT_ACTOR,
    NAME_LIMIT,
    NOTE_LIMIT,
    ConfirmedBy,
    Decision,
    FixableChild,
    NameFixField,
    NameFixRecord,
    NameFixRequest,
)
from bot.families.name_fix.requests import (
    fixable_child,
    record_message,
    request_name_fix,
    withdraw_unposted,
)

__all__ = [
    "IMPORT_ACTOR",
    "NAME_LIMIT",
    "NOTE_LIMIT",
    "ConfirmedBy",
    "Decision",
    "FixableChild",
    "NameFixField",
    "NameFixRecord",
    "NameFixRequest",
    "check_decider",
    "close_resolved",
    "decide",
    "fixable_child",
    "record_message",
    "record_refusal",
    "request_name_fix",
    "withdraw_unposted",
]
