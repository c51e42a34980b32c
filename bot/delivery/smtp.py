"""Sending email over SMTP: one place that connects, negotiates TLS with a verifying context
and logs in — used by delivery (`send_email`) and by `pinbot check` (`check_sender`), so the
check passes exactly where email would go out.

Nothing here logs; errors are one plain sentence naming the setting to fix, with SMTP codes and
exception types, never an address, a server reply (which often quotes the address) or any
content.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from email.utils import parseaddr

from bot.config import SmtpSettings

IMPLICIT_TLS_PORT = 465  # "SMTPS": TLS from the first byte, where STARTTLS does not apply
PRIVATE_CA_HINT = "if it is signed by a private CA, set SSL_CERT_FILE to that CA's certificate"
PORT_HINT = "check SMTP_PORT (465 is TLS from the first byte; 587 and 25 use STARTTLS)"


class MailError(Exception):
    """Delivery failed. `transient` means a later retry may succeed (connection trouble, 4xx)."""

    def __init__(self, message: str, *, transient: bool, code: int | None = None) -> None:
        super().__init__(message)
        self.transient = transient
        self.code = code


def tls_context() -> ssl.SSLContext:
    """A verifying context (certificate and host name) over the system's trust store, or the
    file in SSL_CERT_FILE / the directory in SSL_CERT_DIR when set (OpenSSL reads them)."""
    return ssl.create_default_context()


def implicit_tls(smtp: SmtpSettings) -> bool:
    return smtp.port == IMPLICIT_TLS_PORT


def describe_security(smtp: SmtpSettings) -> str:
    """How the connection is secured, as `pinbot check` reports it."""
    if implicit_tls(smtp):
        return "TLS from the first byte on port 465, certificate verified"
    if smtp.starttls:
        return "STARTTLS, certificate verified"
    return "no TLS: SMTP_STARTTLS=false"


@contextmanager
def session(smtp: SmtpSettings, *, timeout: float) -> Iterator[smtplib.SMTP]:
    """An SMTP connection ready for MAIL FROM: connected (TLS from the first byte on 465),
    EHLO, STARTTLS when SMTP_STARTTLS (verifying), AUTH when SMTP_USERNAME is set. Every
    failure, here or in the caller's block, is raised as a MailError."""
    if not smtp.host:
        raise MailError("SMTP_HOST is not set", transient=False)
    try:
        with _connect(smtp, timeout) as client:
            client.ehlo()
            if smtp.starttls and not implicit_tls(smtp):
                client.starttls(context=tls_context())
                client.ehlo()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            yield client
    except MailError:
        raise
    except Exception as error:
        raise _explain(error, smtp) from None


def send_email(smtp: SmtpSettings, message: EmailMessage, *, timeout: float = 20) -> None:
    """Deliver `message`; raises MailError, with `transient` telling whether to retry."""
    with session(smtp, timeout=timeout) as client:
        refused = client.send_message(message)
    if refused:  # some recipients accepted, some not: only possible with several recipients
        raise _refused([code for code, _ in refused.values()])


def check_sender(smtp: SmtpSettings, *, timeout: float = 10) -> None:
    """What delivery does up to the message, without one: connect, TLS, AUTH, then
    `MAIL FROM:<MAIL_FROM>` and `RSET`. Raises MailError naming the setting to fix."""
    address = parseaddr(smtp.mail_from or "")[1]
    if not address:
        raise MailError("MAIL_FROM is not set", transient=False)
    with session(smtp, timeout=timeout) as client:
        code, reply = client.mail(address)
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, address)
        client.rset()


def _connect(smtp: SmtpSettings, timeout: float) -> smtplib.SMTP:
    host = smtp.host or ""
    if implicit_tls(smtp):
        return smtplib.SMTP_SSL(host, smtp.port, timeout=timeout, context=tls_context())
    return smtplib.SMTP(host, smtp.port, timeout=timeout)


def _explain(error: Exception, smtp: SmtpSettings) -> MailError:
    """One plain sentence for what went wrong, naming the setting to fix."""
    where = f"{smtp.host}:{smtp.port}"
    match error:
        case smtplib.SMTPRecipientsRefused():
            return _refused([code for code, _ in error.recipients.values()])
        case smtplib.SMTPResponseException() if error.smtp_code == 530:
            return _needs(error, smtp)
        case smtplib.SMTPSenderRefused():
            return _sender_refused(error.smtp_code)
        case smtplib.SMTPAuthenticationError():
            return MailError(
                f"the SMTP server refused the login ({error.smtp_code}): "
                "check SMTP_USERNAME and SMTP_PASSWORD",
                transient=_is_transient(error.smtp_code),
                code=error.smtp_code,
            )
        case smtplib.SMTPResponseException():
            return MailError(
                f"SMTP server answered {error.smtp_code} ({type(error).__name__})",
                transient=_is_transient(error.smtp_code),
                code=error.smtp_code,
            )
        case smtplib.SMTPNotSupportedError() if "starttls" in str(error).lower():
            return MailError(
                f"the SMTP server does not offer STARTTLS (SMTP_STARTTLS is true): {PORT_HINT}",
                transient=False,
            )
        case smtplib.SMTPNotSupportedError() if "auth" in str(error).lower():
            return MailError(
                "the SMTP server offers no login (AUTH) on this connection although "
                "SMTP_USERNAME is set: set SMTP_STARTTLS=true if it offers AUTH only after "
                "TLS, or unset SMTP_USERNAME",
                transient=False,
            )
        case smtplib.SMTPNotSupportedError():
            return MailError("SMTP server does not support a needed feature", transient=False)
        case smtplib.SMTPServerDisconnected() if "timed out" in str(error):
            # smtplib reports a reply that never came (our timeout) as a disconnect.
            return MailError(
                f"SMTP server at {where} did not answer in time: {PORT_HINT}", transient=True
            )
        case smtplib.SMTPServerDisconnected():
            return MailError(f"SMTP server at {where} closed the connection", transient=True)
        case smtplib.SMTPException():
            return MailError(f"SMTP error ({type(error).__name__})", transient=False)
        case ssl.SSLCertVerificationError():
            reason = error.verify_message or "not trusted"
            return MailError(
                f"the SMTP server's TLS certificate was not trusted ({reason}): "
                f"{PRIVATE_CA_HINT}, or check SMTP_HOST",
                transient=False,
            )
        case ssl.SSLError():
            return MailError(
                f"TLS with the SMTP server at {where} failed ({error.reason or 'SSLError'}): "
                f"{PORT_HINT}",
                transient=False,
            )
        case TimeoutError():
            return MailError(
                f"SMTP server at {where} did not answer in time: {PORT_HINT}", transient=True
            )
        case socket.gaierror():  # the name lookup failed: a typo, or no DNS from this host
            return MailError(
                f"the SMTP host name {smtp.host} could not be found (DNS): check SMTP_HOST",
                transient=True,
            )
        case OSError():  # refused, unreachable, TLS handshake cut off
            return MailError(
                f"could not reach the SMTP server at {where} ({type(error).__name__}): "
                "check SMTP_HOST and SMTP_PORT",
                transient=True,
            )
    raise error


def _needs(error: smtplib.SMTPResponseException, smtp: SmtpSettings) -> MailError:
    """530: the server wants TLS or a login first (its words say which; they are not shown)."""
    raw = error.smtp_error
    said = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).lower()
    if "tls" in said and not smtp.starttls:
        what, fix = "TLS", "set SMTP_STARTTLS=true"
    else:
        what, fix = "a login", "set SMTP_USERNAME and SMTP_PASSWORD"
    return MailError(
        f"the SMTP server requires {what} first ({error.smtp_code}): {fix}",
        transient=False,
        code=error.smtp_code,
    )


def _sender_refused(code: int) -> MailError:
    return MailError(
        f"the SMTP server refused the sender ({code}): check MAIL_FROM "
        "(an address this server and login may send from)",
        transient=_is_transient(code),
        code=code,
    )


def _refused(codes: list[int]) -> MailError:
    transient = bool(codes) and all(_is_transient(code) for code in codes)
    code = codes[0] if codes else None
    return MailError(f"SMTP server refused the recipient ({code})", transient=transient, code=code)


def _is_transient(code: int) -> bool:
    # RFC 5321: 4yz is a temporary failure; 5yz is permanent (and anything odd is not retried).
    return 400 <= code < 500
