"""Digits as Iraqis type them, and one rule for phone numbers.

An Arabic keyboard types ٠١٢٣٤٥٦٧٨٩ and a Persian or Kurdish one ۰۱۲۳۴۵۶۷۸۹. A PIN, a card
number, a mobile number or a tracking number typed so is the same as its ASCII digits:
it is checked and stored in ASCII, so a holder who chose "7305" pays with "٧٣٠٥". Phone
numbers are read by the `phonenumbers` package (libphonenumber's metadata) everywhere.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.auth.identifiers import format_phone, parse_phone
from app.database import db, unit_of_work
from payments import cards, services
from payments.errors import WrongPin
from payments.models import PostCard
from tests.payments.test_pages import login, person

ARABIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
PERSIAN = str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")


@pytest.mark.parametrize("typed", [
    "07701234567", "0770 123 4567", "0770-123-4567", "+964 770 123 4567", "9647701234567",
    "009647701234567", "٠٧٧٠ ١٢٣ ٤٥٦٧", "+٩٦٤ ۷۷۰ ۱۲۳ ۴۵۶۷", "(0770) 123 4567"])
def test_every_spelling_of_an_iraqi_mobile_is_one_number(typed):
    assert parse_phone(typed) == "+9647701234567"
    assert format_phone(parse_phone(typed)) == "+964 770 123 4567"


@pytest.mark.parametrize("typed", [
    "", "0770 123 456",          # a digit short
    "07001234567",               # no Iraqi network has 070
    "+964 1 717 1234",           # a Baghdad landline: no SMS reaches it
    "+44 7700 900123",           # a British mobile: the SMS gateway reaches Iraqi networks
    "0770abc4567", "٠٧٧٠", "9" * 40])
def test_what_is_not_an_iraqi_mobile_is_refused(typed):
    assert parse_phone(typed) is None


def test_a_parcels_addressee_abroad_may_have_any_countrys_number():
    assert parse_phone("+44 20 7946 0018", iraqi_mobile=False) == "+442079460018"
    assert parse_phone("020 7946 0018", iraqi_mobile=False, region="GB") == "+442079460018"
    assert parse_phone("0212 123 45 67", iraqi_mobile=False, region="TR") == "+902121234567"
    assert parse_phone("+1 555", iraqi_mobile=False) is None


def test_a_card_issued_with_arabic_digits_keeps_ascii_and_pays_with_them(app_ctx, clerk,
                                                                           office):
    with unit_of_work():
        card = cards.issue_card(holder_name="زينب علي", national_id="199012345678",
                                mobile="٠٧٧٠ ١٢٣ ٤٥٦٧", pin="٧٣٠٥", user_id=None,
                                clerk_id=clerk.id, office_id=office.id)
        services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=10_000,
                              currency="IQD", reference_kind="post_card",
                              reference_id=str(card.id), purpose="card_topup",
                              idempotency_key=f"digits-topup-{card.id}")
    assert db.get(PostCard, card.id).mobile == "+9647701234567"
    # The same PIN in three scripts, with the card number in Persian digits.
    for i, pin in enumerate(["7305", "٧٣٠٥", "۷۳۰۵"]):
        paid = services.pay_with_post_card(
            card_number=card.number.translate(PERSIAN), pin=pin, amount=100, currency="IQD",
            reference_kind="parcel", reference_id="RR000000080IQ", purpose="postage",
            idempotency_key=f"digits-{i}", actor_id=clerk.id, at_counter=True)
        assert paid.status == "succeeded"
    # A wrong PIN in Arabic digits is still a wrong PIN.
    with pytest.raises(WrongPin):
        services.pay_with_post_card(
            card_number=card.number, pin="٧٣٠٦", amount=100, currency="IQD",
            reference_kind="parcel", reference_id="RR000000080IQ", purpose="postage",
            idempotency_key="digits-wrong", actor_id=clerk.id, at_counter=True)


def test_a_card_with_a_bad_mobile_is_not_issued(app_ctx, clerk, office):
    from app.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as exc, unit_of_work():
        cards.issue_card(holder_name="علي", national_id="199012345679", mobile="12345",
                         pin="7305", user_id=None, clerk_id=clerk.id, office_id=office.id)
    assert "mobile" in exc.value.fields
    assert db.scalar(select(PostCard).where(PostCard.national_id == "199012345679")) is None


def test_the_counter_issues_a_card_typed_in_arabic_digits(client, office):
    login(client, person("Digits Clerk", "clerk", office=office))
    res = client.post("/backoffice/payments/cards/new", data={
        "holder_name": "مريم حسن", "national_id": "١٩٩٠١١١١٢٢٢٢",
        "mobile": "٠٧٨٠ ١٢٣ ٤٥٦٧", "pin": "٢٥٨٠", "pin_again": "۲۵۸۰"})
    assert res.status_code == 302, res.get_data(as_text=True)
    card = db.scalar(select(PostCard).where(PostCard.national_id == "199011112222"))
    assert card is not None and card.mobile == "+9647801234567"
    assert cards._pin_matches(card, "2580")


def test_a_tracking_number_in_arabic_digits_opens_its_page(client, app_ctx):
    from tracking import s10

    number = s10.compose("CP", 12345678)
    typed = " " + number.translate(ARABIC).lower() + " "
    res = client.get("/track", query_string={"number": typed})
    assert res.status_code == 303
    assert res.headers["Location"].endswith(f"/track/{number}")
