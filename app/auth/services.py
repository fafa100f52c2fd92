"""Use cases for people, roles and post offices. Each public function flushes its changes;
the caller's unit of work commits them (or rolls them back with a raised error).

Passwords are hashed with argon2id (argon2-cffi's defaults); a hash made with older
parameters is replaced at the next successful login. Every change and every login
attempt is written to the audit log.

Sign-up on the website takes two steps, so that it never tells whether an address has
an account: `request_registration` answers every well-formed sign-up alike and sends a
message to the address (a code when it is free, a warning when it already has an
account); `confirm_registration` opens the account once that code comes back.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from datetime import timedelta
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app
from flask_babel import force_locale, gettext
from flask_babel import lazy_gettext as _l
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from app import ratelimit
from app.audit import record_audit
from app.auth.identifiers import (
    format_phone,
    normalise_email,
    normalise_phone,
    parse_identifier,
)
from app.auth.models import (
    OfficeKind,
    PendingRegistration,
    PostOffice,
    Role,
    User,
    UserRole,
    role_label,
)
from app.database import db, savepoint, utcnow
from app.errors import Conflict, DomainError, NotFound, RateLimited, ValidationFailed
from app.events import publish
from app.geo import governorate
from app.notify import notify
from app.numbers import ascii_digits

MIN_PASSWORD_LENGTH = 8
# argon2 is fed the whole password; a cap keeps one request from costing seconds.
MAX_PASSWORD_LENGTH = 256

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters


class InvalidCredentials(DomainError):
    """Wrong password or unknown login name: one message for both, so neither is revealed."""

    code = "invalid_credentials"
    http_status = 401


class DuplicateAccount(Conflict):
    code = "duplicate_account"


class UnknownRole(ValidationFailed):
    code = "unknown_role"


class WeakPassword(ValidationFailed):
    code = "weak_password"


class PostOfficeRequired(ValidationFailed):
    code = "post_office_required"


class InvalidRegistrationCode(ValidationFailed):
    """A wrong, used or expired sign-up code, or one tried too often: one answer for all."""

    code = "invalid_registration_code"


LOGIN_NAMESPACE = "login-fail"  # failed-login counters: barid:login-fail:id:<name>, :addr:<ip>
BAD_LOGIN = _l("The login name or password is not correct.")
TOO_MANY = _l("Too many failed attempts. Please wait a few minutes and try again.")
REGISTER_NAMESPACE = "register"  # sign-up counters: barid:register:addr:<ip>, :to:<name>
TOO_MANY_SIGNUPS = _l("Too many sign-ups. Please wait a while and try again.")
BAD_CODE = _l("This code is not correct or has expired. Check the latest message we sent "
              "you, or sign up again.")


# -- helpers (flush, never commit) ------------------------------------------------------

@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("barid timing equaliser")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _verify(stored: str, password: str) -> bool:
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _check_password_strength(password: str, field: str = "password") -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        msg = _l("Use at least %(n)s characters for the password.", n=MIN_PASSWORD_LENGTH)
        raise WeakPassword(msg, fields={field: msg})
    if len(password) > MAX_PASSWORD_LENGTH:
        msg = _l("Use at most %(n)s characters for the password.", n=MAX_PASSWORD_LENGTH)
        raise WeakPassword(msg, fields={field: msg})


def _parse_roles(roles: Iterable[Role | str], field: str = "roles") -> list[Role]:
    out: list[Role] = []
    for r in roles:
        try:
            role = Role(str(r).strip().lower())
        except ValueError:
            msg = _l(
                "Unknown role “%(role)s”. Choose one of: %(roles)s.",
                role=str(r), roles=", ".join(x.value for x in Role),
            )
            raise UnknownRole(msg, fields={field: msg}) from None
        if role not in out:
            out.append(role)
    if not out:
        msg = _l("Choose at least one role.")
        raise UnknownRole(msg, fields={field: msg})
    return out


def _refuse_duplicates(email: str | None, phone: str | None, email_field: str,
                       phone_field: str) -> None:
    if email and db.scalar(select(User.id).where(User.email == email)) is not None:
        msg = _l("An account with this e-mail address already exists.")
        raise DuplicateAccount(msg, fields={email_field: msg})
    if phone and db.scalar(select(User.id).where(User.phone == phone)) is not None:
        msg = _l("An account with this mobile number already exists.")
        raise DuplicateAccount(msg, fields={phone_field: msg})


def _insert_new_account(user: User, email_field: str, phone_field: str) -> None:
    """Insert `user` and flush, turning a lost race on the unique columns into the same
    clear error. The savepoint undoes only the failed insert, so the caller's
    transaction stays usable."""
    try:
        with savepoint():
            db.add(user)
            db.flush()
    except IntegrityError as exc:
        text = str(exc.orig).lower()
        field = phone_field if "phone" in text else email_field
        msg = (_l("An account with this mobile number already exists.") if field == phone_field
               else _l("An account with this e-mail address already exists."))
        raise DuplicateAccount(msg, fields={field: msg}) from None


def _post_office_by_code(code: str, field: str = "post_office") -> PostOffice:
    office = db.scalar(select(PostOffice).where(PostOffice.code == code.strip().upper()))
    if office is None:
        msg = _l("There is no post office with the code %(code)s.", code=code)
        raise ValidationFailed(msg, fields={field: msg})
    if not office.is_open:
        msg = _l("The post office %(code)s is closed: choose another.", code=office.code)
        raise ValidationFailed(msg, fields={field: msg})
    return office


class LastAdministrator(Conflict):
    code = "last_administrator"


def refuse_losing_last_admin(user_id: int, field: str = "roles") -> None:
    """Raise LastAdministrator unless another active administrator than `user_id`
    remains. Locks every administrator's row first (in id order), so two admins
    disabling or demoting each other at once cannot both succeed: the second waits,
    then counts what the first committed."""
    db.execute(
        select(User.id)
        .where(User.id.in_(select(UserRole.user_id).where(UserRole.role == Role.ADMIN.value)))
        .order_by(User.id)
        .with_for_update()
    ).all()
    # A new statement after the locks are held: it sees what a waited-for change committed.
    others = db.scalar(
        select(func.count()).select_from(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == Role.ADMIN.value, User.active.is_(True), User.id != user_id)
    )
    if not others:
        msg = _l("This is the last active administrator. Make someone else an "
                 "administrator first.")
        raise LastAdministrator(msg, fields={field: msg})


def _find_by_identifier(identifier: str) -> User | None:
    try:
        kind, value = parse_identifier(identifier)
    except ValidationFailed:
        return None
    column = User.email if kind == "email" else User.phone
    return db.scalar(select(User).where(column == value))


def _get_user(user_id: int) -> User:
    user = db.get(User, user_id)
    if user is None:
        raise NotFound(_l("No such person."))
    return user


def _add_role(user: User, role: Role) -> None:
    user.role_rows.append(UserRole(role=role.value))


# -- use cases ---------------------------------------------------------------------------

def _validated_signup(full_name: str, identifier: str,
                      password: str) -> tuple[str, str, str]:
    """(name, kind, value) of a sign-up form, or ValidationFailed / WeakPassword with
    every field's problem at once, so the person fixes the form in one go."""
    full_name = (full_name or "").strip()
    errors: dict[str, object] = {}
    weak: WeakPassword | None = None
    kind = value = ""
    if not full_name:
        errors["full_name"] = _l("Enter your name.")
    try:
        kind, value = parse_identifier(identifier)
    except ValidationFailed as exc:
        errors.update(exc.fields)
    try:
        _check_password_strength(password)
    except WeakPassword as exc:
        weak = exc
        errors.update(exc.fields)
    if errors:
        if weak is not None and len(errors) == 1:
            raise weak
        raise ValidationFailed(next(iter(errors.values())), fields=errors)
    return full_name[:200], kind, value


def _open_shopper_account(full_name: str, email: str | None, phone: str | None,
                          password_hash: str, locale: str) -> User:
    """Insert a shopper account, audit `auth.register`, publish `user.registered`.
    Raises DuplicateAccount (field `identifier`) with nothing written."""
    _refuse_duplicates(email, phone, "identifier", "identifier")
    user = User(full_name=full_name, email=email, phone=phone, password_hash=password_hash,
                locale=locale if locale in ("ar", "en") else "ar")
    _add_role(user, Role.SHOPPER)
    _insert_new_account(user, "identifier", "identifier")
    record_audit("auth.register", object_type="user", object_id=user.id, actor_id=user.id,
                 details={"via": "email" if email else "phone"})
    publish("user.registered", {"user_id": user.id})
    return user


def register_shopper(full_name: str, identifier: str, password: str, *,
                     locale: str = "ar") -> User:
    """Open a shopper account named by an e-mail address or an Iraqi mobile number, at
    once and without a confirmation code: for trusted callers (seed data, tests). The
    website goes through `request_registration` and `confirm_registration`, which do not
    reveal whether an address has an account.

    Creates the user with the shopper role, audits `auth.register` and publishes
    `user.registered`. Raises ValidationFailed (bad name or identifier), WeakPassword,
    or DuplicateAccount; on any of them nothing is written. Field errors are keyed
    `full_name`, `identifier`, `password`.
    """
    full_name, kind, value = _validated_signup(full_name, identifier, password)
    email = value if kind == "email" else None
    phone = value if kind == "phone" else None
    return _open_shopper_account(full_name, email, phone, hash_password(password), locale)


def _code_digest(code: str) -> str:
    """The stored form of a sign-up code: keyed with the server's secret, so a copy of
    the table does not give the six digits away by trying all million."""
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"registration-code:" + code.encode(), hashlib.sha256).hexdigest()


def registration_limits(name: str, address: str | None) -> list[tuple[ratelimit.Rule, str]]:
    """The sign-up counters one attempt touches: per e-mail or mobile (so nobody's
    inbox is flooded from many addresses) and per client address, REGISTER_RATE_LIMIT
    each over REGISTER_RATE_WINDOW seconds."""
    rule = ratelimit.Rule(REGISTER_NAMESPACE, int(current_app.config["REGISTER_RATE_LIMIT"]),
                          int(current_app.config["REGISTER_RATE_WINDOW"]))
    out = [(rule, "to:" + name[:250])]
    if address:
        out.append((rule, "addr:" + address[:60]))
    return out


def _send_registration_code(email: str | None, phone: str | None, code: str, minutes: int,
                            locale: str) -> None:
    with force_locale(locale):
        notify(email=email, phone=phone,
               subject=gettext("Your Barid sign-up code"),
               body=gettext("Your code to open a Barid account is %(code)s. It is valid for "
                            "%(minutes)s minutes. If you did not ask to open an account, "
                            "ignore this message.", code=code, minutes=minutes))


def _warn_existing_holder(user: User, email: str | None, phone: str | None) -> None:
    with force_locale(user.locale if user.locale in ("ar", "en") else "ar"):
        notify(email=email, phone=phone,
               subject=gettext("Someone tried to open a Barid account with your details"),
               body=gettext("Someone tried to open a new Barid account with %(name)s, which "
                            "already belongs to your account. If it was you, simply log in "
                            "with your password. If it was not you, ignore this message: "
                            "nothing has changed.",
                            name=email or format_phone(phone)))


def request_registration(full_name: str, identifier: str, password: str, *,
                         client_address: str | None,
                         locale: str = "ar") -> PendingRegistration:
    """Start a sign-up: the same outcome whether or not the address has an account.

    Keeps a PendingRegistration (its `token` goes into the browser's session) and stages
    one message to the e-mail address or mobile number given: a 6-digit code valid for
    REGISTER_CODE_TTL seconds when no account has it, or, when one has, a warning to the
    account's holder (and the pending row then holds a code nobody is sent). Forgets
    sign-ups that have expired. Audits `auth.register_requested` or
    `auth.register_existing`. Raises ValidationFailed / WeakPassword (fields
    `full_name`, `identifier`, `password`) or RateLimited (per client address and per
    address or number, counted outside the database); nothing is written then.
    """
    full_name, kind, value = _validated_signup(full_name, identifier, password)
    refused = [a for a in (ratelimit.hit(rule, key)
                           for rule, key in registration_limits(value, client_address))
               if not a.allowed]
    if refused:
        raise RateLimited(TOO_MANY_SIGNUPS, retry_after=max(a.reset for a in refused))
    now = utcnow()
    db.execute(delete(PendingRegistration).where(PendingRegistration.expires_at < now))
    email = value if kind == "email" else None
    phone = value if kind == "phone" else None
    column = User.email if kind == "email" else User.phone
    holder = db.scalar(select(User).where(column == value))
    ttl = int(current_app.config["REGISTER_CODE_TTL"])
    code = f"{secrets.randbelow(10**6):06d}"
    # The password is hashed in both cases: the answer takes the same time either way.
    pending = PendingRegistration(full_name=full_name, email=email, phone=phone,
                                  password_hash=hash_password(password),
                                  locale=locale if locale in ("ar", "en") else "ar",
                                  code_hash=_code_digest(code),
                                  expires_at=now + timedelta(seconds=ttl))
    db.add(pending)
    db.flush()
    if holder is None:
        _send_registration_code(email, phone, code, max(1, ttl // 60), pending.locale)
        record_audit("auth.register_requested", object_type="pending_registration",
                     object_id=pending.id, details={"via": kind})
    else:
        _warn_existing_holder(holder, email, phone)
        record_audit("auth.register_existing", object_type="user", object_id=holder.id,
                     details={"via": kind})
    db.flush()
    return pending


def confirm_registration(token: str | None, code: str) -> User | DomainError:
    """Open the account of the pending sign-up `token` if `code` is its code: the new
    user (logged in by the caller), or the failure, returned so the caller's unit of work
    commits the counted attempt before the caller shows it.

    The attempt is counted and the limit checked in one conditional UPDATE before the
    code is compared, so at most REGISTER_CODE_TRIES codes are ever checked per sign-up,
    however many arrive at once. A wrong, expired, used or exhausted code gives
    InvalidRegistrationCode (field `code`). On success the pending row is deleted (a
    code works once) and the account is opened as by `register_shopper`; if the address
    got an account meanwhile, the row is deleted and DuplicateAccount is the outcome
    (the person has shown they read the address's messages, so saying so reveals
    nothing to a stranger).
    """
    typed = ascii_digits(code or "").replace(" ", "")
    tries = int(current_app.config["REGISTER_CODE_TRIES"])
    row = None
    if token:
        row = db.execute(
            update(PendingRegistration)
            .where(PendingRegistration.token == token,
                   PendingRegistration.attempts < tries,
                   PendingRegistration.expires_at > utcnow())
            .values(attempts=PendingRegistration.attempts + 1)
            .returning(PendingRegistration.id, PendingRegistration.code_hash)
            .execution_options(synchronize_session=False)
        ).first()
    if row is None or not hmac.compare_digest(row.code_hash, _code_digest(typed)):
        return InvalidRegistrationCode(BAD_CODE, fields={"code": BAD_CODE})
    pending = db.get(PendingRegistration, row.id)
    assert pending is not None
    account = (pending.full_name, pending.email, pending.phone, pending.password_hash,
               pending.locale)
    db.delete(pending)
    db.flush()
    try:
        return _open_shopper_account(*account)
    except DuplicateAccount as exc:
        return exc


def login_limits(identifier: str, address: str | None) -> list[tuple[ratelimit.Rule, str]]:
    """The failed-login counters one attempt touches: (rule, identifier) pairs, the
    login name's first.

    Counted per login name and per client address over LOGIN_RATE_WINDOW seconds from
    the first failure. The per-address limit is higher than the per-name one because
    many Iraqi mobile subscribers share one carrier-grade NAT address.
    """
    limit = int(current_app.config["LOGIN_RATE_LIMIT"])
    per_address = int(current_app.config.get("LOGIN_RATE_LIMIT_PER_ADDRESS") or limit * 5)
    window = int(current_app.config["LOGIN_RATE_WINDOW"])
    # Count the account, not the spelling: "0770 123 4567" and "+9647701234567" share one
    # counter, so writing a number differently buys no extra guesses.
    try:
        name = parse_identifier(identifier)[1]
    except ValidationFailed:
        name = identifier.strip().lower()
    out = [(ratelimit.Rule(LOGIN_NAMESPACE, limit, window), "id:" + name[:250])]
    if address:
        out.append((ratelimit.Rule(LOGIN_NAMESPACE, per_address, window),
                    "addr:" + address[:60]))
    return out


def attempt_login(identifier: str, password: str, *,
                  client_address: str | None) -> User | InvalidCredentials:
    """Check a login name (e-mail or mobile) and password: the user, or the failure.

    A failure is returned, not raised, so that the caller's unit of work commits its
    audit record (`auth.login_failed`) before the caller raises it: a refused guess must
    stay on the record although the login fails. Failed attempts are counted per name
    and per address (app.ratelimit, outside the database); once either is at its limit
    the attempt is refused before the password is looked at. On success records the
    login time, upgrades an outdated hash and audits `auth.login` (flushed). Raises
    RateLimited (with retry_after), having written nothing.
    """
    counters = login_limits(identifier or "", client_address)
    waits = [a.reset for a in (ratelimit.peek(rule, key) for rule, key in counters)
             if not a.allowed]
    if waits:
        # Not audited: a flood of refused attempts would otherwise flood the log too.
        raise RateLimited(TOO_MANY, retry_after=max(waits))
    user = _find_by_identifier(identifier)
    if user is None:
        _verify(_dummy_hash(), password or "")  # same work as a real check: no timing hint
        ok = False
    else:
        ok = _verify(user.password_hash, password or "") and user.active
    if not ok:
        for rule, key in counters:
            ratelimit.hit(rule, key)
        record_audit("auth.login_failed", object_type="user",
                     object_id=user.id if user else None,
                     actor_id=None,
                     details={"login_name": (identifier or "").strip()[:100]})
        db.flush()
        return InvalidCredentials(BAD_LOGIN)
    assert user is not None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    rule, key = counters[0]
    ratelimit.clear(rule, key)
    record_audit("auth.login", object_type="user", object_id=user.id, actor_id=user.id)
    db.flush()
    return user


def authenticate(identifier: str, password: str, *, client_address: str | None) -> User:
    """`attempt_login`, raising the failure: InvalidCredentials (one message for an
    unknown name and a wrong password) or RateLimited. Flushes; a caller that must keep
    the failure's audit record although the login fails uses `attempt_login`."""
    outcome = attempt_login(identifier, password, client_address=client_address)
    if isinstance(outcome, InvalidCredentials):
        raise outcome
    return outcome


def log_out(user_id: int) -> None:
    """End every session of `user_id` on the server: rotates the session token that
    sessions and remember-me cookies carry, so a copied cookie stops working. This ends
    the user's sessions on every device, not only the one logging out. Audits
    `auth.logout`. The view also clears the browser's own cookies (flask-login's
    logout_user). Raises NotFound."""
    _get_user(user_id).rotate_session_token()
    record_audit("auth.logout", object_type="user", object_id=user_id, actor_id=user_id)
    db.flush()


NOTIFY_CHANNELS = {"both": (True, True), "email": (True, False), "sms": (False, True),
                   "none": (False, False)}


def notification_channels(user: User) -> str:
    """The citizen's choice of channels as the account page names it (both, email,
    sms, none)."""
    chosen = (bool(user.notify_by_email), bool(user.notify_by_sms))
    return next(k for k, v in NOTIFY_CHANNELS.items() if v == chosen)


def set_notification_channels(user_id: int, choice: str) -> User:
    """Record on which channels the citizen is told of their orders and parcels
    (`both`, `email`, `sms` or `none`); audited when it changes. Flushes. Raises
    ValidationFailed for another choice."""
    if choice not in NOTIFY_CHANNELS:
        msg = _l("Choose how you want to be told.")
        raise ValidationFailed(msg, fields={"channels": msg})
    user = _get_user(user_id)
    before = notification_channels(user)
    user.notify_by_email, user.notify_by_sms = NOTIFY_CHANNELS[choice]
    db.flush()
    if before != choice:
        record_audit("auth.notification_channels", object_type="user", object_id=user.id,
                     actor_id=user.id, details={"before": before, "after": choice})
    return user


def change_password(user_id: int, current_password: str, new_password: str) -> User:
    """Replace a user's password after checking the current one.

    Rotates the session token, which ends every other session of this user (remember-me
    cookies included); the caller logs the current session in again with the new token.
    Audits `auth.password_change`. Raises ValidationFailed (field `current_password`)
    or WeakPassword (field `new_password`); nothing changes then.
    """
    user = _get_user(user_id)
    if not _verify(user.password_hash, current_password or ""):
        msg = _l("Your current password is not correct.")
        raise ValidationFailed(msg, fields={"current_password": msg})
    _check_password_strength(new_password, "new_password")
    user.password_hash = hash_password(new_password)
    user.rotate_session_token()
    record_audit("auth.password_change", object_type="user", object_id=user.id,
                 actor_id=user.id)
    db.flush()
    return user


def person_details(full_name: str | None, email: str | None,
                   phone: str | None) -> tuple[str, str | None, str | None]:
    """A staff account's name, e-mail and mobile as stored: trimmed, normalised, and at
    least one way to log in. Raises ValidationFailed keyed `full_name`, `email`, `phone`."""
    full_name = (full_name or "").strip()
    if not full_name:
        msg = _l("Enter the person's name.")
        raise ValidationFailed(msg, fields={"full_name": msg})
    email = normalise_email(email, "email") if email and email.strip() else None
    phone = normalise_phone(phone, "phone") if phone and phone.strip() else None
    if not email and not phone:
        msg = _l("Give an e-mail address or a mobile number to log in with.")
        raise ValidationFailed(msg, fields={"email": msg})
    return full_name, email, phone


def create_user(full_name: str, *, password: str, roles: Iterable[Role | str],
                email: str | None = None, phone: str | None = None,
                post_office_code: str | None = None, actor_id: int | None = None,
                password_hash: str | None = None) -> User:
    """Create an account with any roles (staff accounts from the back office or the CLI).

    `password_hash`: hash_password(password) made already, which the caller vouches for
    (the demo seeders hash their one public demo password once, not once per account:
    argon2id costs half a second each on a loaded machine).

    A clerk must belong to a post office (`post_office_code`). Audits `auth.user_create`.
    Raises ValidationFailed (name, e-mail, phone, post office), UnknownRole,
    WeakPassword, PostOfficeRequired or DuplicateAccount; nothing is written then.
    Field errors are keyed `full_name`, `email`, `phone`, `password`, `roles`,
    `post_office`.
    """
    full_name, email, phone = person_details(full_name, email, phone)
    wanted = _parse_roles(roles)
    _check_password_strength(password)
    office = _post_office_by_code(post_office_code) if post_office_code else None
    if Role.CLERK in wanted and office is None:
        msg = _l("A postal clerk must belong to a post office.")
        raise PostOfficeRequired(msg, fields={"post_office": msg})
    _refuse_duplicates(email, phone, "email", "phone")
    user = User(full_name=full_name[:200], email=email, phone=phone,
                password_hash=password_hash or hash_password(password), post_office=office)
    for role in wanted:
        _add_role(user, role)
    _insert_new_account(user, "email", "phone")
    record_audit("auth.user_create", object_type="user", object_id=user.id, actor_id=actor_id,
                 details={"roles": [r.value for r in wanted],
                          "post_office": office.code if office else None,
                          "before": None, "after": person_snapshot(user)})
    return user


def grant_role(user_id: int, role: Role | str, *, actor_id: int | None = None,
               post_office_code: str | None = None) -> User:
    """Give `role` to a user; `post_office_code` also assigns the branch (needed for a
    clerk who has none). Audits `auth.role_grant`. Raises NotFound, UnknownRole,
    PostOfficeRequired, ValidationFailed (unknown office) or Conflict (already held).
    """
    user = _get_user(user_id)
    (wanted,) = _parse_roles([role], "role")
    if post_office_code:
        user.post_office = _post_office_by_code(post_office_code)
    if wanted == Role.CLERK and user.post_office is None:
        msg = _l("A postal clerk must belong to a post office.")
        raise PostOfficeRequired(msg, fields={"post_office": msg})
    if wanted in user.roles:
        # The office assigned above is undone with the caller's unit of work.
        msg = _l("%(name)s already has the role %(role)s.", name=user.full_name,
                 role=role_label(wanted))
        raise Conflict(msg, fields={"role": msg})
    _add_role(user, wanted)
    record_audit("auth.role_grant", object_type="user", object_id=user.id, actor_id=actor_id,
                 details={"role": wanted.value,
                          "post_office": user.post_office.code if user.post_office else None})
    db.flush()
    return user


def revoke_role(user_id: int, role: Role | str, *, actor_id: int | None = None) -> User:
    """Take `role` away from a user. Audits `auth.role_revoke`.

    Raises NotFound, UnknownRole, ValidationFailed (role not held) or Conflict (an admin
    removing their own admin role; LastAdministrator when no other active admin would
    remain, checked under a lock of the admins' rows).
    """
    user = _get_user(user_id)
    (wanted,) = _parse_roles([role], "role")
    row = next((r for r in user.role_rows if r.role == wanted.value), None)
    if row is None:
        msg = _l("%(name)s does not have the role %(role)s.", name=user.full_name,
                 role=role_label(wanted))
        raise ValidationFailed(msg, fields={"role": msg})
    if wanted == Role.ADMIN and actor_id == user.id:
        msg = _l("You cannot remove your own administrator role.")
        raise Conflict(msg, fields={"role": msg})
    if wanted == Role.ADMIN:
        refuse_losing_last_admin(user.id, "role")
    user.role_rows.remove(row)
    record_audit("auth.role_revoke", object_type="user", object_id=user.id, actor_id=actor_id,
                 details={"role": wanted.value})
    db.flush()
    return user


def validate_post_office(code: str, name_ar: str, name_en: str, governorate_code: str,
                         kind: str, opening_hours: str = "") -> dict[str, object]:
    """The field errors of a post office's details (empty when all is well)."""
    errors: dict[str, object] = {}
    if not code or len(code) > 16 or not all(c.isascii() and (c.isalnum() or c == "-")
                                              for c in code):
        errors["code"] = _l("Enter a code of 1 to 16 letters, digits or dashes.")
    if not (name_ar or "").strip():
        errors["name_ar"] = _l("Enter the Arabic name.")
    if not (name_en or "").strip():
        errors["name_en"] = _l("Enter the English name.")
    if governorate(governorate_code or "") is None:
        errors["governorate"] = _l("Choose a governorate.")
    if kind not in {k.value for k in OfficeKind}:
        errors["kind"] = _l("Choose what kind of office this is.")
    if len(opening_hours or "") > 300:
        errors["opening_hours"] = _l("Use at most %(n)s characters.", n=300)
    return errors


def create_post_office(code: str, name_ar: str, name_en: str, governorate_code: str, *,
                       address: str = "", is_exchange_office: bool = False,
                       kind: str | None = None, opening_hours: str = "",
                       actor_id: int | None = None) -> PostOffice:
    """Open a post office (branch). `kind` is an OfficeKind (an office of exchange when
    `is_exchange_office`, else a counter, by default). Audits
    `auth.post_office_create` with the office's details as `after`.

    Raises ValidationFailed (empty code or names, unknown governorate or kind) or
    Conflict (code in use); nothing is written then. Field errors are keyed `code`,
    `name_ar`, `name_en`, `governorate`, `kind`, `opening_hours`.
    """
    code = (code or "").strip().upper()
    kind = (kind or (OfficeKind.EXCHANGE if is_exchange_office else OfficeKind.COUNTER)).strip()
    errors = validate_post_office(code, name_ar, name_en, governorate_code, kind,
                                  opening_hours)
    if errors:
        raise ValidationFailed(next(iter(errors.values())), fields=errors)
    if db.scalar(select(PostOffice.id).where(PostOffice.code == code)) is not None:
        msg = _l("A post office with the code %(code)s already exists.", code=code)
        raise Conflict(msg, fields={"code": msg})
    office = PostOffice(code=code, name_ar=name_ar.strip(), name_en=name_en.strip(),
                        governorate=governorate_code, address=(address or "").strip(),
                        is_exchange_office=is_exchange_office or kind == OfficeKind.EXCHANGE,
                        kind=kind, opening_hours=(opening_hours or "").strip())
    try:
        # A lost race on the unique code: undo only this insert, report it clearly.
        with savepoint():
            db.add(office)
            db.flush()
    except IntegrityError:
        msg = _l("A post office with the code %(code)s already exists.", code=code)
        raise Conflict(msg, fields={"code": msg}) from None
    record_audit("auth.post_office_create", object_type="post_office", object_id=office.id,
                 actor_id=actor_id, details={"code": code, "governorate": governorate_code,
                                             "before": None,
                                             "after": post_office_snapshot(office)})
    return office


def person_snapshot(user: User) -> dict[str, object]:
    """A person's details as the audit log keeps them (before and after a change)."""
    return {"full_name": user.full_name, "email": user.email, "phone": user.phone,
            "post_office": user.post_office.code if user.post_office else None,
            "roles": sorted(r.value for r in user.roles), "active": user.active}


def post_office_snapshot(office: PostOffice) -> dict[str, object]:
    """An office's details as the audit log keeps them (before and after a change)."""
    return {"code": office.code, "name_ar": office.name_ar, "name_en": office.name_en,
            "governorate": office.governorate, "address": office.address,
            "kind": office.kind, "is_exchange_office": office.is_exchange_office,
            "opening_hours": office.opening_hours,
            "closed": office.closed_at is not None}


# -- reads for the back office -------------------------------------------------------------

def find_users(query: str = "", *, limit: int = 100,
               post_office_id: int | None = None) -> list[User]:
    """Users whose name, e-mail or phone contains `query` (all when empty), newest first;
    only those placed at `post_office_id` when it is given."""
    stmt = select(User).order_by(User.id.desc()).limit(limit)
    if post_office_id is not None:
        stmt = stmt.where(User.post_office_id == post_office_id)
    q = (query or "").strip()
    if q:
        like = f"%{q.lower()}%"
        digits = "".join(ch for ch in q if ch.isdigit())
        conds = [func.lower(User.full_name).like(like), User.email.like(like)]
        if digits:
            # "0770 123" finds +964770123...: compare without the trunk zero.
            conds.append(User.phone.like(f"%{digits.lstrip('0')}%"))
        stmt = stmt.where(or_(*conds))
    return list(db.scalars(stmt))


def post_offices(*, open_only: bool = False) -> list[PostOffice]:
    """Every post office (only those not closed when `open_only`), by code."""
    stmt = select(PostOffice).order_by(PostOffice.code)
    if open_only:
        stmt = stmt.where(PostOffice.closed_at.is_(None))
    return list(db.scalars(stmt))
