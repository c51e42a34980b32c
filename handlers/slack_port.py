"""bot.delivery.outbox.SlackPort over slack_sdk's WebClient: errors sorted into "try again" and
"trying again won't help" so the outbox knows whether to retry.

The port's client keeps the app client's retry handlers for 500/503 and dropped connections
(short waits) but not the one for 429: a rate-limited call becomes a DeliveryError carrying
Retry-After, and the outbox moves the work's next attempt instead of sleeping in its thread.
The file upload is done in its three steps here, not with files_upload_v2, so a failure names
the step that failed (the family thread is told) and the letters can be recorded between
sending the file and sharing it."""

from __future__ import annotations

from typing import Any
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from bot.delivery.performers import DeliveryError

# Slack errors that no retry will fix.
_PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "file_uploads_disabled",
    "restricted_action",
    "invalid_arguments",
    "invalid_blocks",
    "msg_too_long",
}
# Deleting a file that is already gone is success: the goal is that it's not in Slack.
_ALREADY_GONE = {"file_not_found", "file_deleted"}


UPLOAD_URL_STEP = "files.getUploadURLExternal"
UPLOAD_POST_STEP = "sending the file"
UPLOAD_COMPLETE_STEP = "files.completeUploadExternal"


def _delivery_error(error: Exception, step: str | None = None) -> DeliveryError:
    where = f"{step}: " if step else ""
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error") or error.response.status_code)
        return DeliveryError(
            f"{where}Slack said {code}",
            transient=code not in _PERMANENT,
            retry_after=_retry_after(error),
            code=code,
        )
    if isinstance(error, HTTPError):  # the upload URL answered with an HTTP error status
        return DeliveryError(f"{where}Slack answered HTTP {error.code}", transient=True)
    return DeliveryError(f"{where}Slack unreachable ({type(error).__name__})", transient=True)


def _retry_after(error: SlackApiError) -> float | None:
    if error.response.status_code != 429:
        return None
    headers = {k.lower(): v for k, v in (error.response.headers or {}).items()}
    raw = headers.get("retry-after")
    value = str(raw[0] if isinstance(raw, list) and raw else raw)
    try:
        return max(float(value), 1.0)
    except (TypeError, ValueError):
        return 60.0  # a 429 without a readable Retry-After: a minute, as Slack's docs suggest


def _without_rate_limit_waits(client: WebClient) -> WebClient:
    """A copy of `client` that raises on 429 instead of sleeping through Retry-After."""
    return WebClient(
        token=client.token,
        base_url=client.base_url,
        timeout=client.timeout,
        ssl=client.ssl,
        proxy=client.proxy,
        headers=client.headers,
        retry_handlers=[
            handler
            for handler in client.retry_handlers
            if not isinstance(handler, RateLimitErrorRetryHandler)
        ],
    )


class WebClientPort:
    def __init__(self, client: WebClient) -> None:
        self.client = _without_rate_limit_waits(client)

    def post_message(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        text: str,
        blocks: list[dict[str, Any]] | None = None,
    ) -> str:
        try:
            response = self.client.chat_postMessage(
                channel=channel, thread_ts=thread_ts, text=text, blocks=blocks, unfurl_links=False
            )
        except (SlackApiError, SlackRequestError, OSError) as error:
            raise _delivery_error(error) from error
        return str(response["ts"])

    def upload_file(
        self,
        *,
        channel: str,
        thread_ts: str | None,
        content: bytes,
        filename: str,
        title: str,
        alt_txt: str | None = None,
        initial_comment: str | None = None,
    ) -> str:
        """Start and complete an upload in one go. A retry starts over with a new upload URL;
        a file never completed is never shared, so nothing shows twice. `alt_txt` describes an
        image for screen readers; `initial_comment` is the message shown with the file."""
        file_id = self.start_upload(content=content, filename=filename, alt_txt=alt_txt)
        return self.complete_upload(
            file_id=file_id,
            channel=channel,
            thread_ts=thread_ts,
            title=title,
            initial_comment=initial_comment,
        )

    def start_upload(self, *, content: bytes, filename: str, alt_txt: str | None = None) -> str:
        """files.getUploadURLExternal, then POST the bytes: a file that is not shared yet."""
        step = UPLOAD_URL_STEP
        try:
            ticket = self.client.files_getUploadURLExternal(
                filename=filename, length=len(content), alt_txt=alt_txt
            )
            step = UPLOAD_POST_STEP
            self._post_bytes(str(ticket["upload_url"]), content)
        except (SlackApiError, SlackRequestError, OSError) as error:
            raise _delivery_error(error, step) from error
        return str(ticket["file_id"])

    def complete_upload(
        self,
        *,
        file_id: str,
        channel: str,
        thread_ts: str | None,
        title: str,
        initial_comment: str | None = None,
    ) -> str:
        """files.completeUploadExternal: share a started upload into the thread."""
        try:
            done = self.client.files_completeUploadExternal(
                files=[{"id": file_id, "title": title}],
                channel_id=channel,
                thread_ts=thread_ts,
                initial_comment=initial_comment,
            )
        except (SlackApiError, SlackRequestError, OSError) as error:
            raise _delivery_error(error, UPLOAD_COMPLETE_STEP) from error
        return str(done["files"][0]["id"])

    def _post_bytes(self, url: str, content: bytes) -> None:
        # As slack_sdk does it: raw bytes, the client's TLS context and timeout. Proxies come
        # from the environment (urllib reads HTTPS_PROXY) as they do for the client.
        request = Request(url, data=content, method="POST")
        with urlopen(request, timeout=self.client.timeout, context=self.client.ssl) as reply:
            reply.read()

    def delete_file(self, file_id: str) -> None:
        try:
            self.client.files_delete(file=file_id)
        except SlackApiError as error:
            if error.response.get("error") not in _ALREADY_GONE:
                raise _delivery_error(error) from error
        except (SlackRequestError, OSError) as error:
            raise _delivery_error(error) from error
