"""The request pipeline's listener side: what every listener gets besides Bolt's own arguments,
and the one place a listener's transaction is committed and its errors are answered.

Middleware (handlers/middleware.py) has already put the services, the directory and the
acting `Staff` member (guest and channel checks done) into Bolt's context; a listener asks for
them by name. It also asks for `db`, the request's database: one read session and one write
transaction, each opened on first use. The pipeline commits the write transaction when the
listener acknowledges (so "ack" means "committed": a dialog closes only once its PINs exist)
and again when the listener returns; an exception rolls it back. Listeners never open sessions
or commit.

Bolt runs listeners after the middleware chain has returned (process_before_response=False),
so the transaction cannot live in middleware: it lives here, around the listener itself. The
answer leaves the moment `CommittingAck` has committed and called Bolt's ack: the runner of
handlers/ack_runner.py wakes the answering thread then, instead of Bolt's 10 ms poll.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, BoltResponse
from sqlmodel import Session

from bot.db import Database, connection_errors_as_unavailable
from bot.delivery import outbox
from bot.services import Services

Listener = Callable[..., None]
# What every wrapped listener receives from Bolt, whatever the listener itself asks for.
_PIPELINE_ARGS = ("ack", "body", "client", "services")


@dataclass(frozen=True)
class Staff:
    """Who is acting, already checked by the middleware: not a guest, in an allowed channel."""

    user_id: str
    channel_id: str | None


# How long the work after an answer in the ack's body waits for the HTTP layer to hold it (a
# few milliseconds at most; the bound only keeps a stuck request from holding the listener).
HAND_OVER_WAIT_S = 1.0


class RolledBack(Exception):
    """How the pipeline tells a write transaction to roll back (never raised)."""


class RequestDatabase:
    """The request's database: `reads` (a read-only session) and `writes` (the action's one write
    transaction), each opened on first use so a request that only reads never takes SQLite's
    write lock, and one that writes after a Slack call holds it only for the write."""

    def __init__(self, database: Database, on_commit: Callable[[], None]) -> None:
        self._database = database
        self._on_commit = on_commit
        self._reads: ExitStack | None = None
        self._read_session: Session | None = None
        self._writes: AbstractContextManager[Session] | None = None
        self._write_session: Session | None = None
        self._answer: threading.Event | None = None

    def answer_leaving(self, handed_over: threading.Event | None) -> None:
        """The ack carried the answer (a list, a hint): the request's next database work (its
        audit row, releasing the read session) waits until `handed_over` says the HTTP layer
        holds it, instead of competing with that thread for the interpreter (the GIL) while
        the answer is on its way. None (Socket Mode, no HTTP layer): no wait."""
        self._answer = handed_over

    def _let_answer_leave(self) -> None:
        if self._answer is not None:
            answer, self._answer = self._answer, None
            answer.wait(HAND_OVER_WAIT_S)

    @property
    def reads(self) -> Session:
        if self._read_session is None:
            self._reads = ExitStack()
            self._read_session = self._reads.enter_context(self._database.read_session())
        return self._read_session

    @property
    def writes(self) -> Session:
        if self._write_session is None:
            self._let_answer_leave()
            self._writes = self._database.transaction()
            self._write_session = self._writes.__enter__()
        return self._write_session

    @contextmanager
    def independent(self) -> Iterator[Session]:
        """A transaction of its own, for a record that must stand when the action fails (an
        audited refusal). Only on the failure path: the action's own writes are rolled back
        first (on SQLite they would otherwise hold the write lock this one waits for)."""
        self._let_answer_leave()
        self.rollback()
        with self._database.transaction() as session:
            yield session

    def rollback(self) -> None:
        if self._writes is not None:
            writes, self._writes, self._write_session = self._writes, None, None
            writes.__exit__(RolledBack, RolledBack(), None)

    def commit(self) -> None:
        """Commit what the action wrote so far (the pipeline calls it: on ack, at the end),
        and wake the delivery worker if it queued work (a lookup's audit row does not)."""
        if self._writes is not None and self._write_session is not None:
            queued = outbox.queued_work(self._write_session)
            writes, self._writes, self._write_session = self._writes, None, None
            writes.__exit__(None, None, None)
            if queued:
                self._on_commit()

    def close(self, error: BaseException | None) -> None:
        """Roll back on error, else commit; release the read session either way."""
        self._let_answer_leave()
        try:
            if error is None:
                self.commit()
            else:
                self.rollback()
        finally:
            if self._reads is not None:
                reads, self._reads, self._read_session = self._reads, None, None
                reads.close()


class CommittingAck(Ack):
    """Bolt's ack, committing the action's writes first: the user hears "done" only once it is."""

    def __init__(self, ack: Ack, db: RequestDatabase) -> None:
        self.response = None  # as Ack.__init__, which has no annotations for strict mypy
        self._ack, self._db = ack, db

    def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        self._db.commit()
        response = self._ack(*args, **kwargs)
        self.response = self._ack.response
        if args or kwargs:  # the answer itself: what follows can wait until it has left
            self._db.answer_leaving(getattr(self._ack, "handed_over", None))
        return response


def listener(function: Listener) -> Listener:
    """Wrap a listener in the pipeline: inject `db`, commit on ack and at the end, roll back on
    error. An error after the ack is answered here (Bolt's own error path would reset the ack
    and make Slack wait for an answer already given); one before it goes to the app's error
    handler, whose response is the reply."""
    from handlers.errors import handle_error  # the error handler renders with this module

    wanted = list(inspect.signature(function).parameters)
    asked = [name for name in wanted if name != "db"]
    injected = asked + [name for name in _PIPELINE_ARGS if name not in asked]

    @functools.wraps(function)
    def run(**kwargs: Any) -> None:
        ack, services = kwargs["ack"], kwargs["services"]
        assert isinstance(services, Services)
        db = RequestDatabase(services.database, on_commit=services.kick)
        own = {name: kwargs[name] for name in asked}
        if "ack" in own:
            own["ack"] = CommittingAck(ack, db)
        if "db" in wanted:
            own["db"] = db
        try:
            with connection_errors_as_unavailable():
                function(**own)
        except Exception as error:
            db.close(error)
            if ack.response is None:
                raise
            handle_error(error, kwargs["body"], kwargs["client"], None)
            return
        db.close(None)

    # Bolt injects arguments by the names it reads from the signature (through __wrapped__):
    # the pipeline's own, plus what the listener asked for, less `db`, which is ours.
    del run.__wrapped__
    parameter = inspect.Parameter.POSITIONAL_OR_KEYWORD
    run.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(name, parameter) for name in injected]
    )
    return run
