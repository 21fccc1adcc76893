"""Sending e-mail: SMTP when SMTP_URL is set (stdlib smtplib), else .eml files in DATA_DIR/outbox.

``smtp://user:pass@host:port`` speaks plain SMTP (STARTTLS when the server offers it and
credentials are given), ``smtps://...`` SMTP over TLS. A failure raises ``MailError`` so
the outbox worker can retry later.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from quantoxbay.private_files import open_private, private_dir

SMTP_TIMEOUT_SECONDS = 15


class MailError(Exception):
    """The message could not be handed over; try again later."""


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class SmtpMailer:
    """Hands each message to an SMTP server (one connection per message: receipts are rare)."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"SMTP_URL must look like smtp://user:pass@host:port, not {url!r}")
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None

    def send(self, message: EmailMessage) -> None:
        try:
            if self.tls:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=SMTP_TIMEOUT_SECONDS)
            with client:
                client.ehlo()
                if not self.tls and self.username and client.has_extn("starttls"):
                    client.starttls(context=ssl.create_default_context())
                    client.ehlo()
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(f"SMTP {self.host}:{self.port}: {exc}") from exc


class FileMailer:
    """Writes each message to ``directory`` (0700) as an .eml file (0600): the embedded default."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, message: EmailMessage) -> None:
        try:
            private_dir(self.directory)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:12]}.eml"
            tmp = self.directory / f".{name}.tmp"
            with os.fdopen(open_private(tmp, os.O_WRONLY | os.O_EXCL), "wb") as out:
                out.write(bytes(message))
            tmp.rename(self.directory / name)  # readers never see half a file
        except OSError as exc:
            raise MailError(f"outbox {self.directory}: {exc}") from exc


def make_mailer(*, smtp_url: str | None, outbox_dir: Path) -> Mailer:
    """The mailer the configuration names."""
    return SmtpMailer(smtp_url) if smtp_url else FileMailer(outbox_dir)
