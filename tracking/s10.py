"""UPU S10 item identifiers: two letters, 8-digit serial, check digit, country code.

`validate` says why a number is not a valid S10 (so a clerk or a visitor can fix a typo);
`next_identifier` hands out a fresh Iraqi number from a database sequence (PostgreSQL) or
a counter row (SQLite), so two processes never get the same serial and none is reused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from babel import Locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import Sequence, String, select, text, update
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, db
from app.errors import Conflict
from app.numbers import ascii_digits

WEIGHTS = (8, 6, 4, 2, 3, 5, 9, 7)
COUNTRY = "IQ"
MAX_SERIAL = 99_999_999
# J, K, S, T and W are reserved by the UPU and are not issued as service indicators.
RESERVED_INDICATORS = frozenset("JKSTW")
_SHAPE = re.compile(r"^[A-Z]{2}[0-9]{9}[A-Z]{2}$")
# A typed or scanned number may carry spaces, dashes or dots between its groups.
_SEPARATORS = re.compile(r"[\s\-.\u200f\u200e]+")

# The serial is shared by all services: one sequence means one place that can run out.
s10_serial_seq = Sequence("s10_serial_seq", start=1, minvalue=1, maxvalue=MAX_SERIAL,
                          metadata=Base.metadata)


class S10Counter(Base):
    """Where the serial counter lives on SQLite (which has no sequences)."""

    __tablename__ = "s10_counters"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class SerialsExhausted(Conflict):
    code = "s10_serials_exhausted"


def check_digit(serial: str) -> int:
    """The S10 check digit of an 8-digit serial (weights 8,6,4,2,3,5,9,7; mod 11)."""
    if len(serial) != 8 or not serial.isdigit():
        raise ValueError("an S10 serial is exactly 8 digits")
    s = sum(int(d) * w for d, w in zip(serial, WEIGHTS, strict=True))
    c = 11 - (s % 11)
    if c == 10:
        return 0
    if c == 11:
        return 5
    return c


def compose(indicator: str, serial: int, country: str = COUNTRY) -> str:
    """The full identifier for a service indicator and serial number."""
    digits = f"{serial:08d}"
    return f"{indicator}{digits}{check_digit(digits)}{country}"


def normalise(raw: str) -> str:
    """Upper-case a typed number, drop the spaces and dashes people put in it, and read
    Arabic-Indic digits (typed on an Arabic keyboard) as the digits they are."""
    return _SEPARATORS.sub("", ascii_digits(raw or "")).upper()


@dataclass(frozen=True)
class Validity:
    number: str
    ok: bool
    reason_code: str | None = None
    reason: str | None = None  # lazy-translated, for people

    def __bool__(self) -> bool:
        return self.ok


@lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    return frozenset(c for c in Locale("en").territories if len(c) == 2 and c.isalpha())


def validate(raw: str) -> Validity:
    """Check a number as typed: shape, service indicator, check digit and country.

    Returns a Validity with a machine reason_code (too_long, format, reserved_indicator,
    check_digit, country) and a sentence for people when the number is not valid.
    """
    if raw is not None and len(raw) > 40:
        return Validity(raw[:40], False, "too_long",
                        _l("A tracking number has 13 characters, like EE123456785IQ."))
    number = normalise(raw or "")
    if not _SHAPE.match(number):
        return Validity(number, False, "format",
                        _l("A tracking number has 2 letters, 9 digits and 2 letters, "
                           "like EE123456785IQ."))
    if number[0] in RESERVED_INDICATORS:
        return Validity(number, False, "reserved_indicator",
                        _l("A tracking number cannot start with the letter %(letter)s.",
                           letter=number[0]))
    if int(number[10]) != check_digit(number[2:10]):
        return Validity(number, False, "check_digit",
                        _l("This tracking number has a typing mistake: its check digit "
                           "does not match. Please check each character."))
    if number[11:] not in _countries():
        return Validity(number, False, "country",
                        _l("%(code)s is not a country code.", code=number[11:]))
    return Validity(number, True)


def next_serial() -> int:
    """Take the next serial from the database; the caller's transaction keeps it.

    On PostgreSQL the sequence is never rolled back, so a failed acceptance burns a serial
    rather than risking its reuse. Raises SerialsExhausted after 99,999,999.
    """
    bind = db.get_bind()
    if bind.dialect.name == "postgresql":
        try:
            return int(db.execute(select(s10_serial_seq.next_value())).scalar_one())
        except Exception as exc:  # the sequence refuses to pass maxvalue
            if "maxvalue" in str(exc).lower() or "reached maximum" in str(exc).lower():
                raise SerialsExhausted(_l("No tracking numbers are left.")) from exc
            raise
    # SQLite: one counter row, incremented atomically under SQLite's write lock.
    row = db.execute(
        update(S10Counter).where(S10Counter.name == "s10")
        .values(value=S10Counter.value + 1).returning(S10Counter.value)
    ).scalar_one_or_none()
    if row is None:
        db.execute(text("INSERT OR IGNORE INTO s10_counters (name, value) VALUES ('s10', 0)"))
        return next_serial()
    if row > MAX_SERIAL:
        raise SerialsExhausted(_l("No tracking numbers are left."))
    return int(row)


def next_identifier(indicator: str) -> str:
    """A fresh Iraqi S10 identifier for the service `indicator` (e.g. "EE")."""
    if len(indicator) != 2 or not indicator.isalpha() or indicator[0] in RESERVED_INDICATORS:
        raise ValueError(f"bad service indicator {indicator!r}")
    return compose(indicator.upper(), next_serial())
