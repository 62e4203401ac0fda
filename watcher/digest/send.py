"""Compose the multipart/alternative mail and hand it to an SMTP server (smtplib)."""

from __future__ import annotations

import contextlib
import os
import smtplib
import ssl
from collections.abc import Sequence
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from watcher.config import SmtpConfig
from watcher.digest.build import one_line
from watcher.errors import MailError


def header_value(value: str) -> str:
    """A header value on one line: CR, LF and other control characters never reach a header."""
    return one_line(value)


def message_id(sender: str) -> str:
    """A fresh Message-ID in the sender's domain."""
    domain = sender.rsplit("@", 1)[-1].strip(" >") or "localhost"
    return make_msgid(domain=domain)


def compose(
    *,
    subject: str,
    sender: str,
    to: Sequence[str],
    text: str,
    html: str,
    now: datetime,
    msgid: str,
) -> EmailMessage:
    """A text part and an HTML alternative; the email package encodes non-ASCII headers."""
    message = EmailMessage()
    message["Subject"] = header_value(subject)
    message["From"] = header_value(sender)
    message["To"] = ", ".join(header_value(address) for address in to)
    message["Date"] = format_datetime(now)
    message["Message-ID"] = header_value(msgid)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def smtp_password(smtp: SmtpConfig) -> str | None:
    """The password from ``password_env`` or ``password_file``; None when neither is set."""
    if smtp.password_env:
        value = os.environ.get(smtp.password_env)
        if value is None:
            raise MailError(
                f"smtp.password_env: the environment variable {smtp.password_env} is not set"
            )
        return value
    if smtp.password_file:
        path = Path(smtp.password_file).expanduser()
        try:
            return path.read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as error:
            raise MailError(
                f"smtp.password_file: cannot read {path}: {error.strerror or error}"
            ) from None
    return None


def deliver(message: EmailMessage, smtp: SmtpConfig) -> str | None:
    """Send through the configured server; every failure becomes one MailError.

    Returns None, or a note naming the recipients the server refused when it took the
    mail for the others (the mail is sent then).
    """
    password = smtp_password(smtp)
    where = f"{smtp.host}:{smtp.effective_port}"
    context = ssl.create_default_context()
    client: smtplib.SMTP | None = None
    try:
        if smtp.security == "tls":
            client = smtplib.SMTP_SSL(
                smtp.host, smtp.effective_port, timeout=smtp.timeout, context=context
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.effective_port, timeout=smtp.timeout)
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if smtp.user and password is not None:
            client.login(smtp.user, password)
        refused = client.send_message(message)
        # the server has the mail now: a failure to say goodbye does not unsend it
        with contextlib.suppress(smtplib.SMTPException, OSError):
            client.quit()
    except smtplib.SMTPRecipientsRefused as error:
        raise MailError(f"{where} refused every recipient: {_reasons(error.recipients)}") from None
    except smtplib.SMTPResponseException as error:
        reply = error.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        raise MailError(f"{where} answered {error.smtp_code}: {one_line(text)}") from None
    except smtplib.SMTPException as error:
        raise MailError(f"{where}: {one_line(str(error)) or type(error).__name__}") from None
    except ssl.SSLError as error:
        raise MailError(f"{where}: TLS failed: {error.reason or error}") from None
    except OSError as error:
        what = "cannot connect" if client is None else "connection lost"
        raise MailError(f"{where}: {what}: {error.strerror or error}") from None
    finally:
        if client is not None:
            # after a failure the session may be unusable: drop it rather than wait on QUIT
            client.close()
    if refused:
        return f"{where} refused some recipients: {_reasons(refused)}"
    return None


def _reasons(recipients: dict[str, tuple[int, bytes]]) -> str:
    return "; ".join(
        f"{address} ({code} {reply.decode('utf-8', 'replace')})"
        for address, (code, reply) in recipients.items()
    )
