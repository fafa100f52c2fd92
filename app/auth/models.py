"""Users, their roles, and the post offices clerks work at."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from flask_babel import lazy_gettext as _l
from flask_login import AnonymousUserMixin, UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.database import Base, utcnow


class Role(enum.StrEnum):
    SHOPPER = "shopper"
    MERCHANT = "merchant"
    CLERK = "clerk"
    CUSTOMS_OFFICER = "customs_officer"
    PROCUREMENT = "procurement"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


BACKOFFICE_ROLES = frozenset(
    {Role.CLERK, Role.CUSTOMS_OFFICER, Role.PROCUREMENT, Role.SUPERVISOR, Role.ADMIN}
)
# The same roles in a fixed order, for role_required(*STAFF_ROLES) and listings.
STAFF_ROLES = tuple(r for r in Role if r in BACKOFFICE_ROLES)

# Staff roles are granted by an admin; shopper and merchant accounts come from sign-up
# or the merchant onboarding, but an admin may grant them too.
_ROLE_LABELS = {
    Role.SHOPPER: _l("Shopper"),
    Role.MERCHANT: _l("Merchant"),
    Role.CLERK: _l("Postal clerk"),
    Role.CUSTOMS_OFFICER: _l("Customs officer"),
    Role.PROCUREMENT: _l("Procurement officer"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.ADMIN: _l("Administrator"),
}


class OfficeKind(enum.StrEnum):
    """What a post office does in the network."""

    COUNTER = "counter"  # a branch where the public is served
    SORTING = "sorting"  # a sorting centre
    EXCHANGE = "exchange"  # an office of exchange: international mail and customs
    DELIVERY = "delivery"  # a delivery office: carriers go out from it


_OFFICE_KIND_LABELS = {
    OfficeKind.COUNTER: _l("Counter office"),
    OfficeKind.SORTING: _l("Sorting centre"),
    OfficeKind.EXCHANGE: _l("Office of exchange"),
    OfficeKind.DELIVERY: _l("Delivery office"),
}


def office_kind_label(kind: OfficeKind | str) -> str:
    """The kind of office in the visitor's language."""
    try:
        return str(_OFFICE_KIND_LABELS[OfficeKind(kind)])
    except ValueError:
        return str(kind)


def role_label(role: Role | str) -> str:
    """The role's name for people, in the visitor's language (e.g. "موظف بريد")."""
    try:
        return str(_ROLE_LABELS[Role(role)])
    except ValueError:
        return str(role)


class PostOffice(Base):
    """A branch of Iraqi Post: where parcels are accepted, cash is taken, parcels wait."""

    __tablename__ = "post_offices"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    governorate: Mapped[str] = mapped_column(String(8))  # ISO 3166-2 code, or IQ-HA
    address: Mapped[str] = mapped_column(String(500), default="")
    # The office of exchange receives and dispatches international mail (and customs).
    is_exchange_office: Mapped[bool] = mapped_column(default=False)
    kind: Mapped[str] = mapped_column(String(16), default=OfficeKind.COUNTER.value,
                                      server_default=OfficeKind.COUNTER.value)
    # Free text as people write it ("Sat-Thu 08:00-14:00"), shown as written.
    opening_hours: Mapped[str] = mapped_column(String(300), default="", server_default="")
    # A closed office keeps its rows (parcels, drawers and audit point at it) but is no
    # longer offered for pickup nor chosen for staff.
    closed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en

    def hours(self, locale: str) -> str:
        """The opening hours in the page's language: written "Arabic / English" (the
        admin form asks for both), each page shows its half; one text is shown as is."""
        arabic, sep, english = (self.opening_hours or "").partition(" / ")
        if not sep:
            return arabic.strip()
        return (arabic if locale == "ar" else english).strip()

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16), unique=True)  # E.164, +9647XXXXXXXXX
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    # flask-login's alternative token: the session and the remember-me cookie hold this,
    # not the id, so rotating it (at logout and on password change) ends every session
    # of the user, copied cookies included.
    session_token: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_urlsafe(32)
    )
    post_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    locale: Mapped[str] = mapped_column(String(5), default="ar")
    # The channels the citizen chose for notifications (app.notify); both by default,
    # each used only where the account has the address.
    notify_by_email: Mapped[bool] = mapped_column(default=True, server_default=true())
    notify_by_sms: Mapped[bool] = mapped_column(default=True, server_default=true())
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    post_office: Mapped[PostOffice | None] = relationship(lazy="joined")
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    def get_id(self) -> str:
        return self.session_token

    def rotate_session_token(self) -> None:
        """Give the user a new session token: every session holding the old one ends."""
        self.session_token = secrets.token_urlsafe(32)

    @property
    def is_active(self) -> bool:  # flask-login
        return self.active

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(r.role) for r in self.role_rows)

    def has_role(self, *roles: Role | str) -> bool:
        return bool(self.roles & {Role(r) for r in roles})

    @property
    def login_name(self) -> str:
        return self.email or self.phone or f"user-{self.id}"

    @property
    def is_staff(self) -> bool:
        return bool(self.roles & BACKOFFICE_ROLES)

    def role_labels(self) -> list[str]:
        return [role_label(r) for r in Role if r in self.roles]


class AnonymousUser(AnonymousUserMixin):
    """The visitor who has not logged in: holds no role, so templates can ask safely."""

    roles: frozenset[Role] = frozenset()
    is_staff = False

    def has_role(self, *roles: Role | str) -> bool:
        return False


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="role_rows")


class PendingRegistration(Base):
    """A sign-up waiting for the code sent to its e-mail address or mobile number.

    No account exists until the code comes back from the browser that asked for it, so
    an address is never claimed by someone who cannot read its messages. A sign-up for
    an address that already has an account gets a row too (with a code nobody is sent),
    so the two look the same from outside.
    """

    __tablename__ = "pending_registrations"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the browser's session holds: random, so nothing can be counted or guessed.
    token: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_urlsafe(32)
    )
    full_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    locale: Mapped[str] = mapped_column(String(5), default="ar")
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 of the code, hex
    attempts: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class PasswordReset(Base):
    """A one-time code to set a new password, asked for by its holder ("forgot
    password") or sent by an admin. The message carries the code and a link holding
    `token`; the code is stored only as an HMAC, works once, for a limited time and a
    limited number of tries.
    """

    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What the link and the browser's session hold: random, so nothing can be counted.
    token: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_urlsafe(32)
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         index=True)
    code_hash: Mapped[str] = mapped_column(String(64))  # HMAC-SHA256 of the code, hex
    attempts: Mapped[int] = mapped_column(default=0)
    expires_at: Mapped[datetime] = mapped_column(index=True)
    used_at: Mapped[datetime | None]
    # The admin or supervisor who sent it; None when the holder asked.
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
