"""Telling people things: e-mail and SMS behind one interface.

Two ways in:

- `notify(...)` stages a one-off message (a sign-up code, a note to a merchant) as a job
  after the current transaction commits, so a rolled-back change sends nothing.
- `tell(recipient, kind, context, event=...)` is how a domain event reaches a citizen: the
  message of a registered kind (`message_kind`) is rendered from its template in the
  citizen's language, once per channel they chose, recorded in `notifications` (one row
  per event, channel and address, so a subscriber run twice sends once) and handed over
  by the `deliver_notification` job. Every row is the log the back office shows.

Templates are Arabic and English texts in `notification_templates` that an admin edits;
a kind's built-in texts stand in until then. They are Jinja templates rendered in a
sandbox (no attributes starting with "_", no unknown fields), refused on save when they
do not render with the kind's sample data.

E-mail goes by MAIL_BACKEND: `smtp` in production, `folder` (one file a message under
MAIL_FOLDER) in the embedded default, `memory` in tests (read `sent_messages`). SMS go
by SMS_BACKEND: `http` (the gateway: a JSON POST with a bearer token), `log`, `folder`
or `memory`.
"""

from __future__ import annotations

import enum
import json
import logging
import smtplib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError
from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, mapped_column

from app.audit import record_audit
from app.auth.identifiers import normalise_email, normalise_phone
from app.auth.models import User
from app.database import Base, db, utcnow
from app.errors import ValidationFailed
from app.events import DomainEvent, enqueue_after_commit

log = logging.getLogger("barid.notify")

# Messages delivered by the `memory` backends, newest last (tests read and clear it).
sent_messages: list[dict[str, Any]] = []

EMAIL, SMS = "email", "sms"
CHANNELS = (EMAIL, SMS)
LOCALES = ("ar", "en")
# What a template may be and render to: generous for a message, small for a page.
MAX_TEMPLATE_CHARS = 4000
MAX_RENDERED_CHARS = 8000


class NotificationError(RuntimeError):
    """The message could not be handed to the mail server or SMS gateway.

    `after_rollback`, when set, is called by the job runner in a unit of work of its own
    after the failed job's was rolled back (it records the failure in the log).
    """

    after_rollback: Callable[[], None] | None = None


class TemplateRefused(ValidationFailed):
    """A template that does not render safely with its kind's sample data."""

    code = "template_refused"


class NotificationStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class NotificationTemplate(Base):
    """An admin's text for one kind of message in one language (replaces the built-in)."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("kind", "locale"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(200))
    email_body: Mapped[str] = mapped_column(Text)
    sms_body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class Notification(Base):
    """One message to one address on one channel: the send-once key and the log line.

    (event_id, channel, recipient) is unique, so the subscriber of an event that runs
    twice stages each message once.
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("event_id", "channel", "recipient"),
        Index("ix_notifications_status_created", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("domain_events.id"))
    event_name: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), index=True)
    channel: Mapped[str] = mapped_column(String(8))
    recipient: Mapped[str] = mapped_column(String(254), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    locale: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default=NotificationStatus.QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    sent_at: Mapped[datetime | None]


# --- kinds of message and their templates -------------------------------------------

@dataclass(frozen=True)
class MessageKind:
    """A kind of message a domain sends, with its built-in texts per language and the
    sample values a preview (and the check on save) renders it with."""

    key: str
    label: Any  # lazy-translated, for the back office
    sample: dict[str, Any]
    subject: dict[str, str]
    email: dict[str, str]
    sms: dict[str, str]
    fields: tuple[str, ...] = field(default=())

    def texts(self, locale: str) -> dict[str, str]:
        return {"subject": self.subject[locale], "email_body": self.email[locale],
                "sms_body": self.sms[locale]}


_kinds: dict[str, MessageKind] = {}


def message_kind(key: str, label: Any, *, sample: dict[str, Any], subject: dict[str, str],
                 email: dict[str, str], sms: dict[str, str]) -> MessageKind:
    """Register a kind of message (a domain does it at import) and return it. Every
    built-in text must render with `sample` (checked here, so a typo fails at start)."""
    kind = MessageKind(key, label, dict(sample), subject, email, sms,
                       tuple(sorted(sample)))
    for locale in LOCALES:
        for text in kind.texts(locale).values():
            render_text(text, kind.sample)
    _kinds[key] = kind
    return kind


def message_kinds() -> list[MessageKind]:
    """Every registered kind, by key."""
    return [_kinds[k] for k in sorted(_kinds)]


def get_kind(key: str) -> MessageKind:
    """The registered kind `key`; ValidationFailed for an unknown one."""
    try:
        return _kinds[key]
    except KeyError:
        raise ValidationFailed(_l("There is no such kind of message.")) from None


_sandbox = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
# The subset of Jinja a message template may use: fields, text, a few filters that
# cannot grow the text much, and if/else. No attribute, item, call, loop or arithmetic:
# the sandbox would stop `''.__class__`, but not `"x" * 10**9` or `zfill(10**9)`.
_SAFE_NODES = (nodes.Template, nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const,
               nodes.Filter, nodes.If, nodes.CondExpr, nodes.Compare, nodes.Operand,
               nodes.Not, nodes.And, nodes.Or, nodes.Test, nodes.Concat)
_SAFE_FILTERS = frozenset({"upper", "lower", "title", "capitalize", "trim", "default",
                           "truncate"})
_SAFE_TESTS = frozenset({"defined", "none", "string", "number"})


def _check_subset(tree: nodes.Node) -> None:
    for node in tree.find_all(nodes.Node):
        refused = not isinstance(node, _SAFE_NODES) \
            or (isinstance(node, nodes.Filter) and node.name not in _SAFE_FILTERS) \
            or (isinstance(node, nodes.Test) and node.name not in _SAFE_TESTS) \
            or (isinstance(node, nodes.Name) and node.ctx != "load") \
            or (isinstance(node, nodes.Filter | nodes.Test) and (node.dyn_args or node.dyn_kwargs))
        if refused:
            raise SecurityError(type(node).__name__)


def render_text(source: str, context: dict[str, Any]) -> str:
    """`source` rendered in the sandbox with `context`. Raises TemplateRefused for a
    syntax error, an unknown field, anything outside the subset (attributes, calls,
    loops, arithmetic, filters other than upper, lower, title, capitalize, trim,
    default and truncate) or a result too long."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise TemplateRefused(_l("A template may be at most %(n)s characters long.",
                                 n=MAX_TEMPLATE_CHARS))
    try:
        _check_subset(_sandbox.parse(source))
        out = _sandbox.from_string(source).render(context)
    except SecurityError:
        raise TemplateRefused(_l("The template uses something templates may not use. "
                                 "Use only the fields listed, such as {{ number }}.")) from None
    except TemplateSyntaxError as exc:
        raise TemplateRefused(_l("The template has a mistake on line %(line)s: %(error)s",
                                 line=exc.lineno, error=exc.message or "")) from None
    except UndefinedError as exc:
        raise TemplateRefused(_l("The template names a field that does not exist "
                                 "(%(error)s).", error=exc.message or "")) from None
    except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError,
            OverflowError):
        raise TemplateRefused(_l("The template cannot be rendered with the sample "
                                 "data.")) from None
    if len(out) > MAX_RENDERED_CHARS:
        raise TemplateRefused(_l("The message would be too long."))
    return out.strip()


def template_texts(key: str, locale: str) -> tuple[dict[str, str], bool]:
    """The texts of kind `key` in `locale` (subject, email_body, sms_body) and whether
    an admin changed them (False: the built-in texts). Reads only."""
    kind = get_kind(key)
    row = db.scalar(select(NotificationTemplate).where(
        NotificationTemplate.kind == key, NotificationTemplate.locale == locale))
    if row is None:
        return kind.texts(locale), False
    return {"subject": row.subject, "email_body": row.email_body,
            "sms_body": row.sms_body}, True


def preview(key: str, locale: str, texts: dict[str, str]) -> dict[str, str]:
    """`texts` (subject, email_body, sms_body) rendered with the kind's sample data.
    Raises TemplateRefused (on the field at fault) or ValidationFailed."""
    if locale not in LOCALES:
        raise ValidationFailed(_l("Choose Arabic or English."))
    kind = get_kind(key)
    out = {}
    for name in ("subject", "email_body", "sms_body"):
        try:
            out[name] = render_text(texts.get(name) or "", kind.sample)
        except TemplateRefused as exc:
            raise TemplateRefused(exc.message, fields={name: exc.message}) from None
    if not out["subject"] or not out["email_body"] or not out["sms_body"]:
        raise ValidationFailed(_l("The subject, the e-mail and the SMS must each say "
                                  "something."))
    return out


def save_template(key: str, locale: str, texts: dict[str, str], *,
                  actor_id: int | None) -> NotificationTemplate:
    """An admin's texts for kind `key` in `locale` replace the ones in use; the next
    message of that kind uses them. Audited with before and after. Flushes.

    Raises TemplateRefused / ValidationFailed (nothing changes) when they do not render
    with the sample data.
    """
    preview(key, locale, texts)
    before, _changed = template_texts(key, locale)
    row = db.scalar(select(NotificationTemplate).where(
        NotificationTemplate.kind == key, NotificationTemplate.locale == locale))
    if row is None:
        row = NotificationTemplate(kind=key, locale=locale)
        db.add(row)
    row.subject = texts["subject"].strip()[:200]
    row.email_body = texts["email_body"]
    row.sms_body = texts["sms_body"]
    row.updated_at = utcnow()
    row.updated_by_id = actor_id
    db.flush()
    record_audit("notification_template.changed", object_type="notification_template",
                 object_id=f"{key}/{locale}", actor_id=actor_id,
                 details={"before": before, "after": {
                     "subject": row.subject, "email_body": row.email_body,
                     "sms_body": row.sms_body}})
    return row


def restore_template(key: str, locale: str, *, actor_id: int | None) -> bool:
    """Go back to the built-in texts of `key` in `locale`; audited. Returns False when
    they were in use already. Flushes."""
    get_kind(key)
    row = db.scalar(select(NotificationTemplate).where(
        NotificationTemplate.kind == key, NotificationTemplate.locale == locale))
    if row is None:
        return False
    before = {"subject": row.subject, "email_body": row.email_body,
              "sms_body": row.sms_body}
    db.delete(row)
    db.flush()
    record_audit("notification_template.restored", object_type="notification_template",
                 object_id=f"{key}/{locale}", actor_id=actor_id, details={"before": before})
    return True


def render_message(key: str, locale: str, channel: str,
                   context: dict[str, Any]) -> tuple[str, str]:
    """(subject, body) of kind `key` for `channel` in `locale`. A stored template that
    no longer renders (a field the kind dropped) falls back to the built-in text, so
    the citizen is still told."""
    kind = get_kind(key)
    texts, changed = template_texts(key, locale)
    body_name = "email_body" if channel == EMAIL else "sms_body"
    try:
        return render_text(texts["subject"], context), render_text(texts[body_name], context)
    except TemplateRefused:
        if not changed:
            raise
        log.warning("template %s/%s does not render; the built-in text is used", key, locale)
        builtin = kind.texts(locale)
        return (render_text(builtin["subject"], context),
                render_text(builtin[body_name], context))


# --- who is told, and how ------------------------------------------------------------

@dataclass(frozen=True)
class Recipient:
    """Where and in which language a person is told, and on which channels."""

    email: str | None
    phone: str | None
    locale: str = "ar"
    channels: frozenset[str] = frozenset(CHANNELS)
    user_id: int | None = None

    def address(self, channel: str) -> str | None:
        return self.email if channel == EMAIL else self.phone


def citizen(user: User) -> Recipient:
    """A registered citizen: their language and the channels they chose."""
    chosen = {c for c, on in ((EMAIL, user.notify_by_email), (SMS, user.notify_by_sms)) if on}
    return Recipient(email=user.email, phone=user.phone,
                     locale=user.locale if user.locale in LOCALES else "ar",
                     channels=frozenset(chosen), user_id=user.id)


def _clean(raw: str | None, normalise: Callable[[str], str]) -> str | None:
    if not raw or not raw.strip():
        return None
    try:
        return normalise(raw)
    except ValidationFailed:
        return None


def contact(*, email: str | None = None, phone: str | None = None,
            locale: str | None = None) -> Recipient:
    """Someone known by an address (a parcel's recipient, a card holder's mobile).
    When an account has that mobile or e-mail, its language and chosen channels are
    used (to the account's addresses); otherwise both channels where an address is
    given, in `locale` (Arabic when not known). Unusable addresses are dropped."""
    phone_e164 = _clean(phone, normalise_phone)
    email_clean = _clean(email, normalise_email)
    for column, value in ((User.phone, phone_e164), (User.email, email_clean)):
        if value:
            user = db.scalar(select(User).where(column == value))
            if user is not None and user.active:
                return citizen(user)
    return Recipient(email=email_clean, phone=phone_e164,
                     locale=locale if locale in LOCALES else "ar")


def tell(recipient: Recipient, kind: str,
         context: dict[str, Any] | Callable[[str], dict[str, Any]], *,
         event: DomainEvent | None) -> list[Notification]:
    """Stage the message of `kind` to `recipient` in their language on each channel they
    chose and have an address for. `context` is the template's fields, or a function of
    the locale giving them (for amounts and names that read differently per language).

    Each message is recorded in `notifications` and handed to `deliver_notification`
    after commit. A message for the same event, channel and address already recorded is
    not staged again (a subscriber run twice sends once). Returns the rows staged.
    Flushes. Raises TemplateRefused only if a built-in text does not render.
    """
    staged: list[Notification] = []
    values: dict[str, Any] | None = None
    for channel in CHANNELS:
        to = recipient.address(channel)
        if channel not in recipient.channels or not to:
            continue
        if event is not None and db.scalar(select(Notification.id).where(
                Notification.event_id == event.id, Notification.channel == channel,
                Notification.recipient == to)) is not None:
            continue
        if values is None:
            values = context(recipient.locale) if callable(context) else dict(context)
        subject, body = render_message(kind, recipient.locale, channel, values)
        row = Notification(event_id=event.id if event else None,
                           event_name=event.name if event else None, kind=kind,
                           channel=channel, recipient=to, user_id=recipient.user_id,
                           locale=recipient.locale, subject=subject[:300], body=body,
                           status=NotificationStatus.QUEUED)
        db.add(row)
        db.flush()
        enqueue_after_commit(deliver_notification, notification_id=row.id)
        staged.append(row)
    return staged


def deliver_notification(*, notification_id: int) -> None:
    """Job: hand one recorded message to its channel's backend and mark it sent.

    Does nothing when it was sent already. Raises NotificationError when the mail server
    or gateway refuses (the job is retried); the failure and its reason are then
    recorded on the row after the job's own changes are rolled back.
    """
    row = db.scalar(select(Notification).where(Notification.id == notification_id)
                    .with_for_update())
    if row is None or row.status == NotificationStatus.SENT:
        return
    attempt = row.attempts + 1
    meta = {"kind": row.kind, "event_id": row.event_id, "locale": row.locale,
            "notification_id": row.id}
    try:
        if row.channel == EMAIL:
            send_email(row.recipient, row.subject, row.body, **meta)
        else:
            send_sms(row.recipient, row.body, **meta)
    except NotificationError as exc:
        exc.after_rollback = partial(_record_failure, row.id, attempt, str(exc))
        raise
    row.attempts = attempt
    row.status = NotificationStatus.SENT
    row.sent_at = utcnow()
    row.error = None


def _record_failure(notification_id: int, attempts: int, error: str) -> None:
    row = db.get(Notification, notification_id)
    if row is not None and row.status != NotificationStatus.SENT:
        row.status = NotificationStatus.FAILED
        row.attempts = attempts
        row.error = error[:500]


# --- one-off messages ----------------------------------------------------------------

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
    cfg = current_app.config
    backend = cfg.get("MAIL_BACKEND", "folder")
    if backend in ("memory", "folder") and cfg.get("SMS_BACKEND", backend) == backend:
        # One record for both addresses, as the development folder has always had.
        _record_locally(backend, {"email": email, "phone": phone, "subject": subject,
                                  "body": body})
        return
    if email:
        send_email(email, subject, body)
    if phone:
        send_sms(phone, body)


def _record_locally(backend: str, message: dict[str, Any]) -> None:
    message_id, at = str(uuid.uuid4()), utcnow().isoformat()
    message = {"id": message_id, "at": at, **message}
    if backend == "memory":
        sent_messages.append(message)
        return
    folder = Path(current_app.config["MAIL_FOLDER"])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{at[:19].replace(':', '')}-{message_id}.json").write_text(
        json.dumps(message, ensure_ascii=False, indent=2), encoding="utf-8")


# --- channels --------------------------------------------------------------------------

def send_email(to: str, subject: str, body: str, **meta: Any) -> None:
    """Send one e-mail now by MAIL_BACKEND. Raises NotificationError."""
    backend = current_app.config.get("MAIL_BACKEND", "folder")
    if backend in ("memory", "folder"):
        _record_locally(backend, {"channel": EMAIL, "email": to, "phone": None,
                                  "subject": subject, "body": body, **meta})
    elif backend == "smtp":
        _send_smtp(to, subject, body)
    else:
        raise NotificationError(f"unknown MAIL_BACKEND {backend!r}")


def send_sms(to: str, text: str, **meta: Any) -> None:
    """Send one SMS now by SMS_BACKEND. Raises NotificationError."""
    backend = current_app.config.get("SMS_BACKEND", "log")
    if backend in ("memory", "folder"):
        _record_locally(backend, {"channel": SMS, "email": None, "phone": to,
                                  "subject": "", "body": text, **meta})
    elif backend == "log":
        # The number and length only: the text may hold a one-time code.
        log.info("sms to %s (%s characters)", to, len(text))
    elif backend == "http":
        _send_sms_http(to, text)
    else:
        raise NotificationError(f"unknown SMS_BACKEND {backend!r}")


def _send_sms_http(to: str, text: str) -> None:
    """POST {to, text, sender} as JSON to SMS_HTTP_URL with the bearer token; any answer
    but 2xx, a timeout or a refused connection raises NotificationError."""
    cfg = current_app.config
    url = cfg.get("SMS_HTTP_URL") or ""
    if not url.startswith(("https://", "http://")):
        raise NotificationError("SMS_BACKEND is http but SMS_HTTP_URL is not an http(s) URL")
    data = json.dumps({"to": to, "text": text, "sender": cfg.get("SMS_SENDER_ID", "")},
                      ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json; charset=utf-8",
               "Accept": "application/json"}
    if cfg.get("SMS_HTTP_TOKEN"):
        headers["Authorization"] = f"Bearer {cfg['SMS_HTTP_TOKEN']}"
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url, data=data, headers=headers, method="POST")
    try:
        # The scheme is checked above: only http(s) is ever opened.
        timeout = float(cfg.get("SMS_HTTP_TIMEOUT", 10))
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            if not 200 <= answer.status < 300:
                raise NotificationError(f"SMS gateway answered {answer.status}")
    except urllib.error.HTTPError as exc:
        raise NotificationError(f"SMS gateway answered {exc.code}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise NotificationError(f"SMS gateway unreachable: {exc}") from exc


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
