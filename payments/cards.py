"""The post card: numbers, PINs, usability checks, and the clerk's card use cases.

Everything here adds and flushes; the caller's unit of work commits. One deliberate
exception: every PIN attempt is counted (and a refused one audited) apart from the
caller's unit of work, before the PIN is checked (`write_apart`), so the count holds
under a burst of attempts and survives when the payment it was given for fails and the
caller's unit of work rolls back. Otherwise a thief could try PIN after PIN for free.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import logging
import re
import secrets
import time
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.audit import AuditRecord, record_audit
from app.auth.identifiers import normalise_phone
from app.database import db, get_engine, savepoint, utcnow
from app.errors import NotFound, ValidationFailed
from app.i18n import baghdad_today
from app.numbers import ascii_digits
from payments.errors import (
    CardBusy,
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

log = logging.getLogger("barid.payments.cards")

CARD_PREFIX = "9647"  # Iraq's calling code and 7: reads as an Iraqi Post card
CARD_RANDOM_DIGITS = 11  # 16 = 4 prefix + 11 random + 1 Luhn
# Draws of a new number before giving up. With 10^11 bodies, even ten million cards make
# a clash about 1 in 10,000 per draw: eight clashes in a row mean the random source is
# broken, and issuing must stop rather than loop.
MAX_NUMBER_DRAWS = 8
MAX_PIN_ATTEMPTS = 5
CARD_YEARS = 5
_PIN_RE = re.compile(r"^[0-9]{4,6}$")  # after ascii_digits; \d takes other scripts


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
    number = re.sub(r"[\s-]", "", ascii_digits(raw or ""))
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
    # A PIN typed in Arabic-Indic digits is the same PIN as its ASCII digits.
    pin = ascii_digits(pin or "")
    if not _PIN_RE.match(pin):
        raise InvalidPin()
    return _hasher().hash(_peppered(pin))


_dummy_hash: dict[str, str] = {}


def hash_nothing() -> None:
    """Spend the time of one PIN check on nothing: a refusal that needed no hash (no
    such card, a locked one) then takes as long as a wrong PIN, so timing does not tell
    a stranger which card numbers exist. Changes nothing."""
    params = _hasher()
    key = f"{params.time_cost}/{params.memory_cost}/{params.parallelism}"
    if key not in _dummy_hash:
        _dummy_hash[key] = params.hash(_peppered("0000"))
    with contextlib.suppress(VerificationError, InvalidHashError):
        params.verify(_dummy_hash[key], _peppered("0001"))


def _pin_matches(card: PostCard, pin: str) -> bool:
    pin = ascii_digits(pin or "")
    if not card.pin_hash or not _PIN_RE.match(pin):
        return False
    try:
        return _hasher().verify(card.pin_hash, _peppered(pin))
    except (VerificationError, InvalidHashError):
        return False


# --- Counting PIN attempts apart from the caller's unit of work ---------------------
#
# A failed PIN must stay counted when the use case it was given for fails and its unit
# of work rolls back; otherwise a thief tries PIN after PIN for free. So the count is
# written in a transaction of its own ("apart"), committed at once:
#
# * PostgreSQL (and SQLite while the request has written nothing yet): on a connection
#   of its own (`_apart_session`), committed before the caller goes on.
# * SQLite once the request's transaction has written: SQLite has one writer at a time
#   and the request's own connection holds that lock, so another connection would wait
#   for it (up to its busy timeout) and never get it. The write then goes on the
#   request's own connection, where it is atomic because that connection is the only
#   writer, and is kept in `session.info`: if the request's transaction ends without a
#   commit, the same writes are replayed apart right after, once the lock is free
#   (`_replay_after_rollback`). The small window between that rollback and the replay is
#   the one place a concurrent attempt could be checked beyond the limit; the embedded
#   default is one process, and production runs PostgreSQL.
# * A session joined to a transaction someone else owns (bound to a Connection, as the
#   rolled-back tests do): that owner decides for everything, so the write goes there.

_apart_engines: dict[str, Engine] = {}
_KEEP_IF_ROLLED_BACK = "barid_pin_writes_to_replay"
T = TypeVar("T")
ApartWork = Callable[[Session], T]


def _apart_session() -> Session:
    """A session on its own connection, outside the pool the request's session uses.

    The request's session keeps its pooled connection while this one commits, so
    drawing from the same pool could wait forever when every connection is busy.
    """
    url = get_engine().url
    key = url.render_as_string(hide_password=False)
    if key not in _apart_engines:
        kw: dict[str, Any] = {"poolclass": NullPool}
        if url.get_backend_name() == "sqlite":
            kw["connect_args"] = {"check_same_thread": False, "timeout": 30}
        _apart_engines[key] = create_engine(url, **kw)
    return Session(_apart_engines[key])


def _holds_sqlite_write_lock(session: Session) -> bool:
    """Whether `session` is on SQLite and its transaction has already written (pysqlite
    opens the database transaction only at the first write)."""
    if session.get_bind().dialect.name != "sqlite" or not session.in_transaction():
        return False
    return bool(getattr(session.connection().connection.dbapi_connection,
                        "in_transaction", False))


def _on_own_connection() -> bool:
    """Whether apart writes go on a connection of their own right now (see above)."""
    session = db()
    return not (isinstance(session.get_bind(), Connection)
                or _holds_sqlite_write_lock(session))


def write_apart(work: ApartWork[T]) -> T:
    """Run `work(session)` so that what it writes is kept whatever the caller's unit of
    work does (see the comment above). `work` may be run twice on SQLite (replayed after
    a rollback), so it builds fresh rows each time."""
    session = db()
    if _on_own_connection():
        with _apart_session() as own, own.begin():
            return work(own)
    result = work(session)
    session.flush()
    if not isinstance(session.get_bind(), Connection):
        session.info.setdefault(_KEEP_IF_ROLLED_BACK, []).append(work)
    return result


@event.listens_for(db, "after_commit")
def _kept_by_commit(session: Session) -> None:
    session.info.pop(_KEEP_IF_ROLLED_BACK, None)


@event.listens_for(db, "after_transaction_end")
def _replay_after_rollback(session: Session, transaction: Any) -> None:
    if transaction.parent is not None:
        return
    pending = session.info.pop(_KEEP_IF_ROLLED_BACK, None)
    if not pending:
        return
    try:
        with _apart_session() as own, own.begin():
            for work in pending:
                work(own)
    except Exception:  # the rollback under way must not be turned into another error
        log.exception("post card PIN attempts could not be kept after a rollback")


def audit_row(action: str, card_id: int, actor_id: int | None,
              details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The values of an audit record (actor, address, request) as record_audit would
    add it, to be written apart."""
    rec = record_audit(action, object_type="post_card", object_id=card_id, actor_id=actor_id,
                       details=details)
    db.expunge(rec)
    return {c: getattr(rec, c) for c in ("action", "object_type", "object_id", "actor_id",
                                         "ip_address", "request_id", "details")}


def adding_audit(row: dict[str, Any]) -> ApartWork[None]:
    def add(s: Session) -> None:
        s.add(AuditRecord(**row))
    return add


def _reserve_attempt(card_id: int, actor_id: int | None) -> int:
    """Count one PIN attempt on the card, apart; returns the attempts counted now.

    One conditional UPDATE counts and checks the limit at once, so a burst of attempts
    cannot pass the limit between a read and a write. The count holds the failures and
    the attempts being checked right now; when it is full but the card is not locked,
    other attempts are still being checked: wait for them (a right PIN frees the
    count, the fifth wrong one locks the card), up to PIN_WAIT_SECONDS. Waiting is only
    possible on a connection of our own: on SQLite's request connection we hold the one
    write lock the other attempts need to finish.

    Raises CardLocked (audited apart) and CardBusy (still full after waiting).
    """
    def reserve(s: Session) -> int | None:
        return s.execute(
            update(PostCard)
            .where(PostCard.id == card_id, PostCard.failed_pin_attempts < MAX_PIN_ATTEMPTS,
                   PostCard.locked_at.is_(None))
            .values(failed_pin_attempts=PostCard.failed_pin_attempts + 1)
            .returning(PostCard.failed_pin_attempts)
            .execution_options(synchronize_session=False)
        ).scalar_one_or_none()

    def is_locked() -> bool:
        query = select(PostCard.locked_at).where(PostCard.id == card_id)
        if not _on_own_connection():
            return db.execute(query.execution_options(populate_existing=True)
                              ).scalar_one_or_none() is not None
        with _apart_session() as own:
            return own.execute(query).scalar_one_or_none() is not None

    give_up_at = time.monotonic() + float(current_app.config["PIN_WAIT_SECONDS"])
    while True:
        counted = write_apart(reserve)
        if counted is not None:
            return counted
        if is_locked():
            write_apart(adding_audit(
                audit_row("post_card.pin_refused", card_id, actor_id, {"why": "locked"})))
            raise CardLocked()
        if not _on_own_connection() or time.monotonic() >= give_up_at:
            raise CardBusy()
        time.sleep(0.02)


def _give_back(card_id: int) -> None:
    """A right PIN: the attempts counted so far, this one too, are given back (apart, so
    a payment that fails afterwards for another reason does not cost the holder a try)."""
    def reset(s: Session) -> None:
        s.execute(update(PostCard)
                  .where(PostCard.id == card_id, PostCard.locked_at.is_(None))
                  .values(failed_pin_attempts=0)
                  .execution_options(synchronize_session=False))

    write_apart(reset)


def _record_failure(card_id: int, counted: int, actor_id: int | None) -> bool:
    """A wrong PIN, already counted: lock the card at the limit and audit, apart.
    Returns whether the card is now locked."""
    locked = counted >= MAX_PIN_ATTEMPTS
    row = audit_row("post_card.pin_failed", card_id, actor_id,
                    {"failed": counted, "locked": locked})

    def record(s: Session) -> None:
        if locked:
            s.execute(update(PostCard)
                      .where(PostCard.id == card_id, PostCard.locked_at.is_(None))
                      .values(locked_at=utcnow())
                      .execution_options(synchronize_session=False))
        s.add(AuditRecord(**row))

    write_apart(record)
    return locked


def verify_pin(card: PostCard, pin: str, *, actor_id: int | None) -> None:
    """Check `pin` for `card`: count the attempt first, then check the PIN.

    The attempt is counted (apart from the caller's unit of work, see `write_apart`)
    before the slow hash is checked, and a locked card is refused without hashing, so
    at most MAX_PIN_ATTEMPTS wrong PINs are ever checked per card, however many arrive
    at once. A right PIN gives the attempts back and is audited in the caller's
    transaction, with the payment it allowed; a wrong one is audited apart and the last
    allowed one locks the card.

    Raises CardLocked (the card was locked, or this attempt locked it), CardBusy (too
    many attempts being checked at once for too long) and WrongPin with the attempts
    left otherwise. Changes the card's failed_pin_attempts and
    locked_at, committed apart.
    """
    try:
        counted = _reserve_attempt(card.id, actor_id)
        if _pin_matches(card, pin):
            _give_back(card.id)
            record_audit("post_card.pin_ok", object_type="post_card", object_id=card.id,
                         actor_id=actor_id)
            return
        if _record_failure(card.id, counted, actor_id):
            raise CardLocked()
        raise WrongPin(MAX_PIN_ATTEMPTS - counted)
    finally:
        # Written with UPDATE statements, possibly on another connection: read afresh.
        db.expire(card, ["failed_pin_attempts", "locked_at"])


# --- Lookup and checks -----------------------------------------------------------


def find_card(number: str) -> PostCard:
    """The card with this number; raises InvalidCardNumber or CardNotFound."""
    card = db.scalar(select(PostCard).where(PostCard.number == normalise_number(number)))
    if card is None:
        raise CardNotFound()
    return card


def held_card(number: str, user_id: int) -> PostCard | None:
    """The card typed as `number` if it is linked to account `user_id`, else None. Tells
    a person only about their own cards; a malformed number is simply not theirs."""
    try:
        normalised = normalise_number(number)
    except InvalidCardNumber:
        return None
    return db.scalar(select(PostCard).where(PostCard.number == normalised,
                                            PostCard.user_id == user_id))


def holds_card(number: str, user_id: int) -> bool:
    """Whether the card typed as `number` is linked to account `user_id` (held_card)."""
    return held_card(number, user_id) is not None


def get_card(card_id: int) -> PostCard:
    card = db.get(PostCard, card_id)
    if card is None:
        raise CardNotFound()
    return card





def check_usable(card: PostCard, *, for_spending: bool = True) -> None:
    """Raises CardFrozen, CardExpired, or (when spending) CardLocked."""
    if card.status == CardStatus.FROZEN:
        raise CardFrozen()
    if card.expires_on < baghdad_today():
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
        (mobile or "").strip()
    missing = {k: _l("Required.") for k, v in
               {"holder_name": holder_name, "national_id": national_id, "mobile": mobile}.items()
               if not v}
    if missing:
        raise ValidationFailed(_l("Fill in the holder's details."), fields=missing)
    # The one-time codes for this card go to this number by SMS: an Iraqi mobile, E.164.
    mobile = normalise_phone(mobile, "mobile")
    require_strong_pin(pin)
    pin_hash = hash_pin(pin)
    card = _insert_with_new_number(dict(
        holder_name=holder_name, national_id=national_id, mobile=mobile, user_id=user_id,
        issued_by_id=clerk_id, issued_at_office_id=office_id, pin_hash=pin_hash,
        expires_on=_add_years(baghdad_today(), CARD_YEARS)))
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
