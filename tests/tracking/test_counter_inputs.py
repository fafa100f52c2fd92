"""Numbers a clerk types at the counter (weight, sizes, declared values, quantities) and
what a forged duty form sends: a mistake is a field error beside its field, never a 500,
and makes no parcel and takes no money; Arabic-Indic digits are numbers."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from app.database import db
from payments.models import JournalEntry, Payment
from tests.tracking.helpers import inbound_draft, login
from tests.tracking.test_backoffice import ACCEPT_FORM
from tests.tracking.test_customs import _arrive, _tariff
from tracking.models import CustomsCase, Parcel
from tracking.services.parcels import register_inbound

BAD_NUMBERS = ["abc", "-5", "0", "1e9999", "12.5", "NaN", "99999999999999999999", "9" * 400]

ABROAD_FORM = {
    **ACCEPT_FORM, "direction": "outbound", "recipient_country": "TR",
    "recipient_address": "Istiklal Cd. 1, Istanbul", "recipient_governorate": "",
    "customs_category": "gift",
    "articles-0-description": "كتاب", "articles-0-quantity": "1",
    "articles-0-net_weight_grams": "500", "articles-0-value": "20",
    "articles-0-currency": "USD", "articles-0-hs_code": "490199",
    "articles-0-origin_country": "IQ",
}


def _counts() -> tuple[int, int, int]:
    return (db.scalar(select(func.count()).select_from(Parcel)),
            db.scalar(select(func.count()).select_from(Payment)),
            db.scalar(select(func.count()).select_from(JournalEntry)))


def _refused(res) -> None:
    assert res.status_code == 422, res.status_code
    assert "field-error" in res.get_data(as_text=True)
    assert _counts() == (0, 0, 0)


@pytest.mark.parametrize("typed", BAD_NUMBERS)
@pytest.mark.parametrize("field", ["weight_grams", "length_cm", "width_cm", "height_cm"])
def test_a_bad_weight_or_size_is_a_field_error(client, clerk, field, typed):
    login(client, clerk)
    if field != "weight_grams" and typed == "0":
        typed = "-0"  # a side of 0 cm is allowed (a flat letter); a sign is not a size
    _refused(client.post("/backoffice/parcels/accept",
                         data={**ACCEPT_FORM, field: typed, "acceptance_key": f"{field}-x"}))


@pytest.mark.parametrize("typed", BAD_NUMBERS)
@pytest.mark.parametrize("field", ["value", "quantity", "net_weight_grams"])
def test_a_bad_declared_article_is_a_field_error(client, clerk, field, typed):
    login(client, clerk)
    if field == "net_weight_grams" and typed == "0":
        typed = "-0"  # an article's net weight may be left at 0
    if field == "value" and typed == "12.5":
        typed = "12.5.0"  # 12.5 dollars is a value; two points are not
    _refused(client.post("/backoffice/parcels/accept", data={
        **ABROAD_FORM, f"articles-0-{field}": typed, "acceptance_key": f"{field}-a"}))


def test_arabic_indic_digits_are_accepted_at_the_counter(client, clerk):
    login(client, clerk)
    res = client.post("/backoffice/parcels/accept", data={
        **ABROAD_FORM, "weight_grams": "١٥٠٠", "length_cm": "٢٠", "width_cm": "١٠",
        "height_cm": "١٠", "articles-0-quantity": "٢", "articles-0-value": "٢٠٫٥",
        "articles-0-net_weight_grams": "٥٠٠", "acceptance_key": "arabic"})
    assert res.status_code == 302, res.get_data(as_text=True)
    parcel = db.scalar(select(Parcel))
    assert (parcel.weight_grams, parcel.length_cm, parcel.width_cm) == (1500, 20, 10)
    [article] = parcel.articles
    assert (article.quantity, article.value_amount, article.net_weight_grams) == (2, 2050, 500)


def test_a_forged_amount_on_the_duty_form_is_ignored(client, clerk, offices):
    """The duty is the assessed one: an amount the page never had is not read, and
    whatever is sent with it is never a 500."""
    _tariff()
    register_inbound("LX123456785CN", inbound_draft())
    _parcel, case = _arrive("LX123456785CN", offices, clerk)
    db.commit()
    login(client, clerk)
    for typed in [*BAD_NUMBERS, "١٢٣", "1"]:
        res = client.post("/backoffice/parcels/LX123456785CN/duty",
                          data={"method": "cash", "amount": typed, "total_due_iqd": typed})
        assert res.status_code != 500
    payments = db.scalars(select(Payment).where(Payment.purpose == "customs_duty")).all()
    assert [p.amount for p in payments] == [20_240]
    assert db.get(CustomsCase, case.id).paid_at is not None


@pytest.mark.parametrize("typed", ["abc", "-5", "0", "1e9999", "99999999999999999999"])
def test_a_bad_duty_method_or_number_is_never_a_500(client, clerk, offices, typed):
    _tariff()
    register_inbound("LX123456785CN", inbound_draft())
    _arrive("LX123456785CN", offices, clerk)
    db.commit()
    login(client, clerk)
    res = client.post("/backoffice/parcels/LX123456785CN/duty",
                      data={"method": "post_card", "card_number": typed, "card_pin": typed})
    assert res.status_code != 500
    assert db.scalar(select(func.count()).select_from(Payment).where(
        Payment.purpose == "customs_duty")) == 0
