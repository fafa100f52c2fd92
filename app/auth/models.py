"""Users, their roles, and the post offices clerks work at."""

from __future__ import annotations

import enum
import secrets
from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint
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
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str | None] = mapped_column(String(254), unique=True)
    phone: Mapped[str | None] = mapped_column(String(16), unique=True)  # E.164, +9647XXXXXXXXX
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    # flask-login's alternative token: the session stores this, not the id, so rotating it
    # (on password change) logs out every other session.
    session_token: Mapped[str] = mapped_column(
        String(64), unique=True, default=lambda: secrets.token_urlsafe(32)
    )
    post_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    locale: Mapped[str] = mapped_column(String(5), default="ar")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    post_office: Mapped[PostOffice | None] = relationship(lazy="joined")
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )

    def get_id(self) -> str:
        return self.session_token

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


class UserRole(Base):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    role: Mapped[str] = mapped_column(String(32))
    granted_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(back_populates="role_rows")
