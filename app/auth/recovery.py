"""Account recovery: a one-time code to set a new password, by e-mail or SMS.

`request_password_reset` answers every well-formed request alike, so it never tells
whether an address has an account; only the holder of an existing, active account is
sent a message (a 6-digit code and a link). `send_password_reset` is the same message
sent by an admin or supervisor, who never sees the code nor sets the password.
`reset_password` sets the new password when the code comes back, and ends every
session of the account.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from flask import current_app
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, delete, select, update

from app import ratelimit
from app.audit import record_audit
from app.auth.identifiers import parse_identifier
from app.auth.models import PasswordReset, User
from app.auth.services import _check_password_strength, hash_password, login_limits
from app.database import db, utcnow
from app.errors import DomainError, NotFound, RateLimited, ValidationFailed
from app.notify import notify
from app.numbers import ascii_digits

RESET_NAMESPACE = "password-reset"  # counters: barid:password-reset:addr:<ip>, :to:<name>
TOO_MANY_RESETS = _l("Too many requests for a new password. Please wait a while and try "
                     "again.")
BAD_RESET_CODE = _l("This code is not correct, has already been used or has expired. "
                    "Check the latest message we sent you, or ask for a new code.")


class InvalidResetCode(ValidationFailed):
    """A wrong, used or expired reset code, or one tried too often: one answer for all,
    so the answer tells nothing about the account."""

    code = "invalid_reset_code"


def _reset_digest(code: str) -> str:
    """The stored form of a reset code, keyed with the server's secret so a copy of the
    table does not give the six digits away by trying all million."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"password-reset:" + code.encode(), hashlib.sha256).hexdigest()


def reset_limits(name: str, address: str | None) -> list[tuple[ratelimit.Rule, str]]:
    """The counters one request touches: per e-mail or mobile (nobody's inbox is flooded
    from many addresses) and per client address, PASSWORD_RESET_RATE_LIMIT each over
    PASSWORD_RESET_RATE_WINDOW seconds."""
    rule = ratelimit.Rule(RESET_NAMESPACE,
                          int(current_app.config["PASSWORD_RESET_RATE_LIMIT"]),
                          int(current_app.config["PASSWORD_RESET_RATE_WINDOW"]))
    out = [(rule, "to:" + name[:250])]
    if address:
        out.append((rule, "addr:" + address[:60]))
    return out


def reset_link(token: str) -> str:
    """The address of the page that takes the code, for the message."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + f"/password/reset/{token}"


def _issue(user: User, requested_by_id: int | None, via: str) -> PasswordReset:
    """Keep a new reset for `user` and stage its message, in the holder's language, by
    e-mail (`via` "email") or SMS ("phone"). Earlier unused resets of the user stop
    working: only the latest message counts."""
    now = utcnow()
    db.execute(delete(PasswordReset).where(PasswordReset.expires_at < now))
    db.execute(update(PasswordReset)
               .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
               .values(used_at=now)
               .execution_options(synchronize_session=False))
    ttl = int(current_app.config["PASSWORD_RESET_TTL"])
    code = f"{secrets.randbelow(10**6):06d}"
    reset = PasswordReset(user_id=user.id, code_hash=_reset_digest(code),
                          expires_at=now + timedelta(seconds=ttl),
                          requested_by_id=requested_by_id)
    db.add(reset)
    db.flush()
    with force_locale(user.locale if user.locale in ("ar", "en") else "ar"):
        notify(email=user.email if via == "email" else None,
               phone=user.phone if via == "phone" else None,
               subject=gettext("Your Barid password reset code"),
               body=gettext("Your code to set a new Barid password is %(code)s. Enter it at "
                            "%(link)s within %(minutes)s minutes. If you did not ask for a "
                            "new password, ignore this message: your password has not "
                            "changed.", code=code, link=reset_link(reset.token),
                            minutes=max(1, ttl // 60)))
    return reset


def request_password_reset(identifier: str, *, client_address: str | None) -> str:
    """Start a reset for the account named by an e-mail address or Iraqi mobile number
    (Arabic-Indic digits read): the same outcome whether or not such an account exists.

    Returns a token for the browser's session: the reset's own when an active account
    has that name (a code and link are then sent to it, audited
    `auth.password_reset_requested`), otherwise a random one no reset has, so the next
    page behaves alike. Raises ValidationFailed (field `identifier`, a name that is
    neither an e-mail nor a mobile number) or RateLimited (per client address and per
    name, counted outside the database); nothing is written then.
    """
    kind, value = parse_identifier(identifier)
    refused = [a for a in (ratelimit.hit(rule, key)
                           for rule, key in reset_limits(value, client_address))
               if not a.allowed]
    if refused:
        raise RateLimited(TOO_MANY_RESETS, retry_after=max(a.reset for a in refused))
    column = User.email if kind == "email" else User.phone
    user = db.scalar(select(User).where(column == value))
    if user is None or not user.active:
        return secrets.token_urlsafe(32)
    # The message goes where the person said: the mobile they typed gets the SMS.
    reset = _issue(user, None, kind)
    record_audit("auth.password_reset_requested", object_type="user", object_id=user.id,
                 actor_id=None, details={"via": kind})
    db.flush()
    return reset.token


def send_password_reset(user_id: int, *, actor_id: int | None) -> PasswordReset:
    """Send the holder of `user_id` a reset code and link, on an admin's or
    supervisor's word (who never sees the code). Audits `auth.password_reset_sent`.
    Raises NotFound, or ValidationFailed when the account is disabled or has neither
    e-mail nor mobile."""
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(_l("No such person."))
    if not user.active:
        raise ValidationFailed(_l("This account is disabled. Enable it first."))
    if not user.email and not user.phone:
        raise ValidationFailed(_l("This person has no e-mail address or mobile number to "
                                  "send a code to."))
    via = "email" if user.email else "phone"
    reset = _issue(user, actor_id, via)
    record_audit("auth.password_reset_sent", object_type="user", object_id=user.id,
                 actor_id=actor_id, details={"via": via})
    db.flush()
    return reset


def reset_password(token: str | None, code: str, new_password: str) -> User | DomainError:
    """Set a new password if `code` is the code of the reset `token`: the user, or the
    failure, returned so that the caller's unit of work commits the counted attempt.

    The password is checked first (WeakPassword, field `password`, raised: no try is
    spent on it). The try is then counted and the limit checked in one conditional
    UPDATE before the code is compared, so at most PASSWORD_RESET_TRIES codes are ever
    checked per reset, however many arrive at once. A wrong, used, expired or exhausted
    code gives InvalidResetCode (field `code`). On success the reset is used up, the
    password replaced, the session token rotated (every session of the account ends,
    copied cookies included), the account's failed-login counters cleared and
    `auth.password_reset` audited.
    """
    _check_password_strength(new_password)
    typed = ascii_digits(code or "").replace(" ", "")
    tries = int(current_app.config["PASSWORD_RESET_TRIES"])
    row = None
    if token:
        row = db.execute(
            update(PasswordReset)
            .where(PasswordReset.token == token,
                   PasswordReset.used_at.is_(None),
                   PasswordReset.attempts < tries,
                   PasswordReset.expires_at > utcnow())
            .values(attempts=PasswordReset.attempts + 1)
            .returning(PasswordReset.id, PasswordReset.code_hash, PasswordReset.user_id)
            .execution_options(synchronize_session=False)
        ).first()
    if row is None or not hmac.compare_digest(row.code_hash, _reset_digest(typed)):
        return InvalidResetCode(BAD_RESET_CODE, fields={"code": BAD_RESET_CODE})
    # Used up in one conditional UPDATE too: two right codes at once set one password.
    result: CursorResult = db.execute(  # type: ignore[assignment]
        update(PasswordReset)
        .where(PasswordReset.id == row.id, PasswordReset.used_at.is_(None))
        .values(used_at=utcnow())
        .execution_options(synchronize_session=False))
    used = result.rowcount
    user = db.scalars(select(User).where(User.id == row.user_id)
                      .with_for_update(of=User)
                      .execution_options(populate_existing=True)).first()
    if not used or user is None or not user.active:
        return InvalidResetCode(BAD_RESET_CODE, fields={"code": BAD_RESET_CODE})
    user.password_hash = hash_password(new_password)
    user.rotate_session_token()
    # Failed logins before the reset no longer hold the holder back.
    for name in (user.email, user.phone):
        if name:
            ratelimit.clear(*login_limits(name, None)[0])
    record_audit("auth.password_reset", object_type="user", object_id=user.id,
                 actor_id=user.id, details={"reset_id": row.id})
    db.flush()
    return user
