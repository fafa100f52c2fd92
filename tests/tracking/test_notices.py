"""A parcel's recipient is told when it is out for delivery, ready for pickup, could not be
delivered, and when duty is paid: by the addresses on the parcel (Arabic) or, when an
account has that mobile, in the account's language on the channels it chose."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import notify
from app.auth.services import create_user
from app.database import db
from app.notify import Notification
from tests.tracking.helpers import domestic_draft, run_jobs
from tracking.services import events as ev
from tracking.services.parcels import preadvise

RECIPIENT = "+9647801234567"  # domestic_draft's recipient, 07801234567


@pytest.fixture(autouse=True)
def _clear():
    notify.sent_messages.clear()
    yield
    notify.sent_messages.clear()


def _scan(number, offices, clerk, code, **kw):
    out = ev.record_scan(number=number, code=code, office_id=offices[1].id,
                         actor_id=clerk.id, **kw)
    assert out.outcome == "accepted", out.reason
    run_jobs()


def _told(kind):
    return [m for m in notify.sent_messages if m.get("kind") == kind]


@pytest.mark.parametrize(("codes", "kind", "words"), [
    (("EMA", "EDG"), "parcel_out_for_delivery", "في الطريق إليك اليوم"),
    (("EMA", "EDH"), "parcel_ready_for_pickup", "مكتب بريد البصرة"),
])
def test_recipient_without_account_is_told_by_sms_in_arabic(offices, clerk, codes, kind,
                                                            words):
    number = preadvise(domestic_draft()).tracking_number
    for code in codes:
        _scan(number, offices, clerk, code)
    [sms] = _told(kind)
    # The parcel gives a mobile and no e-mail: one SMS, in Arabic (no account to ask).
    assert (sms["channel"], sms["phone"], sms["locale"]) == ("sms", RECIPIENT, "ar")
    assert number in sms["body"] and words in sms["body"]
    assert len(notify.sent_messages) == 1


def test_failed_delivery_reaches_the_account_holder_in_english_by_the_channel_chosen(
        offices, clerk):
    user = create_user("Fatima Mousawi", email="fatima@example.iq", phone="07801234567",
                       password="correct horse 42", roles=("shopper",))
    user.locale, user.notify_by_sms = "en", False  # e-mail only
    db.commit()
    number = preadvise(domestic_draft()).tracking_number
    _scan(number, offices, clerk, "EMA")
    _scan(number, offices, clerk, "EDG")
    notify.sent_messages.clear()
    _scan(number, offices, clerk, "EMH", reason_code="no_one_home",
          action_code="held_at_office")
    [mail] = notify.sent_messages
    assert (mail["kind"], mail["channel"], mail["email"]) == (
        "parcel_delivery_failed", "email", "fatima@example.iq")
    assert "could not deliver" in mail["subject"] and number in mail["body"]
    row = db.scalar(select(Notification).where(Notification.kind == "parcel_delivery_failed"))
    assert (row.status, row.user_id, row.event_name) == ("sent", user.id,
                                                         "parcel.status_changed")


def test_steps_nobody_is_told_of_send_nothing(offices, clerk):
    number = preadvise(domestic_draft()).tracking_number
    _scan(number, offices, clerk, "EMA")
    _scan(number, offices, clerk, "EDD")
    assert notify.sent_messages == []
