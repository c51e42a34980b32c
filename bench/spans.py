"""Bench only: timing spans inside the bot process for the /family benchmark.

bench/procs.py imports this module in the `pinbot run` child process, before the app is built,
when the benchmark asks for spans (`serve(..., spans=path)`); production code never imports it
and carries no timing of its own. `install` wraps, by monkeypatching, the steps of one /family:
the WSGI entry, the middleware's admission check, the listener, the search, the ack, the
family's load, the card's blocks, chat.postMessage, and what follows the post (the thread
record, the audit row, the commit). Each request's timestamps (time.perf_counter, i.e.
CLOCK_MONOTONIC on Linux: the benchmark process reads the same clock) go to `path` as one JSON
line, keyed by the request's channel, once its listener returns, with the garbage collector's
pauses since the previous line.
"""

from __future__ import annotations

import functools
import gc
import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_local = threading.local()
_lock = threading.Lock()
# channel -> timestamps taken on the request thread (the listener runs on another)
_admitted: dict[str, dict[str, list[float]]] = {}


def _mark(name: str) -> None:
    spans = getattr(_local, "spans", None)
    if spans is not None:
        spans.setdefault(name, []).append(time.perf_counter())


def _timed(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _mark(f"{name}_start")
        try:
            return function(*args, **kwargs)
        finally:
            _mark(f"{name}_end")

    return wrapper


_gc_pauses: list[tuple[int, float, float]] = []  # (generation, start, end) since the last line
_gc_started = [0.0]


def _on_gc(phase: str, info: dict[str, Any]) -> None:
    if phase == "start":
        _gc_started[0] = time.perf_counter()
    else:
        _gc_pauses.append((info["generation"], _gc_started[0], time.perf_counter()))


def install(path: str) -> None:
    from slack_sdk import WebClient

    import handlers.family as family
    import handlers.middleware as middleware
    import handlers.pipeline as pipeline
    import handlers.serving as serving

    gc.callbacks.append(_on_gc)
    out = Path(path).open("a", buffering=1)  # noqa: SIM115  (open for the process's life)

    make_wsgi_app = serving.make_wsgi_app

    @functools.wraps(make_wsgi_app)
    def timed_wsgi(*args: Any, **kwargs: Any) -> Any:
        app = make_wsgi_app(*args, **kwargs)

        def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            _local.wsgi = time.perf_counter()
            return app(environ, start_response)  # type: ignore[no-any-return]

        return wsgi

    serving.make_wsgi_app = timed_wsgi  # type: ignore[assignment]
    import bot.runtime.process as process

    process.make_wsgi_app = timed_wsgi  # type: ignore[assignment]

    refusal = middleware._refusal

    def timed_refusal(body: dict[str, Any], *args: Any) -> Any:
        start = time.perf_counter()
        answer = refusal(body, *args)
        channel = str(body.get("channel_id") or "")
        with _lock:
            _admitted[channel] = {
                "wsgi": [getattr(_local, "wsgi", start)],
                "admit_start": [start],
                "admit_end": [time.perf_counter()],
            }
        return answer

    middleware._refusal = timed_refusal

    command = family.family_command

    @functools.wraps(command)
    def timed_command(**kwargs: Any) -> None:
        _local.spans = {"listener_start": [time.perf_counter()]}
        try:
            command(**kwargs)
        finally:
            spans, _local.spans = _local.spans, None
            spans["listener_end"] = [time.perf_counter()]
            channel = str(kwargs["command"].get("channel_id") or "")
            with _lock:
                spans.update(_admitted.pop(channel, {}))
                pauses = _gc_pauses[:]
                del _gc_pauses[:]
            out.write(json.dumps({"channel": channel, **spans, "gc": pauses}) + "\n")

    # the listener's own signature is what Bolt and the pipeline read
    timed_command.__signature__ = inspect.signature(command)  # type: ignore[attr-defined]
    del timed_command.__wrapped__  # type: ignore[attr-defined]
    family.family_command = timed_command
    for name in ("search_families", "find_families"):  # before and after issue 13 §4
        if hasattr(family, name):
            setattr(family, name, _timed(getattr(family, name), "search"))
    family.label_families = _timed(family.label_families, "labels")  # type: ignore[assignment]
    family.family_choices = _timed(family.family_choices, "choices")  # type: ignore[assignment]
    family.load_family = _timed(family.load_family, "load")  # type: ignore[assignment]
    family.family_card = _timed(family.family_card, "card")  # type: ignore[assignment]
    family.card_fallback_text = _timed(family.card_fallback_text, "fallback")  # type: ignore[assignment]
    family.audit_lookup = _timed(family.audit_lookup, "audit")  # type: ignore[assignment]
    pipeline.CommittingAck.__call__ = _timed(pipeline.CommittingAck.__call__, "ack")  # type: ignore[method-assign]
    pipeline.RequestDatabase.commit = _timed(pipeline.RequestDatabase.commit, "commit")  # type: ignore[method-assign]
    WebClient.chat_postMessage = _timed(WebClient.chat_postMessage, "post")  # type: ignore[method-assign]
    _patch_record_card()
    _patch_search_steps()


def _patch_record_card() -> None:
    from bot.families import threads

    threads.record_card = _timed(threads.record_card, "record")  # type: ignore[assignment]


def _patch_search_steps() -> None:
    from bot.lookup import finding

    finding.name_keys = _timed(finding.name_keys, "keys")
    finding._fetch = _timed(finding._fetch, "rows")
