"""One-time codes for a post card used online by someone other than its holder, and the
throttle on post-card tries online, across cards.

Who needs a code: anyone paying online with a card that is not linked to their own
account, and anyone not signed in (the public duty page). The holder paying from their
own linked card, and the clerk at the counter (who sees the holder), need card and PIN
only. The rule lives here and in payments.services._card_for_spending, the one place
every page that takes a card number and PIN goes through.

How a code works:

* It is sent only once the PIN was right, so it stands for the PIN on the next try:
  the second submission carries the card number and the code.
* 6 digits from the operating system's cryptographic random source, valid
  CODE_MINUTES, good for MAX_TRIES tries and one payment, of the amount, currency and
  purpose it was sent for, by the account (or nobody signed in) that asked for it.
  Asking again retires the card's earlier codes for that account.
* Kept as a keyed hash (HMAC-SHA256 with the PIN pepper and a salt of its own), never
  in clear: the SMS is handed to the notification backend at once
  (app.notify.deliver_message) rather than staged in the outbox, whose rows would
  keep the text of the message.
* A try is counted apart from the caller's unit of work (as PIN attempts are, see
  payments.cards.write_apart), with one conditional UPDATE, so a burst cannot pass the
  limit and a payment that fails afterwards does not give the try back. The code is
  spent in the caller's transaction, by a conditional UPDATE too: of two payments
  racing with one code, one spends it and the other finds it spent.

Throttling: every try online (a PIN or a code) is counted per client address and per
signed-in account in app.ratelimit (Redis when configured, so every process shares the
count) before any card is looked up; past the limit the answer is the same "too many
tries" whatever the card, so walking card numbers stops after a few tries.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from datetime import timedelta
from typing import NoReturn

from flask import current_app, has_request_context, request
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, update
from sqlalchemy.orm import Session

from app import ratelimit
from app.audit import AuditRecord, record_audit
from app.database import db, utcnow
from app.money import format_money
from app.notify import NotificationError, deliver_message
from app.numbers import ascii_digits
from payments.cards import adding_audit, audit_row, write_apart
from payments.errors import (
    CodeNotSent,
    OneTimeCodeSent,
    TooManyCardTries,
    TooManyCodes,
    WrongOneTimeCode,
)
from payments.models import OneTimeCode, PostCard

log = logging.getLogger("barid.payments.otp")

CODE_DIGITS = 6
CODE_MINUTES = 5
MAX_TRIES = 3


def client_address() -> str:
    """The client's address as the platform sees it (through trusted proxies only)."""
    return (request.remote_addr or "unknown")[:64] if has_request_context() else "local"


# --- throttling tries across cards -------------------------------------------------


def count_try(actor_id: int | None) -> None:
    """Count one post-card try online (a PIN or a code) for the client address and, when
    someone is signed in, for their account, whatever the card.

    Counted before the card is looked up, so the answer past the limit is the same for
    every card number. Changes only the rate-limit counters. Raises TooManyCardTries
    past CARD_TRIES_PER_CLIENT or CARD_TRIES_PER_ACCOUNT tries in CARD_TRIES_WINDOW.
    """
    cfg = current_app.config
    window = int(cfg["CARD_TRIES_WINDOW"])
    checks = [("card_tries_client", int(cfg["CARD_TRIES_PER_CLIENT"]), client_address())]
    if actor_id is not None:
        checks.append(("card_tries_account", int(cfg["CARD_TRIES_PER_ACCOUNT"]),
                       str(actor_id)))
    for namespace, amount, who in checks:
        if amount <= 0:
            continue
        allowance = ratelimit.hit(ratelimit.Rule(namespace, amount, window), who)
        if not allowance.allowed:
            raise TooManyCardTries(retry_after=allowance.reset)


# --- who needs a code ----------------------------------------------------------------


def code_needed(card: PostCard, actor_id: int | None, *, at_counter: bool) -> bool:
    """Whether using `card` needs a one-time code: online, by anyone but the account the
    card is linked to (and by everyone not signed in)."""
    return not at_counter and (actor_id is None or card.user_id != actor_id)


def _digest(salt: str, code: str) -> str:
    pepper = current_app.config["PIN_PEPPER"].encode()
    return hmac.new(pepper, f"{salt}:{code}".encode(), hashlib.sha256).hexdigest()


def _hashed(code: str) -> str:
    salt = secrets.token_hex(8)
    return f"{salt}${_digest(salt, code)}"


def _matches(stored: str, code: str) -> bool:
    salt, _sep, digest = stored.partition("$")
    return hmac.compare_digest(digest, _digest(salt, code))


def _same_use(card_id: int, actor_id: int | None, *, amount: int | None = None,
              currency: str | None = None,
              purpose: str | None = None) -> list[ColumnElement[bool]]:
    """The conditions of the codes sent for this card to this account (and this use)."""
    conds = [OneTimeCode.card_id == card_id,
             OneTimeCode.actor_id.is_(None) if actor_id is None
             else OneTimeCode.actor_id == actor_id]
    if amount is not None:
        conds += [OneTimeCode.amount == amount, OneTimeCode.currency == currency,
                  OneTimeCode.purpose == purpose]
    return conds


def _mobile_tail(card: PostCard) -> str:
    return (card.mobile or "")[-2:]


def _message(code: str, amount: int, currency: str) -> tuple[str, str]:
    """Subject and body of the SMS, Arabic first."""
    texts = []
    for lang in ("ar", "en"):
        with force_locale(lang):
            texts.append(_("Barid code %(code)s to pay %(amount)s with your post card. "
                           "Valid %(minutes)s minutes. Never give it to anyone: the post "
                           "will never ask you for it.", code=code,
                           amount=format_money(amount, currency, lang),
                           minutes=CODE_MINUTES))
    with force_locale("ar"):
        subject = _("Post card code")
    return subject, "\n\n".join(texts)


def send_code(card: PostCard, *, actor_id: int | None, amount: int, currency: str,
              purpose: str) -> NoReturn:
    """Send a new one-time code to the holder's mobile for this use of the card, and
    stop: the payment waits for the code.

    Retires the card's earlier live codes for `actor_id`, stores the new one hashed and
    audits the sending, all apart from the caller's unit of work (which the raised
    OneTimeCodeSent rolls back), then hands the SMS to the notification backend.
    Raises TooManyCodes past CARD_CODES_PER_CARD codes for the card or
    CARD_CODES_PER_CLIENT from the client in CARD_CODES_WINDOW,
    CodeNotSent when the SMS cannot be handed over, and OneTimeCodeSent
    otherwise (with the last digits of the mobile it went to).
    """
    cfg = current_app.config
    window = int(cfg["CARD_CODES_WINDOW"])
    for namespace, amount_allowed, who in (
            ("card_codes_card", int(cfg["CARD_CODES_PER_CARD"]), str(card.id)),
            ("card_codes_client", int(cfg["CARD_CODES_PER_CLIENT"]), client_address())):
        allowance = ratelimit.hit(ratelimit.Rule(namespace, amount_allowed, window), who)
        if not allowance.allowed:
            raise TooManyCodes(retry_after=allowance.reset)

    code = f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"
    now = utcnow()
    values = dict(card_id=card.id, code_hash=_hashed(code), actor_id=actor_id, amount=amount,
                  currency=currency, purpose=purpose, client=client_address(),
                  created_at=now, expires_at=now + timedelta(minutes=CODE_MINUTES))
    audit = audit_row("post_card.code_sent", card.id, actor_id,
                      {"amount": amount, "currency": currency, "purpose": purpose})

    def store(s: Session) -> None:
        s.execute(update(OneTimeCode)
                  .where(*_same_use(card.id, actor_id), OneTimeCode.used_at.is_(None),
                         OneTimeCode.expires_at > now)
                  .values(expires_at=now)
                  .execution_options(synchronize_session=False))
        s.add(OneTimeCode(**values))
        s.add(AuditRecord(**audit))

    write_apart(store)
    subject, body = _message(code, amount, currency)
    try:
        deliver_message(email=None, phone=card.mobile, subject=subject, body=body)
    except NotificationError:
        log.exception("one-time code for post card %s could not be sent", card.id)
        raise CodeNotSent() from None
    raise OneTimeCodeSent(_mobile_tail(card))


def check_code(card: PostCard, code: str, *, actor_id: int | None, amount: int,
               currency: str, purpose: str) -> None:
    """Check a one-time code typed for this use of the card, and spend it.

    The try is counted apart first (kept when the payment fails), on the live codes sent
    for this card, account, amount, currency and purpose only; a code past its time, its
    MAX_TRIES tries or already spent matches nothing. A right code is spent in the
    caller's transaction, so the payment it allows commits with it, and a payment
    racing it with the same code finds it spent. Raises WrongOneTimeCode (one answer
    for wrong, expired, spent or tried too often); audits a wrong code apart, a right one
    with the payment.
    """
    typed = ascii_digits(code or "").replace(" ", "")
    now = utcnow()

    def take_try(s: Session) -> list[tuple[int, str]]:
        rows = s.execute(
            update(OneTimeCode)
            .where(*_same_use(card.id, actor_id, amount=amount, currency=currency,
                              purpose=purpose),
                   OneTimeCode.used_at.is_(None), OneTimeCode.expires_at > now,
                   OneTimeCode.tries < MAX_TRIES)
            .values(tries=OneTimeCode.tries + 1)
            .returning(OneTimeCode.id, OneTimeCode.code_hash)
            .execution_options(synchronize_session=False)).all()
        return [(row[0], row[1]) for row in rows]

    tried = write_apart(take_try)
    right = next((cid for cid, stored in tried
                  if len(typed) == CODE_DIGITS and _matches(stored, typed)), None)
    if right is not None:
        spent = db.execute(
            update(OneTimeCode)
            .where(OneTimeCode.id == right, OneTimeCode.used_at.is_(None))
            .values(used_at=now)
            .returning(OneTimeCode.id)
            .execution_options(synchronize_session=False)).scalar_one_or_none()
        if spent is not None:
            record_audit("post_card.code_used", object_type="post_card", object_id=card.id,
                         actor_id=actor_id, details={"code_id": right})
            return
    write_apart(adding_audit(audit_row("post_card.code_failed", card.id, actor_id,
                                       {"live_codes": len(tried)})))
    raise WrongOneTimeCode()
