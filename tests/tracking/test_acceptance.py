"""Counter acceptance: number, price, payment through payments, EMA, label-ready parcel."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.database import db
from app.errors import DomainError, ValidationFailed
from tests.tracking.helpers import domestic_draft
from tracking import s10
from tracking.models import Parcel, ParcelEvent
from tracking.services.parcels import PaymentChoice, accept_at_counter, postage_for


def _payments():
    from payments.models import Payment

    return db.scalars(select(Payment)).all()


def test_postage_grows_with_weight_and_size(app_ctx):
    # Postage is read from the table (empty here: the built-in tariff it is seeded from).
    assert postage_for("parcel", 1000) == 5000
    assert postage_for("parcel", 1001) == 6000
    assert postage_for("parcel", 2600) == 9000
    # 60 x 50 x 40 cm weighs 24 kg by volume
    assert postage_for("parcel", 2000, 60, 50, 40) == postage_for("parcel", 24000)
    assert postage_for("ems", 400) == 10000


def test_clerk_accepts_a_parcel_for_cash(offices, clerk):
    parcel = accept_at_counter(domestic_draft(), clerk_id=clerk.id, office_id=offices[0].id,
                               payment=PaymentChoice("cash"), acceptance_key="form-1")
    assert s10.validate(parcel.tracking_number).ok
    assert parcel.tracking_number.startswith("CP") and parcel.tracking_number.endswith("IQ")
    assert parcel.postage_amount == 6000 and parcel.status == "picked_up"
    [payment] = _payments()
    assert (payment.amount, payment.currency, payment.method, payment.status) == (
        6000, "IQD", "cash", "succeeded")
    assert (payment.reference_kind, payment.reference_id) == ("postage", str(parcel.id))
    [event] = db.scalars(select(ParcelEvent)).all()
    assert (event.code, event.office_id, event.actor_id) == ("EMA", offices[0].id, clerk.id)


def test_the_same_form_submitted_twice_makes_one_parcel_and_one_payment(offices, clerk):
    first = accept_at_counter(domestic_draft(), clerk_id=clerk.id, office_id=offices[0].id,
                              payment=PaymentChoice("cash"), acceptance_key="form-2")
    again = accept_at_counter(domestic_draft(), clerk_id=clerk.id, office_id=offices[0].id,
                              payment=PaymentChoice("cash"), acceptance_key="form-2")
    assert first.id == again.id
    assert db.scalar(select(func.count()).select_from(Parcel)) == 1
    assert len(_payments()) == 1


@pytest.mark.parametrize(("change", "field"), [
    (dict(weight_grams=0), "weight_grams"),
    (dict(weight_grams=31000), "weight_grams"),
    (dict(service="registered", weight_grams=2500), "weight_grams"),
    (dict(length_cm=-1), "length_cm"),
    (dict(service="pigeon"), "service"),
])
def test_bad_drafts_are_refused_field_by_field(offices, clerk, change, field):
    with pytest.raises(ValidationFailed) as err:
        accept_at_counter(domestic_draft(**change), clerk_id=clerk.id,
                          office_id=offices[0].id, payment=PaymentChoice("cash"))
    assert field in err.value.fields
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Parcel)) == 0
    assert _payments() == []


def test_recipient_needs_phone_and_governorate(offices, clerk):
    draft = domestic_draft()
    draft.recipient.phone = ""
    draft.recipient.governorate = "IQ-XX"
    with pytest.raises(ValidationFailed) as err:
        accept_at_counter(draft, clerk_id=clerk.id, office_id=offices[0].id,
                          payment=PaymentChoice("cash"))
    assert {"recipient_phone", "recipient_governorate"} <= set(err.value.fields)


@pytest.mark.commits  # wrong PIN attempts are kept on a connection of their own
def test_post_card_pays_postage_and_a_wrong_pin_accepts_nothing(offices, clerk, fast_pins):
    from payments import cards
    from payments.services import receive_cash

    card = cards.issue_card(holder_name="Ahmed", national_id="199012345678",
                            mobile="+9647701234567", pin="2468", user_id=None,
                            clerk_id=clerk.id, office_id=offices[0].id)
    receive_cash(office_id=offices[0].id, clerk_id=clerk.id, amount=50_000, currency="IQD",
                 reference_kind="post_card", reference_id=str(card.id), purpose="card_topup",
                 idempotency_key="topup-1")
    db.commit()
    with pytest.raises(DomainError):
        accept_at_counter(domestic_draft(service="ems"), clerk_id=clerk.id,
                          office_id=offices[0].id,
                          payment=PaymentChoice("post_card", card.number, "0000"))
    db.rollback()
    assert db.scalar(select(func.count()).select_from(Parcel)) == 0

    parcel = accept_at_counter(domestic_draft(service="ems"), clerk_id=clerk.id,
                               office_id=offices[0].id,
                               payment=PaymentChoice("post_card", card.number, "2468"))
    assert parcel.tracking_number.startswith("EE") and parcel.payment_method == "post_card"
    from payments.models import Account

    db.expire_all()
    assert db.get(Account, card.account_id).balance == 50_000 - parcel.postage_amount
