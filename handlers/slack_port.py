"""bot.outbox.SlackPort over slack_sdk's WebClient: errors sorted into "try again" and
"trying again won't help" so the outbox knows whether to retry."""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.outbox import DeliveryError

# Slack errors that no retry will fix.
_PERMANENT = {"channel_not_found", "not_in_channel", "is_archived", "invalid_auth",
              "account_inactive", "token_revoked", "missing_scope", "file_uploads_disabled",
              "restricted_action", "invalid_arguments", "invalid_blocks", "msg_too_long"}
# Deleting a file that is already gone is success: the goal is that it's not in Slack.
_ALREADY_GONE = {"file_not_found", "file_deleted"}


def _delivery_error(error: Exception) -> DeliveryError:
    if isinstance(error, SlackApiError):
        code = str(error.response.get("error") or error.response.status_code)
        return DeliveryError(f"Slack said {code}", transient=code not in _PERMANENT)
    return DeliveryError(f"Slack unreachable ({type(error).__name__})", transient=True)


class WebClientPort:
    def __init__(self, client: WebClient) -> None:
        self.client = client

    def post_message(self, *, channel: str, thread_ts: str | None, text: str,
                     blocks: list[dict[str, Any]] | None = None) -> str:
        try:
            response = self.client.chat_postMessage(channel=channel, thread_ts=thread_ts,
                                                    text=text, blocks=blocks,
                                                    unfurl_links=False)
        except (SlackApiError, SlackRequestError, OSError) as error:
            raise _delivery_error(error) from error
        return str(response["ts"])

    def upload_file(self, *, channel: str, thread_ts: str | None, content: bytes,
                    filename: str, title: str) -> str:
        try:
            response = self.client.files_upload_v2(channel=channel, thread_ts=thread_ts,
                                                   content=content, filename=filename,
                                                   title=title)
        except (SlackApiError, SlackRequestError, OSError) as error:
            raise _delivery_error(error) from error
        return str(response["files"][0]["id"])

    def delete_file(self, file_id: str) -> None:
        try:
            self.client.files_delete(file=file_id)
        except SlackApiError as error:
            if error.response.get("error") not in _ALREADY_GONE:
                raise _delivery_error(error) from error
        except (SlackRequestError, OSError) as error:
            raise _delivery_error(error) from error
