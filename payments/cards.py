"""The post card: numbers, PINs, usability checks, and the clerk's card use cases.

Everything here adds and flushes; the caller's unit of work commits. One deliberate
exception: a failed PIN is counted (and audited) in its own short transaction on its
own connection (`_apart_session`), so the count survives when the payment it was
given for fails and the caller's unit of work rolls back. Otherwise a thief could try
PIN after PIN for free.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import date, datetime
from typing import Any

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Engine, create_engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.audit import record_audit
from app.database import db, get_engine, savepoint, utcnow
from app.errors import NotFound, ValidationFailed
from app.i18n import BAGHDAD
from payments.errors import (
    CardExpired,
    CardFrozen,
    CardLocked,
    CardNotFound,
    CardNumbersExhausted,
    InvalidCardNumber,
    InvalidPin,
    WrongPin,
)
from payments.ledger import get_account
from payments.models import AccountKind, CardStatus, PostCard
from payments.pins import require_strong_pin

CARD_PREFIX = "9647"  # Iraq's calling code and 7: reads as an Iraqi Post card
CARD_RANDOM_DIGITS = 11  # 16 = 4 prefix + 11 random + 1 Luhn
# Draws of a new number before giving up. With 10^11 bodies, even ten million cards make
# a clash about 1 in 10,000 per draw: eight clashes in a row mean the random source is
# broken, and issuing must stop rather than loop.
MAX_NUMBER_DRAWS = 8
MAX_PIN_ATTEMPTS = 5
CARD_YEARS = 5
_PIN_RE = re.compile(r"^\d{4,6}$")


# --- Numbers ---------------------------------------------------------------------


def luhn_check_digit(partial: str) -> str:
    """The digit that makes `partial` + digit pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(partial)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    return number.isdigit() and len(number) > 1 and luhn_check_digit(number[:-1]) == number[-1]


def new_card_number() -> str:
    """16 digits: the fixed prefix, 11 digits from the operating system's cryptographic
    random source, and the Luhn digit.

    Random rather than a serial so that nobody holding one card can count their way to
    the next (10^11 possible bodies: a guessed number is almost never a card). The
    caller makes it unique (see issue_card).
    """
    body = f"{CARD_PREFIX}{secrets.randbelow(10 ** CARD_RANDOM_DIGITS):0{CARD_RANDOM_DIGITS}d}"
    return body + luhn_check_digit(body)


def normalise_number(raw: str) -> str:
    """Digits only; raises InvalidCardNumber unless 16 digits passing Luhn."""
    number = re.sub(r"[\s-]", "", raw or "")
    if len(number) != 16 or not luhn_valid(number) or not number.startswith(CARD_PREFIX):
        raise InvalidCardNumber()
    return number


# --- PINs ------------------------------------------------------------------------


def _hasher() -> PasswordHasher:
    cfg = current_app.config
    return PasswordHasher(
        time_cost=cfg["PIN_ARGON2_TIME_COST"],
        memory_cost=cfg["PIN_ARGON2_MEMORY_KIB"],
        parallelism=cfg["PIN_ARGON2_PARALLELISM"],
        type=Type.ID,
    )


def _peppered(pin: str) -> str:
    pepper = current_app.config["PIN_PEPPER"].encode()
    return hmac.new(pepper, pin.encode(), hashlib.sha256).hexdigest()


def hash_pin(pin: str) -> str:
    if not _PIN_RE.match(pin or ""):
        raise InvalidPin()
    return _hasher().hash(_peppered(pin))


def _pin_matches(card: PostCard, pin: str) -> bool:
    if not card.pin_hash or not _PIN_RE.match(pin or ""):
        return False
    try:
        return _hasher().verify(card.pin_hash, _peppered(pin))
    except (VerificationError, InvalidHashError):
        return False


_apart_engines: dict[str, Engine] = {}


def _apart_session() -> Session:
    """A session on its own connection, outside the pool the request's session uses.

    This is the one place payments writes outside the caller's unit of work, on
    purpose: a failed PIN attempt must stay counted even though the use case it was
    made for fails and is rolled back (see verify_pin). The transaction is opened and
    committed by `with own.begin():` around a single counted UPDATE and its audit row.

    The request's session keeps its pooled connection while this one commits, so
    drawing from the same pool could wait forever when every connection is busy.
    """
    url = get_engine().url
    key = url.render_as_string(hide_password=False)
    if key not in _apart_engines:
        _apart_engines[key] = create_engine(url, poolclass=NullPool)
    return Session(_apart_engines[key])


def _audit_apart(action: str, card_id: int, actor_id: int | None,
                 details: dict[str, Any]) -> None:
    """Write one audit record in its own transaction (kept when the caller's rolls back)."""
    rec = record_audit(action, object_type="post_card", object_id=card_id, actor_id=actor_id,
                       details=details)
    db.expunge(rec)
    with _apart_session() as own, own.begin():
        own.add(rec)


def verify_pin(card: PostCard, pin: str, *, actor_id: int | None) -> None:
    """Check `pin` for `card`; a refused attempt is counted and audited in its own
    transaction.

    Raises CardLocked when the card is locked (or this attempt locks it) and WrongPin
    with the attempts left otherwise. The caller's unit of work then rolls back, but
    the failed attempt was already committed apart (see _apart_session), so five wrong
    PINs lock the card whatever the caller does. A right PIN clears the failure count
    and is audited in the caller's transaction, with the payment it allowed.
    """
    if card.locked_at is not None:
        _audit_apart("post_card.pin_refused", card.id, actor_id, {"why": "locked"})
        raise CardLocked()
    if _pin_matches(card, pin):
        # A right PIN is audited with the payment it allowed (same transaction).
        record_audit("post_card.pin_ok", object_type="post_card", object_id=card.id,
                     actor_id=actor_id)
        if card.failed_pin_attempts:
            card.failed_pin_attempts = 0
            db.flush()
        return
    with _apart_session() as own, own.begin():
        failed = own.execute(
            update(PostCard).where(PostCard.id == card.id)
            .values(failed_pin_attempts=PostCard.failed_pin_attempts + 1)
            .returning(PostCard.failed_pin_attempts)
        ).scalar_one()
        locked = failed >= MAX_PIN_ATTEMPTS
        if locked:
            own.execute(update(PostCard).where(PostCard.id == card.id, PostCard.locked_at.is_(None))
                        .values(locked_at=utcnow()))
        rec = record_audit("post_card.pin_failed", object_type="post_card", object_id=card.id,
                           actor_id=actor_id, details={"failed": failed, "locked": locked})
        db.expunge(rec)
        own.add(rec)
    db.expire(card, ["failed_pin_attempts", "locked_at"])
    if locked:
        raise CardLocked()
    raise WrongPin(MAX_PIN_ATTEMPTS - failed)


# --- Lookup and checks -----------------------------------------------------------


def find_card(number: str) -> PostCard:
    """The card with this number; raises InvalidCardNumber or CardNotFound."""
    card = db.scalar(select(PostCard).where(PostCard.number == normalise_number(number)))
    if card is None:
        raise CardNotFound()
    return card


def get_card(card_id: int) -> PostCard:
    card = db.get(PostCard, card_id)
    if card is None:
        raise CardNotFound()
    return card


def today_in_baghdad(now: datetime | None = None) -> date:
    return (now or utcnow()).astimezone(BAGHDAD).date()


def check_usable(card: PostCard, *, for_spending: bool = True) -> None:
    """Raises CardFrozen, CardExpired, or (when spending) CardLocked."""
    if card.status == CardStatus.FROZEN:
        raise CardFrozen()
    if card.expires_on < today_in_baghdad():
        raise CardExpired()
    if for_spending and card.locked_at is not None:
        raise CardLocked()


def cards_of(user_id: int) -> list[PostCard]:
    return list(db.scalars(select(PostCard).where(PostCard.user_id == user_id)
                           .order_by(PostCard.id)))


# --- Use cases (flush; the caller's unit of work commits) ---------------------------


def _add_years(d: date, years: int) -> date:
    try:
        return d.replace(year=d.year + years)
    except ValueError:  # 29 February
        return d.replace(year=d.year + years, day=28)


def issue_card(*, holder_name: str, national_id: str, mobile: str, pin: str,
               user_id: int | None, clerk_id: int | None, office_id: int | None) -> PostCard:
    """Issue a post card (the holder chose `pin`): the card with a new random number,
    its ledger accounts and hashed PIN; audited. Flushes.

    Raises ValidationFailed for missing holder details, InvalidPin for a PIN that is
    not 4-6 digits, WeakPin for one a thief would try first (see payments.pins), and
    CardNumbersExhausted if no unused number could be drawn (a broken random source).
    """
    holder_name, national_id, mobile = (holder_name or "").strip(), (national_id or "").strip(), \
        re.sub(r"\s", "", mobile or "")
    missing = {k: _l("Required.") for k, v in
               {"holder_name": holder_name, "national_id": national_id, "mobile": mobile}.items()
               if not v}
    if missing:
        raise ValidationFailed(_l("Fill in the holder's details."), fields=missing)
    if not re.match(r"^\+?\d{8,15}$", mobile):
        raise ValidationFailed(_l("The mobile number is not valid."),
                               fields={"mobile": _l("Digits only, e.g. +9647701234567")})
    require_strong_pin(pin)
    pin_hash = hash_pin(pin)
    card = _insert_with_new_number(dict(
        holder_name=holder_name, national_id=national_id, mobile=mobile, user_id=user_id,
        issued_by_id=clerk_id, issued_at_office_id=office_id, pin_hash=pin_hash,
        expires_on=_add_years(today_in_baghdad(), CARD_YEARS)))
    card.account_id = get_account(f"card:{card.id}", AccountKind.POST_CARD, card.currency,
                                  no_overdraft=True).id
    card.hold_account_id = get_account(f"card_hold:{card.id}", AccountKind.CARD_HOLD,
                                       card.currency, no_overdraft=True).id
    record_audit("post_card.issued", object_type="post_card", object_id=card.id,
                 actor_id=clerk_id, details={"office_id": office_id, "user_id": user_id})
    db.flush()
    return card


def _insert_with_new_number(values: dict[str, Any]) -> PostCard:
    """Insert a card under a freshly drawn number, drawing again if it is taken.

    The unique constraint on post_cards.number is the judge, not a look-up first: a
    look-up cannot see a number another counter is issuing at the same moment. Each
    try runs in a savepoint, so a clash undoes only that insert. Cards are never
    deleted, so a number once issued stays taken: it is never handed out again.
    """
    for _ in range(MAX_NUMBER_DRAWS):
        number = new_card_number()
        card = PostCard(number=number, **values)
        try:
            with savepoint():
                db.add(card)
                db.flush()
        except IntegrityError:
            if db.scalar(select(PostCard.id).where(PostCard.number == number)) is None:
                raise  # some other constraint failed: not ours to retry
            continue
        return card
    raise CardNumbersExhausted()


def _set_status(card_id: int, *, clerk_id: int | None, action: str,
                **values: Any) -> PostCard:
    card = db.scalar(select(PostCard).where(PostCard.id == card_id).with_for_update())
    if card is None:
        raise NotFound()
    for k, v in values.items():
        setattr(card, k, v)
    record_audit(action, object_type="post_card", object_id=card.id, actor_id=clerk_id)
    db.flush()
    return card


def freeze_card(card_id: int, *, clerk_id: int | None) -> PostCard:
    """Stop all spending and top-ups on the card until unfrozen. Audited; flushes.
    Raises NotFound."""
    return _set_status(card_id, clerk_id=clerk_id, action="post_card.frozen",
                       status=CardStatus.FROZEN)


def unfreeze_card(card_id: int, *, clerk_id: int | None) -> PostCard:
    """Let a frozen card be used again. Audited; flushes. Raises NotFound."""
    return _set_status(card_id, clerk_id=clerk_id, action="post_card.unfrozen",
                       status=CardStatus.ACTIVE)


def unlock_card(card_id: int, *, clerk_id: int | None) -> PostCard:
    """Clear a PIN lock after the clerk checked the holder's ID. Audited; flushes.
    Raises NotFound."""
    return _set_status(card_id, clerk_id=clerk_id, action="post_card.unlocked",
                       locked_at=None, failed_pin_attempts=0)


def change_pin(card_id: int, *, new_pin: str, clerk_id: int | None) -> PostCard:
    """Set a new PIN chosen by the holder at the counter (also unlocks); audited.
    Flushes. Raises NotFound, InvalidPin, WeakPin (see payments.pins)."""
    require_strong_pin(new_pin)
    return _set_status(card_id, clerk_id=clerk_id, action="post_card.pin_changed",
                       pin_hash=hash_pin(new_pin), locked_at=None, failed_pin_attempts=0)
