"""The signalled listener runner (handlers/ack_runner.py) against Bolt's own: every scenario runs
on a bare Bolt app with Bolt's ThreadListenerRunner and again with ours, and must come out the
same (ack within the ack timeout, lazy listeners, the @app.error handler, Events API auto-acks,
process_before_response) — except that ours never sleeps on the answering thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_sdk import WebClient

from handlers import ack_runner
from tests.support.ack_poll import DispatchSleeps, dispatch_sleeps_fixture
from tests.support.fake_slack import FakeSlack

FIXTURES = (dispatch_sleeps_fixture,)  # imported for its fixture
RUNNERS = ["bolt", "signalled"]
SHORT_ACK_TIMEOUT = 1  # seconds; Bolt's default of 3 would only slow the test down
WAIT = 5  # seconds: a bound on waits that should end at once; never reached when all is well


@dataclass
class Probe:
    """What the listeners did, seen from the test's thread."""

    release: threading.Event = field(default_factory=threading.Event)
    finished: threading.Event = field(default_factory=threading.Event)
    lazy_ran: threading.Event = field(default_factory=threading.Event)
    slack_url: str = ""
    errors: list[str] = field(default_factory=list)


@pytest.fixture(params=RUNNERS)
def runner(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def slack_url(fake_slack: FakeSlack) -> str:
    """Bolt's authorization middleware asks auth.test once: the fake Slack answers."""
    return fake_slack.url


@pytest.fixture
def probe(slack_url: str) -> Iterator[Probe]:
    probe = Probe(slack_url=slack_url)
    yield probe
    probe.release.set()  # never leave a listener waiting on a failed test


def make_app(runner: str, probe: Probe, *, process_before_response: bool = False) -> App:
    app = App(
        client=WebClient(token="xoxb-test", base_url=probe.slack_url),
        signing_secret="test-secret",
        request_verification_enabled=False,
        token_verification_enabled=False,
        process_before_response=process_before_response,
        raise_error_for_unhandled_request=True,  # as pinbot's app
    )
    if runner == "signalled":
        ack_runner.install(app)
        assert isinstance(app.listener_runner, ack_runner.SignalledListenerRunner)

    @app.error
    def on_error(error: Exception) -> BoltResponse:
        probe.errors.append(str(error))
        probe.finished.set()
        return BoltResponse(status=200, body="sorry")

    return app


def slash(text: str = "q") -> BoltRequest:
    fields = {"command": "/x", "text": text, "user_id": "U1", "channel_id": "C1", "team_id": "T1"}
    return BoltRequest(body=urlencode(fields))


def mention_event() -> BoltRequest:
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "event": {"type": "app_mention", "user": "U1", "channel": "C1", "text": "hi", "ts": "1.2"},
    }
    return BoltRequest(body=json.dumps(body), headers={"content-type": ["application/json"]})


def command(app: App, function: Callable[..., None], ack_timeout: int | None = None) -> None:
    app.command("/x")(function)
    if ack_timeout is not None:
        app._listeners[-1].ack_timeout = ack_timeout


def test_the_ack_body_is_the_answer(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe)

    def listener(ack: Ack) -> None:
        threading.Event().wait(0.05)  # work before the answer, as a search does
        ack(text="2 families match.")

    command(app, listener)
    response = app.dispatch(slash())
    assert (response.status, response.body) == (200, "2 families match.")
    # The check of the mechanism can fail: Bolt's runner does poll on this thread.
    polled = ["slack_bolt.listener.thread_runner:run"] if runner == "bolt" else []
    assert sorted(set(dispatch_sleeps.callers)) == polled


def test_the_answer_leaves_while_the_listener_works_on(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe)

    def listener(ack: Ack) -> None:
        ack()
        probe.release.wait(WAIT)
        probe.finished.set()

    command(app, listener)
    response = app.dispatch(slash())
    assert response.status == 200 and not probe.finished.is_set()
    probe.release.set()
    assert probe.finished.wait(WAIT)


def test_an_error_before_the_ack_is_answered_by_the_error_handler(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe)

    def listener(ack: Ack) -> None:
        raise RuntimeError("boom")

    command(app, listener)
    response = app.dispatch(slash())
    assert (response.status, response.body, probe.errors) == (200, "sorry", ["boom"])
    assert runner == "bolt" or dispatch_sleeps.callers == []


def test_an_error_after_the_ack_keeps_the_ack_and_reaches_the_error_handler(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe)

    def listener(ack: Ack) -> None:
        ack(text="done")
        probe.release.wait(WAIT)
        raise RuntimeError("late")

    command(app, listener)
    response = app.dispatch(slash())
    assert (response.status, response.body) == (200, "done")
    probe.release.set()
    assert probe.finished.wait(WAIT) and probe.errors == ["late"]


@pytest.mark.parametrize(
    ("acks_after", "answer"),
    [(0.3, "in time"), (None, "sorry"), (SHORT_ACK_TIMEOUT + 0.5, "sorry")],
    ids=["acks-in-time", "never-acks", "acks-too-late"],
)
def test_the_ack_timeout(
    runner: str,
    probe: Probe,
    dispatch_sleeps: DispatchSleeps,
    acks_after: float | None,
    answer: str,
) -> None:
    """Bolt gives a listener ack_timeout to ack; then the request is unhandled (the error
    handler answers). Ours answers the same, at the ack, at the timeout, or as soon as the
    listener returned without acking."""
    app = make_app(runner, probe)

    def listener(ack: Ack) -> None:
        if acks_after is not None:
            probe.release.wait(acks_after)
            ack(text="in time")

    command(app, listener, ack_timeout=SHORT_ACK_TIMEOUT)
    response = app.dispatch(slash())
    assert (response.status, response.body) == (200, answer)
    unhandled = [] if answer == "in time" else ["unhandled request error"]
    assert probe.errors == unhandled
    assert runner == "bolt" or dispatch_sleeps.callers == []


def test_lazy_listeners_run_and_the_ack_answers(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe)

    def acknowledge(ack: Ack) -> None:
        ack(text="on it")

    def later(body: dict[str, Any]) -> None:
        probe.lazy_ran.set()

    app.command("/x")(ack=acknowledge, lazy=[later])
    response = app.dispatch(slash())
    assert (response.status, response.body) == (200, "on it")
    assert probe.lazy_ran.wait(WAIT)


def test_events_are_acked_at_once(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe)

    @app.event("app_mention")
    def on_mention(event: dict[str, Any]) -> None:
        probe.release.wait(WAIT)
        probe.finished.set()

    response = app.dispatch(mention_event())
    assert response.status == 200 and not probe.finished.is_set()
    assert runner == "bolt" or dispatch_sleeps.callers == []


def test_process_before_response_still_runs_the_listener_first(
    runner: str, probe: Probe, dispatch_sleeps: DispatchSleeps
) -> None:
    app = make_app(runner, probe, process_before_response=True)

    def listener(ack: Ack) -> None:
        ack(text="answer")
        probe.finished.set()

    command(app, listener)
    response = app.dispatch(slash())
    assert (response.status, response.body) == (200, "answer") and probe.finished.is_set()
