"""Telling people things: e-mail and SMS behind one interface.

`notify(...)` stages the message as a job after the current transaction commits, so a
rolled-back change sends nothing. The backend comes from MAIL_BACKEND: `smtp` (and the
SMS gateway) in production, `folder` (one file a message under MAIL_FOLDER) in the
embedded default, `memory` in tests (read `sent_messages`).
"""

from __future__ import annotations

import json
import smtplib
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from flask import current_app

from app.database import utcnow
from app.events import enqueue_after_commit

# Messages delivered by the `memory` backend, newest last (tests read and clear it).
sent_messages: list[dict[str, Any]] = []


class NotificationError(RuntimeError):
    """The message could not be handed to the mail server or SMS gateway."""


def notify(*, email: str | None = None, phone: str | None = None, subject: str,
           body: str) -> None:
    """Stage an e-mail and/or SMS to go out once the open transaction commits.

    Nothing is sent if neither an address nor a phone is given.
    """
    if not email and not phone:
        return
    enqueue_after_commit(deliver_message, email=email, phone=phone, subject=subject, body=body)


def deliver_message(*, email: str | None, phone: str | None, subject: str, body: str) -> None:
    """Job: hand one message to the configured backend. Raises NotificationError."""
    backend = current_app.config.get("MAIL_BACKEND", "folder")
    message_id, at = str(uuid.uuid4()), utcnow().isoformat()
    message = {"id": message_id, "at": at, "email": email, "phone": phone,
               "subject": subject, "body": body}
    if backend == "memory":
        sent_messages.append(message)
    elif backend == "folder":
        folder = Path(current_app.config["MAIL_FOLDER"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{at[:19].replace(':', '')}-{message_id}.json").write_text(
            json.dumps(message, ensure_ascii=False, indent=2), encoding="utf-8"
        )
    elif backend == "smtp":
        if email:
            _send_smtp(email, subject, body)
        # The SMS gateway of Iraqi Post is not specified yet; SMS are logged until it is.
        if phone:
            current_app.logger.info("sms to %s: %s", phone, subject)
    else:
        raise NotificationError(f"unknown MAIL_BACKEND {backend!r}")


def _send_smtp(to: str, subject: str, body: str) -> None:
    cfg = current_app.config
    msg = EmailMessage()
    msg["From"] = cfg["MAIL_FROM"]
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    try:
        with smtplib.SMTP(cfg["MAIL_SERVER"], cfg["MAIL_PORT"], timeout=10) as smtp:
            if cfg.get("MAIL_USERNAME"):
                smtp.starttls()
                smtp.login(cfg["MAIL_USERNAME"], cfg["MAIL_PASSWORD"] or "")
            smtp.send_message(msg)
    except (OSError, smtplib.SMTPException) as exc:
        raise NotificationError(str(exc)) from exc
