"""The Slack test harness refuses what Slack refuses and answers like Slack."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from slack_bolt import Ack, App, Respond
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from tests.support.fake_slack import (
    BOT_USER_ID,
    RESPONSE_URL,
    STAFF_USER_ID,
    UPLOAD,
    FakeSlack,
    fake_slack_fixture,
    require_reference,
)
from tests.support.fake_socket_mode import FakeSocketMode, fake_socket_mode_fixture
from tests.support.slack_requests import (
    SlackSender,
    block_actions_payload,
    checkboxes_value,
    command_payload,
    new_trigger_id,
    plain_text_value,
    serve_wsgi,
    sign,
    view_submission_payload,
)

SECRET = "test-signing-secret"
FIXTURES = (fake_slack_fixture, fake_socket_mode_fixture)  # imported for their fixtures
CHANNEL = "C0FRONTDESK"


def section(text: str = "hello") -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def modal(title: str = "Issue PINs", blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title},
        "blocks": [section()] if blocks is None else blocks,
    }


def checkboxes(count: int) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": f"child {i}"}, "value": str(i)}
        for i in range(count)
    ]
    label = {"type": "plain_text", "text": "Kids"}
    element = {"type": "checkboxes", "action_id": "pick", "options": options}
    return {"type": "input", "block_id": "children", "label": label, "element": element}


@pytest.fixture
def client(fake_slack: FakeSlack) -> WebClient:
    return WebClient(token="xoxb-test", base_url=fake_slack.url)


def slack_error(call: Any, *args: Any, **kwargs: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call(*args, **kwargs)
    return caught.value


# --- refusing what Slack refuses ---------------------------------------------------------------


def test_a_token_is_required(fake_slack: FakeSlack) -> None:
    anonymous = WebClient(base_url=fake_slack.url)
    assert slack_error(anonymous.auth_test).response["error"] == "not_authed"
    bogus = WebClient(token="not-a-token", base_url=fake_slack.url)
    assert slack_error(bogus.auth_test).response["error"] == "invalid_auth"
    app_level = WebClient(token="xapp-1-test", base_url=fake_slack.url)
    error = slack_error(app_level.chat_postMessage, channel=CHANNEL, text="hi")
    assert error.response["error"] == "not_allowed_token_type"


def test_unknown_methods_are_refused(client: WebClient) -> None:
    assert slack_error(client.api_call, "chat.postMesage").response["error"] == "unknown_method"


def test_missing_required_arguments_are_refused(client: WebClient, fake_slack: FakeSlack) -> None:
    require_reference()
    error = slack_error(client.api_call, "chat.postMessage", json={"text": "no channel"})
    assert error.response["error"] == "invalid_arguments"
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] missing required field: channel"
    ]
    error = slack_error(client.api_call, "files.getUploadURLExternal", params={"filename": "a"})
    messages = error.response["response_metadata"]["messages"]
    assert "[ERROR] missing required field: length" in messages
    assert not fake_slack.last("chat.postMessage").ok


def test_a_message_needs_some_content(client: WebClient) -> None:
    with pytest.warns(UserWarning, match="text"):  # slack_sdk's own advice
        error = slack_error(client.chat_postMessage, channel=CHANNEL)
    assert error.response["error"] == "no_text"
    with pytest.warns(UserWarning, match="text"):  # Slack itself accepts blocks without text
        assert client.chat_postMessage(channel=CHANNEL, blocks=[section()])["ok"]


def test_block_kit_limits_on_messages(client: WebClient) -> None:
    assert client.chat_postMessage(channel=CHANNEL, text="ok", blocks=[section()] * 50)["ok"]
    error = slack_error(client.chat_postMessage, channel=CHANNEL, text="x", blocks=[section()] * 51)
    assert error.response["error"] == "invalid_blocks"
    assert "no more than 50 items allowed [json-pointer:/blocks]" in str(error.response)
    error = slack_error(
        client.chat_postMessage, channel=CHANNEL, text="x", blocks=[section("x" * 3001)]
    )
    assert error.response["error"] == "invalid_blocks"
    assert "[json-pointer:/blocks/0/text/text]" in str(error.response)
    error = slack_error(client.chat_postMessage, channel=CHANNEL, text="x" * 40_001)
    assert error.response["error"] == "msg_too_long"


def test_block_kit_limits_on_views(client: WebClient) -> None:
    assert client.views_open(trigger_id=new_trigger_id(), view=modal(blocks=[section()] * 100))
    cases = {
        "/view/blocks": modal(blocks=[section()] * 101),
        "/view/title/text": modal(title="x" * 25),
        "/view/blocks/0/element/options": {
            **modal(blocks=[checkboxes(11)]),
            "submit": {"type": "plain_text", "text": "Go"},
        },
        "/view/submit": modal(blocks=[checkboxes(3)]),  # an input needs a submit button
    }
    for pointer, view in cases.items():
        error = slack_error(client.views_open, trigger_id=new_trigger_id(), view=view)
        assert error.response["error"] == "invalid_arguments"
        assert f"[json-pointer:{pointer}]" in str(error.response["response_metadata"]), pointer


def test_trigger_ids_are_single_use(client: WebClient) -> None:
    trigger = new_trigger_id()
    client.views_open(trigger_id=trigger, view=modal())
    error = slack_error(client.views_open, trigger_id=trigger, view=modal())
    assert error.response["error"] == "exchanged_trigger_id"
    error = slack_error(client.views_open, trigger_id="made-up", view=modal())
    assert error.response["error"] == "invalid_trigger_id"


# --- answering like Slack ------------------------------------------------------------------------


def test_messages_get_monotonic_ts_and_are_recorded(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    first = client.chat_postMessage(channel=CHANNEL, text="card", blocks=[section()])
    reply = client.chat_postMessage(channel=CHANNEL, text="reply", thread_ts=first["ts"])
    assert first["ts"] == "1700000000.000100" and reply["ts"] == "1700000000.000200"
    assert reply["message"]["thread_ts"] == first["ts"] and reply["channel"] == CHANNEL
    call = fake_slack.last("chat.postMessage")
    assert call.ok and call.args["thread_ts"] == first["ts"] and call.response["ts"] == reply["ts"]
    assert fake_slack.calls_to("chat.postMessage")[0].args["blocks"] == [section()]


def test_form_encoded_json_arguments_are_decoded(client: WebClient, fake_slack: FakeSlack) -> None:
    client.api_call(
        "chat.postMessage",
        params={"channel": CHANNEL, "text": "t", "blocks": '[{"type": "divider"}]'},
    )
    assert fake_slack.last("chat.postMessage").args["blocks"] == [{"type": "divider"}]


def test_update_delete_and_permalink(client: WebClient, fake_slack: FakeSlack) -> None:
    posted = client.chat_postMessage(channel=CHANNEL, text="request", blocks=[section()])
    updated = client.chat_update(channel=CHANNEL, ts=posted["ts"], text="approved")
    assert updated["message"]["text"] == "approved"
    assert fake_slack.message(CHANNEL, posted["ts"])["blocks"] == [section()]  # kept
    link = client.chat_getPermalink(channel=CHANNEL, message_ts=posted["ts"])["permalink"]
    assert link.endswith(f"/archives/{CHANNEL}/p1700000000000100")
    theirs = fake_slack.add_message(CHANNEL, text="a human wrote this")
    error = slack_error(client.chat_update, channel=CHANNEL, ts=theirs, text="edit")
    assert error.response["error"] == "cant_update_message"
    error = slack_error(client.chat_update, channel=CHANNEL, ts="1.000001", text="edit")
    assert error.response["error"] == "message_not_found"
    client.chat_delete(channel=CHANNEL, ts=posted["ts"])
    assert [m["ts"] for m in fake_slack.messages(CHANNEL)] == [theirs]
    assert client.chat_postEphemeral(channel=CHANNEL, user="U1", text="psst")["message_ts"]


def test_users_groups_and_channels(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.add_user("U0GUEST01", is_restricted=True, tz="America/Chicago")
    fake_slack.add_usergroup("S0SUPERS1", ["U0SUPER01"])
    fake_slack.add_channel("G0PRIVATE", name="staff", is_private=True)
    guest = client.users_info(user="U0GUEST01")["user"]
    assert guest["is_restricted"] and not guest["is_ultra_restricted"]
    assert guest["tz"] == "America/Chicago"
    assert client.users_info(user=BOT_USER_ID)["user"]["is_bot"]
    assert not client.users_info(user=STAFF_USER_ID)["user"]["is_restricted"]
    assert slack_error(client.users_info, user="U0NOBODY1").response["error"] == "user_not_found"
    assert client.usergroups_users_list(usergroup="S0SUPERS1")["users"] == ["U0SUPER01"]
    error = slack_error(client.usergroups_users_list, usergroup="S0NOPE")
    assert error.response["error"] == "no_such_subteam"
    assert client.conversations_info(channel="G0PRIVATE")["channel"]["is_private"]
    assert client.conversations_info(channel=CHANNEL)["channel"]["is_channel"]
    error = slack_error(client.conversations_info, channel="#general")
    assert error.response["error"] == "channel_not_found"


def test_views_have_ids_and_hashes(client: WebClient, fake_slack: FakeSlack) -> None:
    opened = client.views_open(trigger_id=new_trigger_id(), view=modal())["view"]
    assert opened["id"].startswith("V") and opened["state"] == {"values": {}}
    updated = client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("Done"))
    assert updated["view"]["id"] == opened["id"] and updated["view"]["title"]["text"] == "Done"
    error = slack_error(
        client.views_update, view_id=opened["id"], hash=opened["hash"], view=modal()
    )
    assert error.response["error"] == "hash_conflict"
    home = {"type": "home", "blocks": [section()]}
    assert client.views_publish(user_id=BOT_USER_ID, view=home)["view"]["type"] == "home"


# --- files ---------------------------------------------------------------------------------------


def test_files_upload_v2_end_to_end(client: WebClient, fake_slack: FakeSlack) -> None:
    card = client.chat_postMessage(channel=CHANNEL, text="family card")
    pdf = b"%PDF-1.7 letters"
    result = client.files_upload_v2(
        channel=CHANNEL, thread_ts=card["ts"], content=pdf, filename="pins.pdf", title="PIN letters"
    )
    [uploaded] = fake_slack.uploaded_files()
    assert result["file"]["id"] == uploaded.file_id
    assert (uploaded.data, uploaded.channel_id, uploaded.thread_ts) == (pdf, CHANNEL, card["ts"])
    assert (uploaded.filename, uploaded.title) == ("pins.pdf", "PIN letters")
    assert not uploaded.deleted
    assert [c.method for c in fake_slack.calls[1:]] == [
        "files.getUploadURLExternal",
        UPLOAD,
        "files.completeUploadExternal",
    ]
    info = client.files_info(file=uploaded.file_id)["file"]
    assert info["shares"]["public"][CHANNEL][0]["thread_ts"] == card["ts"]
    client.files_delete(file=uploaded.file_id)
    assert fake_slack.uploaded_files()[0].deleted
    error = slack_error(client.files_delete, file=uploaded.file_id)
    assert error.response["error"] == "file_deleted"
    assert slack_error(client.files_info, file="F0NOPE").response["error"] == "file_not_found"


def test_completing_a_file_that_was_not_uploaded_fails(client: WebClient) -> None:
    url = client.files_getUploadURLExternal(filename="x.pdf", length=10)
    error = slack_error(
        client.files_completeUploadExternal, files=[{"id": url["file_id"]}], channel_id=CHANNEL
    )
    assert error.response["error"] == "file_not_found"


def test_an_upload_must_match_its_declared_length(client: WebClient, fake_slack: FakeSlack) -> None:
    from tests.support.slack_requests import http_request

    url = client.files_getUploadURLExternal(filename="x.pdf", length=10)["upload_url"]
    assert http_request(url, b"short", method="POST").status == 400
    assert http_request(url, b"0123456789", method="POST").text == "OK - 10"


# --- fault injection -----------------------------------------------------------------------------


def test_rate_limit_then_success_with_the_retry_handler(fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", status=429, retry_after=1)
    client = WebClient(
        token="xoxb-test",
        base_url=fake_slack.url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]
    first, second = fake_slack.calls_to("chat.postMessage")
    assert (first.status, first.response["error"], second.ok) == (429, "ratelimited", True)
    assert second.at - first.at >= 1


def test_failures_without_a_retry_handler_surface(client: WebClient, fake_slack: FakeSlack) -> None:
    fake_slack.fail_next("chat.postMessage", retry_after=30)
    error = slack_error(client.chat_postMessage, channel=CHANNEL, text="hi")
    assert error.response.status_code == 429 and error.response.headers["Retry-After"] == "30"
    fake_slack.fail_next("chat.update", status=500)
    error = slack_error(client.chat_update, channel=CHANNEL, ts="1.1", text="x")
    assert error.response.status_code == 500
    fake_slack.fail_next("users.info", error="fatal_error", times=2)
    assert slack_error(client.users_info, user=BOT_USER_ID).response["error"] == "fatal_error"
    assert slack_error(client.users_info, user=BOT_USER_ID).response["error"] == "fatal_error"
    assert client.users_info(user=BOT_USER_ID)["ok"]


def test_a_dropped_connection_is_retried_by_the_default_handler(
    client: WebClient, fake_slack: FakeSlack
) -> None:
    fake_slack.fail_next("chat.postMessage", drop_connection=True)
    assert client.chat_postMessage(channel=CHANNEL, text="hi")["ok"]
    assert [c.ok for c in fake_slack.calls_to("chat.postMessage")] == [False, True]


def test_wait_for_sees_calls_from_other_threads(client: WebClient, fake_slack: FakeSlack) -> None:
    post = {"channel": CHANNEL, "text": "x"}
    thread = threading.Thread(target=client.chat_postMessage, kwargs=post)
    thread.start()
    assert fake_slack.wait_for("chat.postMessage")[0].args["text"] == "x"
    thread.join()
    with pytest.raises(AssertionError, match=r"chat\.postMessage"):
        fake_slack.wait_for("chat.postMessage", count=2, timeout=0.1)


# --- signed requests into a real Bolt app --------------------------------------------------------


def test_sign_matches_slack_sdk_signature_verifier() -> None:
    body = b"command=%2Ffamily&text=smith"
    headers = sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid(
        body, headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    assert not verifier.is_valid(
        body + b"x", headers["X-Slack-Request-Timestamp"], headers["X-Slack-Signature"]
    )
    stale = sign(body, SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid(
        body, stale["X-Slack-Request-Timestamp"], stale["X-Slack-Signature"]
    )


def tiny_app(fake_slack: FakeSlack, executor: ThreadPoolExecutor) -> App:
    client = WebClient(token="xoxb-test", base_url=fake_slack.url)
    app = App(signing_secret=SECRET, client=client, listener_executor=executor)

    @app.command("/family")
    def family(ack: Ack, command: dict[str, Any], client: WebClient) -> None:
        ack()
        client.chat_postMessage(channel=command["channel_id"], text=f"card for {command['text']}")

    @app.action("open_family")
    def open_family(ack: Ack, body: dict[str, Any], respond: Respond, client: WebClient) -> None:
        ack()
        respond(text=f"opened {body['actions'][0]['value']}")
        client.chat_postMessage(
            channel=body["channel"]["id"],
            thread_ts=body["message"]["ts"],
            text=f"by {body['user']['id']}",
        )

    @app.view("issue_pins")
    def issue_pins(ack: Ack, view: dict[str, Any]) -> None:
        picked = view["state"]["values"]["children"]["pick"]["selected_options"]
        if not picked:
            ack(response_action="errors", errors={"children": "Pick a child"})
            return
        ack()

    return app


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    """Bolt's listener threads, shut down after the test."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        yield pool


@pytest.fixture
def bolt_sender(fake_slack: FakeSlack, executor: ThreadPoolExecutor) -> Iterator[SlackSender]:
    with serve_wsgi(SlackRequestHandler(tiny_app(fake_slack, executor))) as base_url:
        yield SlackSender(base_url, SECRET, response_urls=fake_slack.response_url)


def test_a_signed_slash_command_reaches_the_app(
    bolt_sender: SlackSender, fake_slack: FakeSlack
) -> None:
    assert bolt_sender.command("/family", "smith").status == 200
    assert fake_slack.wait_for("chat.postMessage")[0].args["text"] == "card for smith"
    assert bolt_sender.command("/family", "x", timestamp=int(time.time()) - 600).status == 401
    assert bolt_sender.raw(b"command=%2Ffamily", signed=False).status == 401


def test_a_block_action_payload_reaches_the_app(
    bolt_sender: SlackSender, fake_slack: FakeSlack
) -> None:
    payload = block_actions_payload(
        "open_family",
        "F-1",
        message_ts="1700000000.000100",
        response_url=fake_slack.response_url("actions"),
    )
    assert bolt_sender.block_action(payload).status == 200
    assert fake_slack.wait_for(RESPONSE_URL)[0].args["text"] == "opened F-1"
    posted = fake_slack.wait_for("chat.postMessage")[0].args
    assert posted["thread_ts"] == "1700000000.000100" and posted["text"] == "by U0STAFF01"


def test_a_view_submission_payload_reaches_the_app(bolt_sender: SlackSender) -> None:
    empty = {"children": {"pick": checkboxes_value([])}, "note": {"n": plain_text_value(None)}}
    reply = bolt_sender.view_submission(view_submission_payload("issue_pins", empty))
    assert reply.json() == {"response_action": "errors", "errors": {"children": "Pick a child"}}
    picked = {"children": {"pick": checkboxes_value(["P1"])}}
    reply = bolt_sender.view_submission(view_submission_payload("issue_pins", picked))
    assert (reply.status, reply.body) == (200, b"")


# --- Socket Mode ---------------------------------------------------------------------------------


def test_socket_mode_round_trip(fake_slack: FakeSlack, fake_socket_mode: FakeSocketMode) -> None:
    before = set(threading.enumerate())
    with ThreadPoolExecutor(max_workers=2) as executor:
        handler = SocketModeHandler(tiny_app(fake_slack, executor), app_token="xapp-1-test")
        try:
            handler.connect()
            fake_socket_mode.wait_for_connection()
            payload = command_payload("/family", "lee")
            envelope_id = fake_socket_mode.send_envelope("slash_commands", payload)
            assert fake_socket_mode.wait_for_ack(envelope_id) == {"envelope_id": envelope_id}
            assert fake_slack.wait_for("chat.postMessage")[0].args["text"] == "card for lee"
            assert fake_slack.last("apps.connections.open").token == "xapp-1-test"
        finally:
            handler.close()
    assert [t.name for t in threading.enumerate() if t not in before] == []
