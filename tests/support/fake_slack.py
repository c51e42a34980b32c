"""A local stand-in for Slack's Web API, for integration tests.

`FakeSlack` is a threaded HTTP server on 127.0.0.1 that answers the Web API methods pinbot uses
the way Slack does: it checks the token, the required arguments (from the machine-readable method
reference in ../shared/slack-reference/methods), Block Kit limits, and answers with realistic
ids. Every call is recorded (`calls`, `calls_to`, `last`, `wait_for`). Point a WebClient at it
with `base_url=fake.url`.

Beyond the Web API it serves the two other URLs Slack hands out:
- upload URLs from files.getUploadURLExternal (`/upload/v1/<file id>`), as files_upload_v2 uses;
- response URLs (`fake.response_url()`), recorded as calls to the pseudo-method "response_url".

JSON-typed arguments (blocks, view, files, attachments, metadata) are recorded decoded, whether
the client sent them form-encoded or as a JSON body.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest

from tests.support.paths import REPO_ROOT

log = logging.getLogger(__name__)

REFERENCE_DIR = REPO_ROOT.parent / "shared" / "slack-reference"
REFERENCE_SKIP_REASON = (
    f"Slack reference data not found at {REFERENCE_DIR} (CI has it there; a plain clone "
    "does not): argument validation against Slack's method reference is skipped"
)

TEAM_ID = "T0PINBOT1"
TEAM_DOMAIN = "pinbot-test"
APP_ID = "A0PINBOT1"
BOT_ID = "B0PINBOT1"
BOT_USER_ID = "U0PINBOT1"
STAFF_USER_ID = "U0STAFF01"  # a regular member, known to users.info; the payload builders' default
UPLOAD = "upload"  # pseudo-method recorded for POSTs to an upload URL
RESPONSE_URL = "response_url"  # pseudo-method recorded for POSTs to a response URL

MAX_MESSAGE_TEXT = 40_000
MAX_ALT_TXT = 1000  # files.getUploadURLExternal: alt_txt_too_large beyond it
JSON_ARGS = frozenset(
    {"attachments", "blocks", "files", "metadata", "unfurled_attachments", "view"}
)
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,}$")
USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
TRIGGER_ID = re.compile(r"^\d+\.\d+\.[0-9a-f]+$")
APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


def require_reference() -> Path:
    """The reference folder, or skip the calling test with a clear reason."""
    if not (REFERENCE_DIR / "methods").is_dir():
        pytest.skip(REFERENCE_SKIP_REASON)
    return REFERENCE_DIR


class SlackError(Exception):
    """An `ok: false` answer."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["response_metadata"] = {"messages": self.messages}
        return body


@dataclass(frozen=True)
class Call:
    """One request the fake received. `at` is time.monotonic() when it was answered."""

    method: str
    args: dict[str, Any]
    at: float
    token: str | None = None
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class Failure:
    status: int
    error: str
    retry_after: int | None
    drop_connection: bool
    times: int


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def json(cls, body: Mapping[str, Any], status: int = 200, **headers: str) -> Reply:
        data = json.dumps(body).encode()
        return cls(status, data, {"Content-Type": "application/json; charset=utf-8", **headers})

    @classmethod
    def text(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


@dataclass
class StoredFile:
    file_id: str
    filename: str
    length: int
    data: bytes | None = None
    title: str = ""
    channel_id: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    alt_txt: str | None = None
    share_ts: str | None = None
    completed: bool = False
    deleted: bool = False


@dataclass(frozen=True)
class UploadedFile:
    """A file shared with files.completeUploadExternal, as `uploaded_files()` reports it."""

    file_id: str
    filename: str
    title: str
    data: bytes
    channel_id: str | None
    thread_ts: str | None
    initial_comment: str | None
    deleted: bool
    alt_txt: str | None = None


class Reference:
    """Required arguments and JSON-typed arguments, from the method reference files."""

    def __init__(self, methods_dir: Path | None) -> None:
        self.methods_dir = methods_dir if methods_dir and methods_dir.is_dir() else None
        self._cache: dict[str, dict[str, Any] | None] = {}

    @property
    def available(self) -> bool:
        return self.methods_dir is not None

    def spec(self, method: str) -> dict[str, Any] | None:
        if self.methods_dir is None:
            return None
        if method not in self._cache:
            path = self.methods_dir / f"{method}.json"
            self._cache[method] = json.loads(path.read_text()) if path.is_file() else None
        return self._cache[method]

    def missing(self, method: str, args: Mapping[str, Any]) -> list[str]:
        spec = self.spec(method) or {}
        problems = [
            f"[ERROR] missing required field: {name}"
            for name, arg in spec.get("args", {}).items()
            if arg.get("required") and _absent(args.get(name))
        ]
        for group in spec.get("arg_groups", []):
            names = group.get("args", [])
            required = group.get("required", True) and group.get("mutually_exclusive")
            if required and all(_absent(args.get(name)) for name in names):
                problems.append(f"[ERROR] one of these fields is required: {', '.join(names)}")
        return problems


def _absent(value: Any) -> bool:
    return value is None or value == ""


# ---------------------------------------------------------------------------------------------
# request parsing


def parse_args(content_type: str, query: str, body: bytes) -> tuple[dict[str, Any], str | None]:
    """Arguments of a Web API call, and a token sent in the form (never in a JSON body)."""
    args: dict[str, Any] = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            decoded = json.loads(body or b"{}")
        except ValueError as error:
            raise SlackError("invalid_json") from error
        if not isinstance(decoded, dict):
            raise SlackError("invalid_json")
        decoded.pop("token", None)  # Slack reads a JSON call's token only from the header
        args.update(decoded)
        return args, None
    if kind == "multipart/form-data":
        args.update(parse_multipart(content_type, body))
    elif body:
        pairs = parse_qs(body.decode("utf-8"), keep_blank_values=True)
        args.update({k: v[-1] for k, v in pairs.items()})
    return args, args.pop("token", None)


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """Fields of a multipart/form-data body: str for plain fields, bytes for file parts."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        assert isinstance(part, Message)
        name = part.get_param("name", header="content-disposition")
        data = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(data, bytes):
            is_file = part.get_param("filename", header="content-disposition") is not None
            fields[name] = data if is_file else data.decode("utf-8")
    return fields


def decode_json_args(args: dict[str, Any]) -> None:
    for name in JSON_ARGS & args.keys():
        if isinstance(args[name], str) and args[name]:
            try:
                args[name] = json.loads(args[name])
            except ValueError as error:
                code = "invalid_blocks_format" if name == "blocks" else "invalid_arguments"
                raise SlackError(code, f"[ERROR] {name} is not valid JSON") from error


# ---------------------------------------------------------------------------------------------
# Block Kit limits Slack enforces (the same numbers slack_sdk.models validates)

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
OPTION_LIMITS = {
    "checkboxes": 10,
    "radio_buttons": 10,
    "overflow": 5,
    "static_select": 100,
    "multi_static_select": 100,
}
PLAIN_OPTIONS = frozenset({"overflow", "static_select", "multi_static_select"})


class BlockChecker:
    """Collects Block Kit problems the way Slack reports them: "[ERROR] … [json-pointer:/…]"."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._block_ids: set[str] = set()

    def fail(self, pointer: str, message: str) -> None:
        self.problems.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def length(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.fail(pointer, f"must be less than {limit + 1} characters")

    def items(self, value: Any, limit: int, pointer: str, minimum: int = 0) -> list[Any]:
        if not isinstance(value, list):
            self.fail(pointer, "must be an array")
            return []
        if len(value) > limit:
            self.fail(pointer, f"no more than {limit} items allowed")
        if len(value) < minimum:
            self.fail(pointer, f"must provide at least {minimum} item(s)")
        return value

    def text(self, obj: Any, limit: int, pointer: str, *, plain: bool = False) -> None:
        if not isinstance(obj, dict) or obj.get("type") not in ("plain_text", "mrkdwn"):
            self.fail(pointer, "must be a text object")
            return
        if plain and obj["type"] != "plain_text":
            self.fail(f"{pointer}/type", "must be plain_text")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.fail(f"{pointer}/text", "must be more than 0 characters")
        self.length(text, limit, f"{pointer}/text")

    def blocks(self, blocks: Any, limit: int, pointer: str) -> None:
        for index, block in enumerate(self.items(blocks, limit, pointer)):
            self.block(block, f"{pointer}/{index}")

    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            self.fail(pointer, "unsupported block type")
            return
        block_id = block.get("block_id")
        if block_id is not None:
            self.length(block_id, 255, f"{pointer}/block_id")
            if block_id in self._block_ids:
                self.fail(f"{pointer}/block_id", "duplicate block_id")
            self._block_ids.add(block_id)
        check = getattr(self, f"_{block['type']}_block", None)
        if check is not None:
            check(block, pointer)

    def _section_block(self, block: dict[str, Any], pointer: str) -> None:
        if "text" not in block and "fields" not in block:
            self.fail(pointer, "must provide either text or fields")
        if "text" in block:
            self.text(block["text"], 3000, f"{pointer}/text")
        if "fields" in block:
            for index, item in enumerate(self.items(block["fields"], 10, f"{pointer}/fields")):
                self.text(item, 2000, f"{pointer}/fields/{index}")
        if "accessory" in block:
            self.element(block["accessory"], f"{pointer}/accessory")

    def _header_block(self, block: dict[str, Any], pointer: str) -> None:
        self.text(block.get("text"), 150, f"{pointer}/text", plain=True)

    def _context_block(self, block: dict[str, Any], pointer: str) -> None:
        self.items(block.get("elements"), 10, f"{pointer}/elements", minimum=1)

    def _actions_block(self, block: dict[str, Any], pointer: str) -> None:
        seen: set[str] = set()
        elements = self.items(block.get("elements"), 25, f"{pointer}/elements", minimum=1)
        for index, element in enumerate(elements):
            self.element(element, f"{pointer}/elements/{index}")
            action_id = element.get("action_id") if isinstance(element, dict) else None
            if action_id is not None and action_id in seen:
                self.fail(f"{pointer}/elements/{index}/action_id", "duplicate action_id")
            seen.add(action_id)

    def _input_block(self, block: dict[str, Any], pointer: str) -> None:
        self.text(block.get("label"), 2000, f"{pointer}/label", plain=True)
        if "hint" in block:
            self.text(block["hint"], 2000, f"{pointer}/hint", plain=True)
        self.element(block.get("element"), f"{pointer}/element")

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict) or "type" not in element:
            self.fail(pointer, "must be a block element")
            return
        self.length(element.get("action_id"), 255, f"{pointer}/action_id")
        if "placeholder" in element:
            self.text(element["placeholder"], 150, f"{pointer}/placeholder", plain=True)
        if element["type"] == "button":
            self.text(element.get("text"), 75, f"{pointer}/text", plain=True)
            self.length(element.get("value"), 2000, f"{pointer}/value")
            self.length(element.get("url"), 3000, f"{pointer}/url")
        elif element["type"] in OPTION_LIMITS and "option_groups" not in element:
            self.options(element, pointer)

    def options(self, element: dict[str, Any], pointer: str) -> None:
        limit, plain = OPTION_LIMITS[element["type"]], element["type"] in PLAIN_OPTIONS
        known = set()
        options = self.items(element.get("options"), limit, f"{pointer}/options", minimum=1)
        for index, option in enumerate(options):
            self.option(option, f"{pointer}/options/{index}", plain)
            known.add(_option_key(option))
        initial = list(element.get("initial_options") or [])
        initial += [element["initial_option"]] if element.get("initial_option") else []
        if any(_option_key(option) not in known for option in initial):
            self.fail(f"{pointer}/initial_options", "must match one of the provided options")

    def option(self, option: Any, pointer: str, plain: bool) -> None:
        if not isinstance(option, dict):
            self.fail(pointer, "must be an option object")
            return
        self.text(option.get("text"), 75, f"{pointer}/text", plain=plain)
        self.length(option.get("value"), 150, f"{pointer}/value")
        if "description" in option:
            self.text(option["description"], 75, f"{pointer}/description")


def _option_key(option: Any) -> tuple[str, str]:
    if not isinstance(option, dict):
        return ("", "")
    text = option.get("text")
    return (str(option.get("value")), str(text.get("text")) if isinstance(text, dict) else "")


def message_block_problems(blocks: Any) -> list[str]:
    checker = BlockChecker()
    checker.blocks(blocks, MAX_MESSAGE_BLOCKS, "/blocks")
    return checker.problems


def view_problems(view: dict[str, Any]) -> list[str]:
    checker = BlockChecker()
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.fail("/view/type", "must be one of modal, home")
    if kind == "modal":
        checker.text(view.get("title"), 24, "/view/title", plain=True)
        for name in ("submit", "close"):
            if view.get(name) is not None:
                checker.text(view[name], 24, f"/view/{name}", plain=True)
        blocks = view.get("blocks") if isinstance(view.get("blocks"), list) else []
        has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if has_input and view.get("submit") is None:
            checker.fail("/view/submit", "a view with input blocks needs a submit button")
    checker.length(view.get("private_metadata"), 3000, "/view/private_metadata")
    checker.length(view.get("callback_id"), 255, "/view/callback_id")
    checker.length(view.get("external_id"), 255, "/view/external_id")
    checker.blocks(view.get("blocks"), MAX_VIEW_BLOCKS, "/view/blocks")
    return checker.problems


# ---------------------------------------------------------------------------------------------
# the HTTP server


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeSlack


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("fake slack: " + format, *args)

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        try:
            reply = fake.dispatch(url.path, url.query, dict(self.headers.items()), body)
        except Exception:  # a bug in the fake: answer like Slack's own failures, and log it
            log.exception("fake slack failed on %s", url.path)
            reply = Reply.json({"ok": False, "error": "fatal_error"}, status=500)
        self._send(reply)

    def _send(self, reply: Reply) -> None:
        if reply.drop:
            self.close_connection = True
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)


class FakeSlack:
    """Slack's Web API on loopback. Use as a context manager, or start()/stop()."""

    def __init__(self, reference_dir: Path | None = REFERENCE_DIR) -> None:
        self.reference = Reference(reference_dir / "methods" if reference_dir else None)
        self.calls: list[Call] = []
        self.socket_mode_url: str | None = None
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._failures: dict[str, list[Failure]] = {}
        self.delays: dict[str, float] = {}  # method -> seconds to wait before answering
        self.revoked_tokens: set[str] = set()  # answered invalid_auth (a mistyped or old token)
        self._serial = 0
        self._ts = 100
        self.users: dict[str, dict[str, Any]] = {}
        self.usergroups: dict[str, list[str]] = {}
        self.channels: dict[str, dict[str, Any]] = {}
        self._messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        self._files: dict[str, StoredFile] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.add_user(BOT_USER_ID, name="pinbot", is_bot=True)
        self.add_user(STAFF_USER_ID, name="frontdesk")

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeSlack:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-slack"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSlack is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        """The Web API base URL, for WebClient(base_url=...) and SLACK_API_URL."""
        return f"{self.root_url}/api/"

    # -- configuration ----------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        is_bot: bool = False,
        is_admin: bool = False,
        deleted: bool = False,
        tz: str = "America/New_York",
    ) -> dict[str, Any]:
        name = name or f"user-{user_id.lower()}"
        user = {
            "id": user_id,
            "team_id": TEAM_ID,
            "name": name,
            "deleted": deleted,
            "real_name": name.title(),
            **_tz_fields(tz),
            "profile": {"real_name": name.title(), "display_name": name, "team": TEAM_ID},
            "is_admin": is_admin,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": is_restricted or is_ultra_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": 1700000000,
        }
        with self._lock:
            self.users[user_id] = user
        return user

    def add_usergroup(self, usergroup_id: str, user_ids: list[str]) -> None:
        with self._lock:
            self.usergroups[usergroup_id] = list(user_ids)

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        is_private: bool = False,
        is_archived: bool = False,
        is_member: bool = True,
    ) -> dict[str, Any]:
        """Describe a channel. Any other well-formed C…/G…/D… id is a public channel the bot
        is a member of."""
        channel = _channel_object(channel_id, name, is_private, is_archived, is_member)
        with self._lock:
            self.channels[channel_id] = channel
        return channel

    def add_message(
        self,
        channel: str,
        *,
        text: str = "",
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        user: str = "U0HUMAN01",
    ) -> str:
        """Seed a message someone else posted (so the bot cannot edit it); returns its ts."""
        with self._lock:
            ts = self._next_ts()
            message = {"type": "message", "user": user, "text": text, "ts": ts, "team": TEAM_ID}
            message.update({"blocks": blocks} if blocks else {})
            message.update({"thread_ts": thread_ts} if thread_ts else {})
            self._messages[(channel, ts)] = message
        return ts

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: int | None = None,
        drop_connection: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next `times` calls to `method` (or UPLOAD) fail.

        Defaults to HTTP 429 `ratelimited` with Retry-After: 1 (as does `error="ratelimited"`).
        Another `error=` alone is an HTTP 200 `ok: false`; `status=500` a server error;
        `drop_connection` closes the socket unanswered (recorded with status 0).
        """
        if status is None:
            plain_error = error not in (None, "ratelimited") and retry_after is None
            status = 200 if plain_error else 429
        if error is None:
            error = {200: "fatal_error", 429: "ratelimited"}.get(status, "internal_error")
        if status == 429 and retry_after is None:
            retry_after = 1
        failure = Failure(status, error, retry_after, drop_connection, times)
        with self._lock:
            self._failures.setdefault(method, []).append(failure)

    def reset(self) -> None:
        """Forget recorded calls and pending failures (users, channels, messages stay)."""
        with self._lock:
            self.calls.clear()
            self._failures.clear()

    def response_url(self, kind: str = "commands") -> str:
        """A fresh response_url served by this fake (POSTs are recorded as RESPONSE_URL)."""
        with self._lock:
            serial = self._next_serial()
        return f"{self.root_url}/hooks/{kind}/{TEAM_ID}/{serial}/fake{serial:08x}"

    # -- inspection ---------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [call for call in self.calls if call.method == method]

    def last(self, method: str) -> Call:
        calls = self.calls_to(method)
        if not calls:
            raise AssertionError(f"no call to {method}; calls so far: {self._summary()}")
        return calls[-1]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5) -> list[Call]:
        """Block until `method` was called at least `count` times; return those calls."""
        with self._changed:
            done = self._changed.wait_for(lambda: len(self.calls_to(method)) >= count, timeout)
            if not done:
                got = len(self.calls_to(method))
                raise AssertionError(
                    f"timed out after {timeout}s waiting for {count} call(s) to {method} "
                    f"(got {got}); calls so far: {self._summary()}"
                )
            return self.calls_to(method)

    def messages(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages as they stand now (after chat.update / chat.delete), oldest first."""
        with self._lock:
            found = [
                dict(message, channel=key[0])
                for key, message in sorted(self._messages.items(), key=lambda kv: kv[0][1])
                if channel is None or key[0] == channel
            ]
        return found

    def message(self, channel: str, ts: str) -> dict[str, Any]:
        with self._lock:
            if (channel, ts) not in self._messages:
                raise AssertionError(f"no message {ts} in {channel}")
            return dict(self._messages[(channel, ts)])

    def view(self, view_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._views[view_id])

    def uploaded_files(self) -> list[UploadedFile]:
        """Files shared with files.completeUploadExternal, in upload order."""
        with self._lock:
            return [
                UploadedFile(
                    f.file_id,
                    f.filename,
                    f.title,
                    f.data or b"",
                    f.channel_id,
                    f.thread_ts,
                    f.initial_comment,
                    f.deleted,
                    f.alt_txt,
                )
                for f in self._files.values()
                if f.completed
            ]

    def _summary(self) -> str:
        with self._lock:
            return ", ".join(call.method for call in self.calls) or "none"

    # -- dispatch -------------------------------------------------------------------------

    def dispatch(self, path: str, query: str, headers: Mapping[str, str], body: bytes) -> Reply:
        if path.startswith("/api/"):
            return self._api(path.removeprefix("/api/"), query, headers, body)
        if path.startswith("/upload/v1/"):
            return self._upload(path.removeprefix("/upload/v1/"), headers, body)
        if path.startswith("/hooks/"):
            return self._response_url(path, body)
        return Reply.text("not found", status=404)

    def _record(self, method: str, args: dict[str, Any], token: str | None, reply: Reply) -> Reply:
        response = json.loads(reply.body) if reply.body.startswith(b"{") else {}
        call = Call(method, args, time.monotonic(), token, reply.status, response)
        with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return reply

    def _take_failure(self, method: str) -> Reply | None:
        with self._lock:
            queue = self._failures.get(method)
            if not queue:
                return None
            failure = queue[0]
            failure.times -= 1
            if failure.times <= 0:
                queue.pop(0)
        if failure.drop_connection:
            return Reply(status=0, drop=True)
        retry = failure.retry_after
        headers = {"Retry-After": str(retry)} if retry is not None else {}
        return Reply.json({"ok": False, "error": failure.error}, failure.status, **headers)

    def _api(self, method: str, query: str, headers: Mapping[str, str], body: bytes) -> Reply:
        args: dict[str, Any] = {}
        token = _bearer(headers)
        try:
            args, form_token = parse_args(headers.get("Content-Type", ""), query, body)
            token = token or form_token
            time.sleep(self.delays.get(method, 0))  # a slow Slack (the caller's claim lasts)
            reply = self._take_failure(method) or Reply.json(self._answer(method, args, token))
        except SlackError as error:
            reply = Reply.json(error.body())
        return self._record(method, args, token, reply)

    def _answer(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        handler = self._methods().get(method)
        if handler is None:
            raise SlackError("unknown_method")
        _check_token(method, token)
        if token in self.revoked_tokens:
            raise SlackError("invalid_auth")
        decode_json_args(args)
        missing = self.reference.missing(method, args)
        if missing:
            raise SlackError("invalid_arguments", *missing)
        with self._lock:
            return {"ok": True, **handler(args)}

    def _methods(self) -> dict[str, Any]:
        return {
            "api.test": lambda args: {"args": args},
            "auth.test": self._auth_test,
            "apps.connections.open": self._connections_open,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update_message,
            "chat.delete": self._delete_message,
            "chat.getPermalink": self._permalink,
            "conversations.info": self._conversation_info,
            "conversations.replies": self._replies,
            "views.open": self._open_view,
            "views.push": self._open_view,
            "views.update": self._update_view,
            "views.publish": self._publish_view,
            "users.info": self._user_info,
            "usergroups.users.list": self._usergroup_users,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
            "files.info": self._file_info,
            "files.delete": self._delete_file,
        }

    # -- ids ------------------------------------------------------------------------------

    def _next_serial(self) -> int:
        self._serial += 1
        return self._serial

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}0{self._next_serial():08d}"

    def _next_ts(self) -> str:
        """Monotonic message timestamps: 1700000000.000100, 1700000000.000200, …"""
        value, self._ts = self._ts, self._ts + 100
        return f"{1_700_000_000 + value // 1_000_000}.{value % 1_000_000:06d}"

    # -- auth, channels, users ------------------------------------------------------------

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": "Pinbot Test",
            "user": "pinbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if not self.socket_mode_url:
            raise SlackError("fatal_error", "[ERROR] FakeSlack.socket_mode_url is not set")
        return {"url": self.socket_mode_url}

    def _channel(self, channel_id: str) -> dict[str, Any]:
        if USER_ID.match(channel_id):  # posting to a user id opens the DM
            channel_id = "D" + channel_id[1:]
        if channel_id in self.channels:
            return self.channels[channel_id]
        if not CHANNEL_ID.match(channel_id):
            raise SlackError("channel_not_found")
        return _channel_object(channel_id, None, channel_id[0] == "G", False, True)

    def _postable_channel(self, channel_id: str) -> str:
        channel = self._channel(channel_id)
        if channel["is_archived"]:
            raise SlackError("is_archived")
        if not channel["is_member"]:
            raise SlackError("not_in_channel")
        return str(channel["id"])

    def _conversation_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"channel": self._channel(_require(args, "channel"))}

    def _user_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(_require(args, "user"))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        users = self.usergroups.get(_require(args, "usergroup"))
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}

    # -- messages -------------------------------------------------------------------------

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable_channel(_require(args, "channel"))
        _check_content(args)
        ts = self._next_ts()
        message = {
            "type": "message",
            "subtype": "bot_message",
            "text": args.get("text") or "",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "ts": ts,
        }
        for name in ("blocks", "attachments", "metadata", "thread_ts"):
            if not _absent(args.get(name)):
                message[name] = args[name]
        self._messages[(channel, ts)] = message
        return {"channel": channel, "ts": ts, "message": dict(message)}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        self._postable_channel(_require(args, "channel"))
        _require(args, "user")
        _check_content(args)
        return {"message_ts": self._next_ts()}

    def _find_message(
        self, args: dict[str, Any], ts_arg: str, refusal: str | None = None
    ) -> tuple[str, dict[str, Any]]:
        """(channel id, message) for args[channel] + args[ts_arg]; `refusal` if not the bot's."""
        channel = str(self._channel(_require(args, "channel"))["id"])
        message = self._messages.get((channel, _require(args, ts_arg)))
        if message is None:
            raise SlackError("message_not_found")
        if refusal and message.get("bot_id") != BOT_ID:
            raise SlackError(refusal)
        return channel, message

    def _update_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._find_message(args, "ts", "cant_update_message")
        _check_content(args)
        for name in ("text", "blocks", "attachments", "metadata"):
            if args.get(name) is not None:  # omitted fields keep their value, as in Slack
                message[name] = args[name]
        message["edited"] = {"user": BOT_USER_ID, "ts": self._next_ts()}
        reply = {"channel": channel, "ts": message["ts"], "text": message["text"]}
        return {**reply, "message": dict(message)}

    def _delete_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._find_message(args, "ts", "cant_delete_message")
        del self._messages[(channel, message["ts"])]
        return {"channel": channel, "ts": message["ts"]}

    def _permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, message = self._find_message(args, "message_ts")
        ts_digits = message["ts"].replace(".", "")
        link = f"https://{TEAM_DOMAIN}.slack.com/archives/{channel}/p{ts_digits}"
        if message.get("thread_ts") and message["thread_ts"] != message["ts"]:
            link += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return {"channel": channel, "permalink": link}

    def _replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, parent = self._find_message(args, "ts")
        thread = [
            dict(message)
            for (where, ts), message in sorted(self._messages.items(), key=lambda kv: kv[0][1])
            if where == channel and (ts == parent["ts"] or message.get("thread_ts") == parent["ts"])
        ]
        return {"messages": thread, "has_more": False}

    # -- views ----------------------------------------------------------------------------

    def _checked_view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", "[ERROR] must be an object [json-pointer:/view]")
        problems = view_problems(view)
        if problems:
            raise SlackError("invalid_arguments", *problems)
        return view

    def _use_trigger(self, args: dict[str, Any]) -> None:
        trigger = args.get("trigger_id")
        if trigger is None:
            return  # interactivity_pointer
        if not TRIGGER_ID.match(str(trigger)):
            raise SlackError("invalid_trigger_id")
        if trigger in self._used_triggers:
            raise SlackError("exchanged_trigger_id")
        self._used_triggers.add(trigger)

    def _store_view(self, spec: dict[str, Any], view_id: str, **extra: Any) -> dict[str, Any]:
        view = {
            "id": view_id,
            "team_id": TEAM_ID,
            "private_metadata": "",
            "callback_id": "",
            "external_id": "",
            "state": {"values": {}},
            "clear_on_close": False,
            "notify_on_close": False,
            "close": None,
            "submit": None,
            "previous_view_id": None,
            "root_view_id": view_id,
            "app_id": APP_ID,
            "app_installed_team_id": TEAM_ID,
            "bot_id": BOT_ID,
            **extra,
            **spec,
            "hash": f"{int(time.time())}.{self._next_serial()}",
        }
        self._views[view_id] = view
        return {"view": dict(view)}

    def _open_view(self, args: dict[str, Any]) -> dict[str, Any]:
        spec = self._checked_view(args)
        self._use_trigger(args)
        return self._store_view(spec, self._next_id("V"))

    def _update_view(self, args: dict[str, Any]) -> dict[str, Any]:
        spec = self._checked_view(args)
        view_id, external_id = args.get("view_id"), args.get("external_id")
        if bool(view_id) == bool(external_id):
            raise SlackError("invalid_arguments", "[ERROR] pass one of view_id, external_id")
        current = (
            self._views.get(view_id)
            if view_id
            else next(
                (v for v in self._views.values() if v.get("external_id") == external_id), None
            )
        )
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        keep = {k: current[k] for k in ("previous_view_id", "root_view_id")}
        return self._store_view(spec, current["id"], **keep)

    def _publish_view(self, args: dict[str, Any]) -> dict[str, Any]:
        spec = self._checked_view(args)
        if _require(args, "user_id") not in self.users:
            raise SlackError("user_not_found")
        return self._store_view(spec, self._next_id("V"))

    # -- files ----------------------------------------------------------------------------

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        filename = _require(args, "filename")
        try:
            length = int(_require(args, "length"))
        except ValueError as error:
            raise SlackError("invalid_arguments", "[ERROR] length must be an integer") from error
        if length <= 0:
            raise SlackError("invalid_arguments", "[ERROR] length must be positive")
        alt_txt = args.get("alt_txt")
        if alt_txt is not None and len(str(alt_txt)) > MAX_ALT_TXT:
            raise SlackError("alt_txt_too_large")
        file_id = self._next_id("F")
        self._files[file_id] = StoredFile(file_id, filename, length, alt_txt=alt_txt)
        return {"upload_url": f"{self.root_url}/upload/v1/{file_id}", "file_id": file_id}

    def _upload(self, file_id: str, headers: Mapping[str, str], body: bytes) -> Reply:
        reply = self._take_failure(UPLOAD) or self._store_upload(file_id, headers, body)
        return self._record(UPLOAD, {"file_id": file_id, "length": len(body)}, None, reply)

    def _store_upload(self, file_id: str, headers: Mapping[str, str], body: bytes) -> Reply:
        content_type = headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            fields = parse_multipart(content_type, body).values()
            body = next((v for v in fields if isinstance(v, bytes)), b"")
        with self._lock:
            stored = self._files.get(file_id)
            if stored is None or stored.completed:
                return Reply.text("file not found", status=404)
            if len(body) != stored.length:
                return Reply.text(f"length {len(body)} != declared {stored.length}", status=400)
            stored.data = body
        return Reply.text(f"OK - {len(body)}")

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        entries = args.get("files")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments", "[ERROR] files must be a non-empty array")
        stored = [self._pending_file(entry) for entry in entries]
        channel, thread_ts = args.get("channel_id") or args.get("channels"), args.get("thread_ts")
        if thread_ts and (not channel or "," in str(channel)):
            raise SlackError("invalid_arguments", "[ERROR] thread_ts needs exactly one channel")
        if channel:
            channel = self._postable_channel(str(channel))
        shared = []
        for entry, file in zip(entries, stored, strict=True):
            file.title = entry.get("title") or file.filename
            self._share(file, channel, thread_ts, args.get("initial_comment"))
            shared.append({"id": file.file_id, "title": file.title})
        return {"files": shared}

    def _pending_file(self, entry: Any) -> StoredFile:
        file_id = entry.get("id") if isinstance(entry, dict) else None
        file = self._files.get(str(file_id))
        if file is None or file.completed or file.data is None:
            raise SlackError("file_not_found")
        return file

    def _share(
        self, file: StoredFile, channel: str | None, thread_ts: str | None, comment: str | None
    ) -> None:
        file.completed = True
        file.channel_id, file.thread_ts, file.initial_comment = channel, thread_ts, comment
        if channel is None:
            return
        file.share_ts = self._next_ts()
        message = {
            "type": "message",
            "subtype": "file_share",
            "text": comment or "",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": file.share_ts,
            "files": [{"id": file.file_id, "name": file.filename, "title": file.title}],
        }
        message.update({"thread_ts": thread_ts} if thread_ts else {})
        self._messages[(channel, file.share_ts)] = message

    def _shared_file(self, args: dict[str, Any]) -> StoredFile:
        file = self._files.get(_require(args, "file"))
        if file is None or not file.completed:
            raise SlackError("file_not_found")
        if file.deleted:
            raise SlackError("file_deleted")
        return file

    def _file_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"file": _file_object(self._shared_file(args), self.root_url)}

    def _delete_file(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self._shared_file(args)
        file.deleted = True
        if file.channel_id and file.share_ts:
            self._messages.pop((file.channel_id, file.share_ts), None)
        return {}

    # -- response URLs --------------------------------------------------------------------

    def _response_url(self, path: str, body: bytes) -> Reply:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            reply = Reply.text("invalid_payload", status=400)
            return self._record(RESPONSE_URL, {"url": path}, None, reply)
        return self._record(RESPONSE_URL, {**payload, "url": path}, None, Reply.text("ok"))


# ---------------------------------------------------------------------------------------------
# helpers


def _bearer(headers: Mapping[str, str]) -> str | None:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    if not value.startswith("Bearer "):
        return None
    return value.removeprefix("Bearer ").strip() or None


def _check_token(method: str, token: str | None) -> None:
    if not token:
        raise SlackError("not_authed")
    if not token.startswith(("xoxb-", "xapp-")):
        raise SlackError("invalid_auth")
    if method != "auth.test" and token.startswith("xapp-") != (method in APP_TOKEN_METHODS):
        raise SlackError("not_allowed_token_type")


def _require(args: Mapping[str, Any], name: str) -> str:
    value = args.get(name)
    if _absent(value):
        raise SlackError("invalid_arguments", f"[ERROR] missing required field: {name}")
    return str(value)


def _check_content(args: Mapping[str, Any]) -> None:
    """chat.* content rules: some content; not both text and markdown_text; Block Kit limits."""
    if all(_absent(args.get(n)) for n in ("text", "blocks", "attachments", "markdown_text")):
        raise SlackError("no_text")
    if not _absent(args.get("markdown_text")) and not _absent(args.get("text")):
        raise SlackError("markdown_text_conflict")
    if len(str(args.get("text") or "")) > MAX_MESSAGE_TEXT:
        raise SlackError("msg_too_long")
    blocks = args.get("blocks")
    if not _absent(blocks):
        problems = message_block_problems(blocks)
        if problems:
            raise SlackError("invalid_blocks", *problems)


def _tz_fields(tz: str) -> dict[str, Any]:
    now = datetime.now(ZoneInfo(tz))
    offset = now.utcoffset()
    return {
        "tz": tz,
        "tz_label": now.tzname() or tz,
        "tz_offset": int(offset.total_seconds()) if offset else 0,
    }


def _channel_object(
    channel_id: str, name: str | None, is_private: bool, is_archived: bool, is_member: bool
) -> dict[str, Any]:
    is_im = channel_id.startswith("D")
    return {
        "id": channel_id,
        "name": name or f"channel-{channel_id.lower()}",
        "is_channel": not is_private and not is_im,
        "is_group": is_private and not is_im,
        "is_im": is_im,
        "is_mpim": False,
        "is_private": is_private or is_im,
        "is_archived": is_archived,
        "is_general": False,
        "is_member": is_member,
        "is_shared": False,
        "is_ext_shared": False,
        "is_org_shared": False,
        "context_team_id": TEAM_ID,
        "created": 1700000000,
        "creator": "U0HUMAN01",
    }


def _file_object(file: StoredFile, root_url: str) -> dict[str, Any]:
    ext = file.filename.rsplit(".", 1)[-1].lower() if "." in file.filename else "binary"
    mimetype = {
        "pdf": "application/pdf",
        "png": "image/png",
        "txt": "text/plain",
        "csv": "text/csv",
    }.get(ext, "application/octet-stream")
    shares: dict[str, Any] = {}
    if file.channel_id and file.share_ts:
        visibility = "public" if file.channel_id.startswith("C") else "private"
        share = {"ts": file.share_ts, **({"thread_ts": file.thread_ts} if file.thread_ts else {})}
        shares = {visibility: {file.channel_id: [share]}}
    return {
        "id": file.file_id,
        "created": 1700000000,
        "timestamp": 1700000000,
        "name": file.filename,
        "title": file.title,
        "mimetype": mimetype,
        "filetype": ext,
        "user": BOT_USER_ID,
        "size": file.length,
        "mode": "hosted",
        "is_external": False,
        "is_public": bool(shares.get("public")),
        "url_private": f"{root_url}/files-pri/{TEAM_ID}-{file.file_id}/{file.filename}",
        "permalink": f"https://{TEAM_DOMAIN}.slack.com/files/{BOT_USER_ID}/{file.file_id}",
        "channels": [file.channel_id] if shares.get("public") else [],
        "groups": [file.channel_id] if shares.get("private") else [],
        "shares": shares,
    }


@pytest.fixture(name="fake_slack")
def fake_slack_fixture() -> Iterator[FakeSlack]:
    """Fixture `fake_slack`: a started FakeSlack, stopped after the test. Import this function
    (under its own name) into a conftest or test module to make the fixture available."""
    with FakeSlack() as fake:
        yield fake
