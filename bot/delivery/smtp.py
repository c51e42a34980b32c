"""Sending email over SMTP: one place that connects, negotiates TLS with a verifying context
and logs in. Nothing here logs; errors name SMTP codes and exception types, never an address,
a server reply (which often quotes the address) or any content."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from bot.config import SmtpSettings

IMPLICIT_TLS_PORT = 465  # "SMTPS": TLS from the first byte, where STARTTLS does not apply


class MailError(Exception):
    """Delivery failed. `transient` means a later retry may succeed (connection trouble, 4xx)."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


def send_email(smtp: SmtpSettings, message: EmailMessage, *, timeout: float = 20) -> None:
    """Deliver `message`; raises MailError, with `transient` telling whether to retry."""
    if not smtp.host:
        raise MailError("SMTP_HOST is not set", transient=False)
    try:
        with _connect(smtp, timeout) as client:
            if smtp.starttls and smtp.port != IMPLICIT_TLS_PORT:
                client.starttls(context=ssl.create_default_context())
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            refused = client.send_message(message)
    except smtplib.SMTPRecipientsRefused as error:
        codes = [code for code, _ in error.recipients.values()]
        raise _refused(codes) from None
    except smtplib.SMTPResponseException as error:
        raise MailError(
            f"SMTP server answered {error.smtp_code} ({type(error).__name__})",
            transient=_is_transient(error.smtp_code),
            code=error.smtp_code,
        ) from None
    except smtplib.SMTPServerDisconnected as error:
        # smtplib reports a reply that never came (our timeout) as a disconnect: say which.
        what = "did not answer in time" if "timed out" in str(error) else "closed the connection"
        raise MailError(f"SMTP server {what}", transient=True) from None
    except smtplib.SMTPNotSupportedError as error:
        # e.g. STARTTLS or AUTH not offered: a configuration problem, not worth retrying.
        raise MailError(f"SMTP server does not support {_what(error)}", transient=False) from None
    except smtplib.SMTPException as error:
        raise MailError(f"SMTP error ({type(error).__name__})", transient=False) from None
    except ssl.SSLCertVerificationError:
        raise MailError("SMTP server's TLS certificate was not trusted", transient=False) from None
    except OSError as error:  # refused, unreachable, timed out, TLS handshake cut off
        raise MailError(
            f"could not reach the SMTP server ({type(error).__name__})", transient=True
        ) from None
    if refused:  # some recipients accepted, some not: only possible with several recipients
        raise _refused([code for code, _ in refused.values()])


def _connect(smtp: SmtpSettings, timeout: float) -> smtplib.SMTP:
    host = smtp.host or ""
    if smtp.port == IMPLICIT_TLS_PORT:
        return smtplib.SMTP_SSL(
            host, smtp.port, timeout=timeout, context=ssl.create_default_context()
        )
    return smtplib.SMTP(host, smtp.port, timeout=timeout)


def _refused(codes: list[int]) -> MailError:
    transient = bool(codes) and all(_is_transient(code) for code in codes)
    code = codes[0] if codes else None
    return MailError(f"SMTP server refused the recipient ({code})", transient=transient, code=code)


def _is_transient(code: int) -> bool:
    # RFC 5321: 4yz is a temporary failure; 5yz is permanent (and anything odd is not retried).
    return 400 <= code < 500


def _what(error: smtplib.SMTPNotSupportedError) -> str:
    text = str(error).lower()
    return "STARTTLS" if "starttls" in text else "AUTH" if "auth" in text else "a needed feature"
