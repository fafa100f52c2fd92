"""Closing a post office's cash drawer for the day: counted cash, difference, signature.

The clerk counts the cash at the end of the business day (Baghdad time) and enters it;
`close_day` compares it with what the ledger says the drawer holds, writes one signed
`DrawerDay` and audits it. From then on the ledger refuses any cash posting into that
drawer on that day (`payments.ledger.post_entry` asks `is_closed`): a cash operation
after the close is refused with a clear message rather than moved silently to the next
day, so the paper the clerk signed and the ledger always agree. A mistake found after
the close is corrected by a new ledger entry on an open day, never by an edit.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, date, datetime

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit import record_audit
from app.database import db, utcnow
from app.errors import ValidationFailed
from app.i18n import BAGHDAD
from payments import ledger
from payments.errors import DrawerAlreadyClosed
from payments.models import DrawerDay

# Larger than any drawer could hold; keeps a typo of many zeros out of the table.
MAX_COUNTED = 10**12


def business_date(when: datetime | None = None) -> date:
    """The drawer's business day of `when` (now by default): the date in Baghdad."""
    return (when or utcnow()).astimezone(BAGHDAD).date()


def _figures(row: DrawerDay) -> bytes:
    closed_at = row.closed_at.astimezone(UTC).isoformat(timespec="microseconds")
    return "|".join(str(v) for v in (
        "drawer-day-v1", row.account_id, row.office_id, row.currency,
        row.business_date.isoformat(), row.expected, row.counted, row.difference,
        row.closed_by_id, closed_at, row.note)).encode()


def sign(row: DrawerDay) -> str:
    """HMAC-SHA256 (hex) of the row's figures with the app's SECRET_KEY."""
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, _figures(row), hashlib.sha256).hexdigest()


def verify(row: DrawerDay) -> bool:
    """Whether the row's figures are the ones that were signed when the day closed."""
    return hmac.compare_digest(sign(row), row.signature or "")


def is_closed(account_id: int, day: date) -> bool:
    """Whether the drawer account's business day `day` is closed."""
    return db.scalar(select(DrawerDay.id).where(DrawerDay.account_id == account_id,
                                                DrawerDay.business_date == day)) is not None


def closed_day(office_id: int, day: date, currency: str = "IQD") -> DrawerDay | None:
    """The closed DrawerDay of the office's drawer for `day`, or None while it is open."""
    return db.scalar(select(DrawerDay).where(DrawerDay.office_id == office_id,
                                             DrawerDay.currency == currency,
                                             DrawerDay.business_date == day))


@dataclass(frozen=True)
class Count:
    expected: int
    counted: int

    @property
    def difference(self) -> int:
        return self.counted - self.expected


def parse_counted(raw: str | None) -> int:
    """The counted cash a clerk typed (whole dinars, Arabic-Indic digits and thousands
    separators allowed); raises ValidationFailed."""
    from app.numbers import ascii_digits

    text = ascii_digits(raw or "").replace(",", "").replace("٬", "").replace(" ", "").strip()
    if not text.isdigit() or int(text) > MAX_COUNTED:
        raise ValidationFailed(_l("Enter the counted cash as a whole number of dinars, "
                                  "0 or more."), fields={"counted": _l("A whole number.")})
    return int(text)


def close_day(office_id: int, day: date, *, counted: int, clerk_id: int,
              currency: str = "IQD", note: str = "") -> DrawerDay:
    """Close the office drawer's business day `day` with the cash the clerk counted.

    Locks the drawer account (the lock every cash posting takes), so no cash moves
    while the expected amount is read, and a cash posting that was waiting finds the
    day closed. Writes the signed DrawerDay and an audit record. Flushes. Raises
    ValidationFailed (a count below zero or a day in the future) and
    DrawerAlreadyClosed (this day was closed already, also by a concurrent close).
    """
    from payments.services import drawer_report

    if not isinstance(counted, int) or isinstance(counted, bool) or not 0 <= counted <= MAX_COUNTED:
        raise ValidationFailed(_l("Enter the counted cash as a whole number of dinars, "
                                  "0 or more."))
    if day > business_date():
        raise ValidationFailed(_l("A day that has not begun cannot be closed."))
    account = ledger.drawer_account(office_id, currency)
    ledger.lock_accounts([account.id])
    if is_closed(account.id, day):
        raise DrawerAlreadyClosed()
    expected = drawer_report(office_id, day, currency).closing
    row = DrawerDay(account_id=account.id, office_id=office_id, currency=currency,
                    business_date=day, expected=expected, counted=counted,
                    difference=counted - expected, note=(note or "").strip()[:300],
                    closed_by_id=clerk_id, closed_at=utcnow())
    row.signature = sign(row)
    # The unique (account, day) is the last word between two closes that both got here.
    inserted = db.scalar(ledger._insert()(DrawerDay).values(
        account_id=row.account_id, office_id=row.office_id, currency=row.currency,
        business_date=row.business_date, expected=row.expected, counted=row.counted,
        difference=row.difference, note=row.note, closed_by_id=row.closed_by_id,
        closed_at=row.closed_at, signature=row.signature,
    ).on_conflict_do_nothing().returning(DrawerDay.id))
    if inserted is None:
        raise DrawerAlreadyClosed()
    record_audit("drawer.day_closed", object_type="drawer_day", object_id=inserted,
                 actor_id=clerk_id, details={
                     "before": {"state": "open"},
                     "after": {"state": "closed", "office_id": office_id,
                               "business_date": day.isoformat(), "currency": currency,
                               "expected": expected, "counted": counted,
                               "difference": counted - expected}})
    return db.get(DrawerDay, inserted)
