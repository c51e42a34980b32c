"""Answers carried by ack() leave the moment ack() is called: Bolt's threaded listener runner
with its ack poll replaced by a signal.

Works around slack_bolt/listener/thread_runner.py (`ThreadListenerRunner.run`, the branch for
process_before_response=False, "await for the completion of ack()"): Bolt runs the listener on
a worker thread while the request thread polls `ack.response` with `time.sleep(0.01)`. Its first
look comes before the worker has acked, so every answer that travels in the ack's body — the
/family list, a "no match" hint, an error sentence, a dialog's response_action — waits a whole
10 ms sleep for nothing (issue 22). Socket Mode dispatches through the same runner.

`SignalledListenerRunner` takes that one branch over, step for step as Bolt writes it (the same
start, completion and error handlers, lazy listeners, `ack_timeout`, the same answers), except
that the request thread waits on an `Event`: set when the ack's response is set (by `ack()`,
or by Bolt's error path), and when the listener returns (one that returned without acking
will not ack; Bolt would wait out `ack_timeout` before its "did not call ack()" warning). The
other branches (process_before_response, a lazy-only request) are Bolt's own code.

What the listener does after an answer in the ack's body (its audit row, releasing its
session) waits until the server has written the HTTP answer (`handing_over`, around each
request in handlers/serving.py; `SignallingAck.handed_over`): run at once, it competed for the
interpreter (the GIL) with the thread turning the ack into the HTTP answer and delayed that
answer (bench/RESULTS.md, issue 22). Socket Mode has no such signal: there it does not wait.

The pipeline's promise is untouched: `CommittingAck` (handlers/pipeline.py) commits before it
calls this ack, so the request thread wakes only once the action is committed.

Not `process_before_response=True`: it would hold every HTTP answer until the listener returns,
so a card's `chat.postMessage` or a batch's letters would delay the ack. Not
`chat.postEphemeral`/`respond()`: on real Slack that adds a Web API round trip to what the ack's
body delivers in the same exchange.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from slack_bolt import Ack, App, BoltRequest, BoltResponse
from slack_bolt.listener import Listener
from slack_bolt.listener.thread_runner import ThreadListenerRunner
from slack_bolt.logger.messages import warning_did_not_call_ack

_http = threading.local()  # the request thread's `handing_over` signal


@contextmanager
def handing_over() -> Iterator[threading.Event]:
    """Around Bolt's handling of one HTTP request, on the thread that serves it: the event
    becomes the request's `SignallingAck.handed_over`, for the HTTP layer to set once the
    response is written (handlers/serving.py). Set here if Bolt raises."""
    handed_over = threading.Event()
    _http.handed_over = handed_over
    try:
        yield handed_over
    except BaseException:
        handed_over.set()
        raise
    finally:
        _http.handed_over = None


class SignallingAck(Ack):
    """Bolt's `Ack`, setting `answered` whenever its response is set: `ack()` sets it through
    `_set_response`, Bolt's error path assigns it directly. `handed_over`: set once the HTTP
    layer holds the response (`handing_over`); None in Socket Mode."""

    def __init__(self, answered: threading.Event, response: BoltResponse | None) -> None:
        self._answered = answered
        self._response = response
        self.handed_over: threading.Event | None = getattr(_http, "handed_over", None)
        if response is not None:  # a middleware acked before the listener ran
            answered.set()

    def __deepcopy__(self, memo: dict[int, object]) -> Ack:
        # Bolt deep-copies the request for each lazy listener: its copy is a plain Ack, as
        # Bolt's own (nothing waits on a lazy listener's ack; an Event cannot be copied).
        copied = Ack.__new__(Ack)  # Ack.__init__ (untyped) only sets the response
        copied.response = copy.deepcopy(self._response, memo)
        return copied

    @property  # Ack declares a plain attribute; this one signals when it is set
    def response(self) -> BoltResponse | None:
        return self._response

    @response.setter
    def response(self, value: BoltResponse | None) -> None:
        self._response = value
        if value is not None:
            self._answered.set()


class SignalledListenerRunner(ThreadListenerRunner):
    """Bolt's ThreadListenerRunner whose request thread waits for a signal, not a poll."""

    @classmethod
    def replacing(cls, runner: ThreadListenerRunner) -> SignalledListenerRunner:
        return cls(
            logger=runner.logger,
            process_before_response=runner.process_before_response,
            listener_error_handler=runner.listener_error_handler,
            listener_start_handler=runner.listener_start_handler,
            listener_completion_handler=runner.listener_completion_handler,
            listener_executor=runner.listener_executor,
            lazy_listener_runner=runner.lazy_listener_runner,
        )

    def run(
        self,
        request: BoltRequest,
        response: BoltResponse,
        listener_name: str,
        listener: Listener,
        starting_time: float | None = None,
    ) -> BoltResponse | None:
        if self.process_before_response or request.lazy_only or request.lazy_function_name:
            return super().run(request, response, listener_name, listener, starting_time)
        starting_time = starting_time if starting_time is not None else time.time()
        answered = threading.Event()
        ack = SignallingAck(answered, request.context.ack.response)
        request.context["ack"] = ack  # the listener's `ack` argument is read from here
        if listener.auto_acknowledgement:
            ack()  # Events API: acknowledged at once

        outcome: dict[str, BoltResponse | None] = {"response": response}

        def run_ack_function_asynchronously() -> None:
            # Bolt's worker, as written upstream, plus the signal when it is done.
            current = outcome["response"]
            try:
                self.listener_start_handler.handle(request=request, response=current)
                listener.run_ack_function(request=request, response=response)
            except Exception as e:
                if listener.auto_acknowledgement:
                    self.listener_error_handler.handle(error=e, request=request, response=current)
                else:
                    if current is None:
                        current = BoltResponse(status=500)
                    current.status = 500
                    if ack.response is not None:  # already acknowledged
                        current = None
                    self.listener_error_handler.handle(error=e, request=request, response=current)
                    outcome["response"] = current
                    ack.response = current
            finally:
                self.listener_completion_handler.handle(request=request, response=current)
                answered.set()

        self.listener_executor.submit(run_ack_function_asynchronously)
        for lazy_func in listener.lazy_functions:
            self._start_lazy_function(lazy_func, request)

        answered.wait(timeout=max(0.0, listener.ack_timeout - (time.time() - starting_time)))
        response_now = outcome["response"]
        if response_now is None and ack.response is None:
            self.logger.warning(warning_did_not_call_ack(listener_name))
            return None
        if response_now is None and ack.response is not None:
            self._debug_log_completion(starting_time, ack.response)
            return ack.response
        return response_now


def install(app: App) -> None:
    """Put the signalled runner in the app's place for Bolt's. Bolt builds its runner in
    App.__init__ and offers no setting for another; its handlers (the @app.error one included,
    which Bolt sets on whatever runner the app holds) carry over."""
    app._listener_runner = SignalledListenerRunner.replacing(app.listener_runner)
