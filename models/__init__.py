"""SQLModel tables. Importing this package registers every table on SQLModel.metadata."""

from models._base import (
    AppointmentStatus,
    Delivery,
    NameFixStatus,
    PinStatus,
    WorkKind,
    WorkStatus,
    utcnow,
)
from models.audit import AuditEvent
from models.feed import FeedMessage
from models.name_fix import NameFix
from models.outbox import LetterFile, OutgoingWork
from models.pins import IssueBatch, Pin
from models.portal import PortalClient, PortalThrottle
from models.practice import Appointment, Family, Guardian, Patient
from models.reminders import ReminderRun
from models.threads import FamilyThread

__all__ = [
    "Appointment",
    "AppointmentStatus",
    "AuditEvent",
    "Delivery",
    "Family",
    "FamilyThread",
    "FeedMessage",
    "Guardian",
    "IssueBatch",
    "LetterFile",
    "NameFix",
    "NameFixStatus",
    "OutgoingWork",
    "Patient",
    "Pin",
    "PinStatus",
    "PortalClient",
    "PortalThrottle",
    "ReminderRun",
    "WorkKind",
    "WorkStatus",
    "utcnow",
]
