"""Why the money side refused something. Each error moves no money."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from app.errors import (
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RateLimited,
    ValidationFailed,
)


class InvalidAmount(ValidationFailed):
    code = "invalid_amount"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The amount must be a whole number above zero."), **kw)


class InsufficientFunds(DomainError):
    code = "insufficient_funds"
    http_status = 402

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The card's balance is not enough for this payment."),
                         **kw)


class TopUpLimitExceeded(ValidationFailed):
    code = "topup_limit_exceeded"


class InvalidCardNumber(ValidationFailed):
    code = "invalid_card_number"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("This is not a valid post card number."), **kw)


class CardNumbersExhausted(DomainError):
    """Every drawn card number was taken: the random source is broken. Nothing issued."""

    code = "card_numbers_exhausted"
    http_status = 503

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("No new card number could be made. Try again later."),
                         **kw)


class CardNotFound(NotFound):
    code = "card_not_found"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("No post card has this number."), **kw)


class WrongPin(Forbidden):
    code = "wrong_pin"

    def __init__(self, attempts_left: int, **kw):
        super().__init__(
            _l("Wrong PIN. Attempts left before the card is locked: %(n)s", n=attempts_left),
            **kw,
        )
        self.attempts_left = attempts_left


class CardLocked(Forbidden):
    code = "card_locked"

    def __init__(self, message=None, **kw):
        super().__init__(
            message or _l("The card is locked after too many wrong PINs. "
                          "A post office clerk can unlock it."), **kw)


class CardBusy(Conflict):
    code = "card_busy"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The card is busy with other payments. "
                                       "Try again in a moment."), **kw)


class CardRefused(DomainError):
    """The one answer to someone paying online who is neither the card's holder nor a
    clerk: a wrong number, a wrong PIN and a locked, frozen or expired card all look
    the same, so a stranger learns nothing about the card by trying."""

    code = "card_refused"
    http_status = 422

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The card number or PIN is not right, or the card "
                                       "cannot pay. Check them, or ask at a post office."),
                         **kw)


class CardFrozen(Forbidden):
    code = "card_frozen"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The card is frozen."), **kw)


class CardExpired(Forbidden):
    code = "card_expired"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The card has expired."), **kw)


class InvalidPin(ValidationFailed):
    code = "invalid_pin"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("A PIN is 4 to 6 digits."), **kw)


class WeakPin(InvalidPin):
    """A PIN of the right shape that a thief would try first (see payments.pins)."""

    code = "weak_pin"

    def __init__(self, message, *, weakness: str, **kw):
        kw.setdefault("fields", {"pin": message})
        super().__init__(message, **kw)
        self.weakness = weakness


class RefundTooLarge(ValidationFailed):
    code = "refund_too_large"


class PaymentStateError(Conflict):
    code = "payment_state"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("This request was already made with other values."),
                         **kw)


class HoldResolved(Conflict):
    code = "hold_resolved"


class CardPaymentsUnavailable(DomainError):
    code = "card_payments_unavailable"
    http_status = 503

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("Paying with a bank card is not available right now."),
                         **kw)


class CardDeclined(DomainError):
    code = "card_declined"
    http_status = 402


class NoExchangeRate(DomainError):
    code = "no_exchange_rate"
    http_status = 503


class AlreadyDecided(Conflict):
    """A refund request or a rate proposal was approved or declined before."""

    code = "already_decided"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("This was already decided by someone else."), **kw)


class SecondPersonRequired(Forbidden):
    """The one who asked for a refund or proposed a rate cannot also approve it."""

    code = "second_person_required"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("You asked for this yourself: another supervisor or "
                                       "administrator must approve it."), **kw)


class AbsurdRate(ValidationFailed):
    code = "absurd_rate"


class OneTimeCodeSent(DomainError):
    """Not a refusal: the card is used by someone other than its holder, so a one-time
    code went by SMS to the holder's mobile and the payment waits for it. Pages show the
    form again with a field for the code; nothing else changed."""

    code = "one_time_code_sent"
    http_status = 200

    def __init__(self, mobile_tail: str, **kw):
        super().__init__(
            _l("We sent a one-time code by SMS to the card holder's mobile ending in "
               "%(tail)s. Enter it to pay.", tail=mobile_tail), **kw)
        self.mobile_tail = mobile_tail


class WrongOneTimeCode(ValidationFailed):
    """A one-time code that is wrong, expired, used or tried too often: one answer."""

    code = "wrong_one_time_code"

    def __init__(self, message=None, **kw):
        message = message or _l("The code is wrong or no longer valid. Check the SMS and "
                                "try again, or start again with the PIN for a new code.")
        kw.setdefault("fields", {"one_time_code": message})
        super().__init__(message, **kw)


class TooManyCardTries(RateLimited):
    """Too many post-card tries (PINs or codes) from one connection or account, whatever
    the cards: said before any card is looked up, so it tells nothing about a card."""

    code = "too_many_card_tries"

    def __init__(self, message=None, *, retry_after: int = 60, **kw):
        super().__init__(message or _l("Too many tries with post cards. Please wait "
                                       "%(minutes)s minutes and try again.",
                                       minutes=max(1, -(-retry_after // 60))),
                         retry_after=retry_after, **kw)


class TooManyCodes(RateLimited):
    """Too many one-time codes asked for one card or from one connection."""

    code = "too_many_codes"

    def __init__(self, message=None, *, retry_after: int = 60, **kw):
        super().__init__(message or _l("Too many codes were asked for. Please wait "
                                       "%(minutes)s minutes and try again.",
                                       minutes=max(1, -(-retry_after // 60))),
                         retry_after=retry_after, **kw)


class CodeNotSent(DomainError):
    """The SMS with a one-time code could not be handed to the gateway."""

    code = "code_not_sent"
    http_status = 503

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("The code could not be sent right now. Please try "
                                       "again in a few minutes."), **kw)


class DrawerDayClosed(Conflict):
    """Cash may not move through a drawer whose business day is closed."""

    code = "drawer_day_closed"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l(
            "Today's cash drawer of this office is closed and signed: no more cash can be "
            "taken or paid out today. Take it tomorrow, or ask a supervisor."), **kw)


class DrawerAlreadyClosed(Conflict):
    code = "drawer_already_closed"

    def __init__(self, message=None, **kw):
        super().__init__(message or _l("This day of the drawer is already closed. A closed "
                                       "day cannot change."), **kw)
