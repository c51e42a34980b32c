"""Every block_id, action_id and callback_id, one StrEnum per feature, so the code that
builds a view and the code that reads it can't drift apart."""

from enum import StrEnum

from bot.families.name_fix import NameFixField
from bot.issuing.requests import IssueField


class Commands(StrEnum):
    FAMILY = "/family"
    PIN = "/pin"
    PINBOT = "/pinbot"


class FamilyIds(StrEnum):
    OPEN = "family_open"  # "Open" on a search result, "Open family" in a digest
    PICK_CHILD = "pin_pick_child"  # a /pin search result


class IssueIds(StrEnum):
    OPEN_DIALOG = "issue_pins_open"
    CALLBACK = "issue_pins"
    # Input block ids are the domain's field names: a validation error lands on its block.
    CHILDREN = IssueField.CHILDREN.value  # children, children_2, ... when split by 10
    CHILDREN_ACTION = "children_select"
    RECIPIENT = IssueField.RECIPIENT.value
    RECIPIENT_ACTION = "recipient_select"
    EMAILED_CHILD = IssueField.EMAILED_CHILD.value
    EMAILED_CHILD_ACTION = "emailed_child_select"
    LANGUAGE = IssueField.LANGUAGE.value
    LANGUAGE_ACTION = "letter_language_select"
    RETRY_UPLOAD = "letters_retry_upload"  # on the thread's "letters could not be uploaded"


class NameFixIds(StrEnum):
    REQUEST = "name_fix_request"
    CALLBACK = "name_fix"
    APPROVE = "name_fix_approve"
    REJECT = "name_fix_reject"
    CONFIRM_AS_IS = "name_fix_confirm"
    REJECT_CALLBACK = "name_fix_reject_reason"
    DECISION_BUTTONS = "name_fix_decide"
    FIRST = NameFixField.FIRST.value
    FIRST_ACTION = "name_fix_first_input"
    MIDDLE = NameFixField.MIDDLE.value
    MIDDLE_ACTION = "name_fix_middle_input"
    LAST = NameFixField.LAST.value
    LAST_ACTION = "name_fix_last_input"
    CONFIRMED_BY = NameFixField.CONFIRMED_BY.value
    CONFIRMED_BY_ACTION = "name_fix_confirmed_by_choice"
    NOTE = NameFixField.NOTE.value
    NOTE_ACTION = "name_fix_note_input"
    REASON = NameFixField.REASON.value
    REASON_ACTION = "name_fix_reason_input"


class HomeIds(StrEnum):
    POST_TODAY = "home_post_today"  # posts `/pinbot today` into the staff channel
    POST_PENDING = "home_post_pending"  # posts `/pinbot pending` into the staff channel


NO_EMAIL = "none"  # the recipient option "No email — print every PIN"
