"""Buy for me: the estimate line by line, procurement's quote or rejection (audited), the
shopper accepting and paying, and quotes or unpaid orders expiring."""

from __future__ import annotations

# ruff: noqa: F811  (pytest fixtures imported from the helper modules)
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.auth.models import Role
from app.database import db, unit_of_work, utcnow
from app.errors import NotFound, ValidationFailed
from app.jobs import drain
from shop.models import BuyRequest, Order
from shop.services import buyforme
from shop.services.buyforme import BuyRequestStateError
from shop.services.checkout import PaymentChoice, destination_for
from tests.payments.conftest import (  # noqa: F401
    _fast_pins,
    clerk,
    localstripe,
    make_card,
    office,
    stripe_app,
)
from tests.payments.helpers import CARD_PIN
from tests.shop.checkout_helpers import (  # noqa: F401 (fixtures)
    login,
    make_shopper,
    pickup,
    rates,
    shopper,
)

REQUEST = {"url": "https://www.example.com/shop/jacket?id=42", "title": "Winter jacket",
           "price": "49.99", "currency": "USD", "quantity": "2", "options": "size M, navy",
           "weight_g": "400", "customs_category": "clothing"}


def _request(user, **changes) -> int:
    with unit_of_work():
        return buyforme.submit_request(user.id, {**REQUEST, **changes}).id


def test_estimate_shows_each_line_in_dinars(shopper, rates):
    _values, cost = buyforme.estimate(REQUEST)
    # 49.99 USD at 1,310 = 65,487 IQD each (half up), two of them.
    assert (cost.unit_price_iqd, cost.items_iqd) == (65_487, 130_974)
    assert cost.shipping_fee == 10_000 + 12_000          # 800 g: one started kilogram
    assert cost.duty_rate_bps == 2_000                    # clothing, no tariff line: 20 %
    assert cost.duty_estimate == 26_195
    assert cost.service_fee == 6_549                      # 5 % of the items
    assert cost.customs_fees == 5_000 + 10_000            # inspection and stamp, own line
    assert cost.total == 130_974 + 22_000 + 26_195 + 15_000 + 6_549
    assert cost.rate == "1310" and cost.rate_id == rates["USD"].id


def test_duty_follows_tracking_tariff_when_it_has_a_line(shopper, rates):
    from tracking.models import TariffLine

    db.add(TariffLine(hs_prefix="62", rate_bp=1_500, description_en="Clothing",
                      description_ar="ملابس"))
    db.commit()
    _values, cost = buyforme.estimate(REQUEST)
    assert cost.duty_rate_bps == 1_500 and cost.duty_estimate == 19_646


@pytest.mark.parametrize(("field", "value"), [
    ("url", "ftp://example.com/item"),
    ("url", "javascript:alert(1)"),
    ("url", "not a link"),
    ("price", "abc"),
    ("price", "0"),
    ("quantity", "0"),
    ("weight_g", "-5"),
    ("customs_category", "weapons"),
    ("currency", "XYZ"),
])
def test_bad_requests_are_refused_and_nothing_is_stored(shopper, rates, field, value):
    with pytest.raises(ValidationFailed):
        buyforme.submit_request(shopper.id, {**REQUEST, field: value})
    assert db.scalar(select(BuyRequest)) is None


def test_approve_with_adjusted_price_and_shipping_then_accept_and_pay(app, shopper, rates,
                                                                      make_card, office):
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    rid = _request(shopper)
    with unit_of_work():
        quoted = buyforme.approve_request(rid, reviewer_id=buyer.id, data={
            "price": "45.00", "shipping_fee": "18000", "note": "Price dropped on the site"})
    # 45.00 USD x 1,310 x 2 = 117,900; duty 20 %; service 5 %; shipping as given.
    assert (quoted.status, quoted.items_iqd, quoted.shipping_fee) == ("quoted", 117_900, 18_000)
    assert quoted.total == 117_900 + 18_000 + 23_580 + 15_000 + 5_895
    assert quoted.estimate_total == 200_718 and quoted.quote_expires_at > utcnow()
    audit = db.scalar(select(AuditRecord).where(AuditRecord.action == "buy_request.quoted"))
    assert audit.actor_id == buyer.id and audit.details["before"]["unit_price"] == 4_999
    with pytest.raises(BuyRequestStateError), unit_of_work():
        buyforme.approve_request(rid, reviewer_id=buyer.id, data={})

    card = make_card(balance=500_000, user_id=shopper.id)  # the shopper's own
    dest = pickup(office)  # a Baghdad office: same zone as the office of exchange
    q = buyforme.quote_for(db.get(BuyRequest, rid), destination_for(shopper, **dest))
    assert q.delivery_fee == 3_000 and q.total == quoted.total + 3_000
    with unit_of_work():
        order = buyforme.accept_quote(rid, shopper.id, dest, payment=PaymentChoice(
            "post_card", card_number=card.number, pin=CARD_PIN), seen_digest=q.digest,
            checkout_key="accept-1")
    order_id, total = order.id, order.total
    assert (order.kind, order.total, order.service_fee) == ("buy_for_me", q.total, 5_895)
    assert [ln.options for ln in order.lines] == ["size M, navy"]
    assert db.get(BuyRequest, rid).status == "accepted"

    buyer_id = buyer.id
    drain(app)
    db.rollback()
    assert db.get(Order, order_id).status == "paid"
    assert db.get(BuyRequest, rid).status == "paid"
    with unit_of_work():
        done = buyforme.record_purchase(rid, clerk_id=buyer_id,
                                        foreign_order_number="AMZ-1001",
                                        foreign_tracking_number="1Z999")
    assert done.status == "purchased" and done.foreign_order_number == "AMZ-1001"
    assert total == 183_375


def _paid_request(app, shopper, office, make_card, **changes) -> tuple[int, int]:
    """A request procurement quoted, the shopper accepted for pickup at `office` and
    paid with the post card; returns (request id, procurement clerk id)."""
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    buyer_id = buyer.id
    rid = _request(shopper, **changes)
    with unit_of_work():
        buyforme.approve_request(rid, reviewer_id=buyer_id, data={})
    card = make_card(balance=500_000, user_id=shopper.id)  # the shopper's own
    dest = pickup(office)
    q = buyforme.quote_for(db.get(BuyRequest, rid), destination_for(shopper, **dest))
    with unit_of_work():
        buyforme.accept_quote(rid, shopper.id, dest, payment=PaymentChoice(
            "post_card", card_number=card.number, pin=CARD_PIN), seen_digest=q.digest,
            checkout_key=f"accept-{rid}")
    drain(app)
    db.rollback()
    assert db.get(BuyRequest, rid).status == "paid"
    return rid, buyer_id


def test_recorded_purchase_becomes_a_parcel_the_shopper_follows(app, client, shopper, rates,
                                                                make_card, office,
                                                                count_commits):
    from app.auth.models import User
    from tracking import s10
    from tracking.models import Parcel
    from tracking.services.events import record_partner_event

    rid, buyer_id = _paid_request(app, shopper, office, make_card)
    office_id = office.id
    login(client, db.get(User, buyer_id))
    form = client.get(f"/backoffice/procurement/{rid}").get_data(as_text=True)
    assert '<option selected value="US">' in form  # guessed from the dollar price
    with count_commits() as commits:
        res = client.post(f"/backoffice/procurement/{rid}/purchased", data={
            "foreign_order_number": "AMZ-1001",
            "foreign_tracking_number": "1Z999AA10123456784", "ships_from": "US", "hs_code": ""})
    assert res.status_code == 302
    assert len(commits) == 1, "the request, its consignment and the inbound parcel commit once"
    client.post("/logout")
    db.rollback()
    req = db.get(BuyRequest, rid)
    assert req.status == "purchased"
    order_id = req.order_id

    # A courier's number is no S10: the post gives the parcel an Iraqi one now.
    parcel = db.scalar(select(Parcel))
    number = parcel.tracking_number
    assert s10.validate(number) and number.startswith("CP") and number.endswith("IQ")
    order = db.get(Order, order_id)
    c = order.consignments[0]
    assert parcel.order_ref == f"consignment:{c.id}"
    assert (c.parcel_id, c.tracking_number, order.status) == (parcel.id, number, "processing")
    assert (parcel.direction, parcel.status, parcel.pickup_office_id) == (
        "inbound", "pending", office_id)
    assert (parcel.sender_country, parcel.sender_name) == ("US", "example.com")
    assert parcel.recipient_name == "Zainab Ali" and parcel.recipient_governorate == "IQ-BG"
    assert (parcel.invoice_number, parcel.importer_reference) == ("AMZ-1001", req.number)
    [article] = parcel.articles
    assert (article.description, article.quantity, article.value_amount,
            article.value_currency, article.net_weight_grams, article.hs_code,
            article.origin_country) == ("Winter jacket (size M, navy)", 2, 9_998, "USD",
                                        800, "620000", "US")

    login(client, shopper)
    page = client.get(f"/shop/buy-for-me/{rid}").get_data(as_text=True)
    assert f'href="/track/{number}"' in page
    assert "وصول إلى مكتب التبادل الوارد" not in page

    # record_partner_event flushes; its caller's unit of work commits it.
    with unit_of_work():
        out = record_partner_event(number=number, code="EMD", occurred_at=utcnow(),
                                   location="Baghdad International Airport")
    assert out.outcome == "accepted"
    drain(app)
    db.rollback()
    assert db.get(Order, order_id).status == "shipped"
    page = client.get(f"/shop/buy-for-me/{rid}").get_data(as_text=True)
    assert "وصول إلى مكتب التبادل الوارد" in page  # arrival at the inward office of exchange
    assert f'href="/track/{number}"' in page


def test_a_foreign_posts_s10_is_kept_and_a_bad_declaration_records_nothing(
        app, shopper, rates, make_card, office):
    from tracking import s10
    from tracking.models import Parcel

    rid, buyer_id = _paid_request(app, shopper, office, make_card,
                                  customs_category="other", currency="TRY",
                                  url="https://www.shop.example.com.tr/p/1")
    with pytest.raises(ValidationFailed) as no_hs, unit_of_work():
        buyforme.record_purchase(rid, clerk_id=buyer_id, foreign_order_number="TR-77")
    assert "hs_code" in no_hs.value.fields
    assert db.get(BuyRequest, rid).status == "paid" and db.scalar(select(Parcel)) is None

    china_post = s10.compose("LX", 12_345_678, "CN")
    with unit_of_work():
        buyforme.record_purchase(rid, clerk_id=buyer_id, foreign_order_number="TR-77",
                                 foreign_tracking_number=china_post.lower(), ships_from="",
                                 hs_code="9503.00")
    db.rollback()
    parcel = db.scalar(select(Parcel))
    assert parcel.tracking_number == china_post
    assert parcel.sender_country == "TR" and parcel.articles[0].hs_code == "950300"
    assert db.get(BuyRequest, rid).status == "purchased"


def test_reject_needs_a_reason_and_is_audited(shopper, rates):
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    rid = _request(shopper)
    with pytest.raises(ValidationFailed):
        buyforme.reject_request(rid, reviewer_id=buyer.id, reason="  ")
    with unit_of_work():
        req = buyforme.reject_request(rid, reviewer_id=buyer.id,
                                      reason="The shop does not ship to us")
    assert req.status == "rejected" and req.reject_reason == "The shop does not ship to us"
    assert db.scalar(select(AuditRecord).where(
        AuditRecord.action == "buy_request.rejected")).actor_id == buyer.id
    with pytest.raises(BuyRequestStateError):
        buyforme.accept_quote(rid, shopper.id, {"method": "pickup"},
                              payment=PaymentChoice("stripe"), seen_digest="", checkout_key="k")


def test_quote_expires_and_can_no_longer_be_accepted(shopper, rates, office):
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    rid = _request(shopper)
    with unit_of_work():
        buyforme.approve_request(rid, reviewer_id=buyer.id, data={})
    assert buyforme.expire_quotes() == []
    assert buyforme.expire_quotes(now=utcnow() + timedelta(hours=73)) == [rid]
    assert db.get(BuyRequest, rid).status == "expired"
    with pytest.raises(BuyRequestStateError):
        buyforme.accept_quote(rid, shopper.id, pickup(office), payment=PaymentChoice("stripe"),
                              seen_digest="", checkout_key="late")
    assert db.scalar(select(Order)) is None


def test_accepted_but_unpaid_order_expires_with_its_request(shopper, rates, office):
    # The periodic job: it opens one unit of work per order (the service only flushes).
    from shop.jobs import expire_unpaid_orders

    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    rid = _request(shopper)
    with unit_of_work():
        req = buyforme.approve_request(rid, reviewer_id=buyer.id, data={})
    dest = pickup(office)
    q = buyforme.quote_for(req, destination_for(shopper, **dest))
    with unit_of_work():
        order = buyforme.accept_quote(rid, shopper.id, dest, payment=PaymentChoice("stripe"),
                                      seen_digest=q.digest, checkout_key="k1")
    order.expires_at = utcnow() - timedelta(seconds=1)
    db.commit()
    assert expire_unpaid_orders() == [order.id]
    assert db.get(BuyRequest, rid).status == "expired"


def test_one_shopper_cannot_open_anothers_request(client, shopper, rates):
    rid = _request(shopper)
    stranger = make_shopper("Stranger")
    with pytest.raises(NotFound):
        buyforme.owned_request(rid, stranger.id)
    login(client, stranger)
    assert client.get(f"/shop/buy-for-me/{rid}").status_code == 404
    assert client.post(f"/shop/buy-for-me/{rid}/accept").status_code == 404


def test_pages_estimate_send_review_and_accept(client, shopper, rates, office):
    login(client, shopper)
    res = client.post("/shop/buy-for-me", data={**REQUEST, "action": "estimate"})
    html = res.get_data(as_text=True)
    assert res.status_code == 200 and "200,718 IQD" in html and "26,195 IQD" in html
    # Customs' fees are their own line, beside the duty.
    assert "رسوم الكمارك" in html and "15,000 IQD" in html
    assert db.scalar(select(BuyRequest)) is None  # an estimate stores nothing
    res = client.post("/shop/buy-for-me", data={**REQUEST, "url": "ftp://x.example.com/a",
                                                "action": "send"})
    assert res.status_code == 422 and db.scalar(select(BuyRequest)) is None
    res = client.post("/shop/buy-for-me", data={**REQUEST, "action": "send"})
    assert res.status_code == 302
    req = db.scalar(select(BuyRequest))

    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    client.post("/logout")
    login(client, buyer)
    assert req.number in client.get("/backoffice/procurement/").get_data(as_text=True)
    res = client.post(f"/backoffice/procurement/{req.id}/approve",
                      data={"price": "", "weight_g": "", "shipping_fee": "20000", "note": ""})
    assert res.status_code == 302
    db.expire_all()
    assert db.get(BuyRequest, req.id).status == "quoted"

    client.post("/logout")
    login(client, shopper)
    page = client.get(f"/shop/buy-for-me/{req.id}?method=pickup&office_id={office.id}"
                      "&recipient_name=Zainab&phone=07701234567").get_data(as_text=True)
    import re

    digest = re.search(r'name="digest"[^>]*value="([0-9a-f]+)"', page).group(1)
    key = re.search(r'name="key"[^>]*value="([^"]+)"', page).group(1)
    res = client.post(f"/shop/buy-for-me/{req.id}/accept", data={
        "method": "pickup", "office_id": office.id, "recipient_name": "Zainab",
        "phone": "07701234567", "digest": digest, "key": key, "payment": "stripe"})
    assert res.status_code == 302 and "/pay" in res.headers["Location"]
    db.expire_all()
    assert db.get(BuyRequest, req.id).status == "accepted"


# -- duty and customs fees charged once ----------------------------------------------------

def _arrived(app, shopper, office, make_card, rate_bp: int, paid=None):
    """A paid request bought abroad (the quote took 26,195 duty and 15,000 fees) whose
    parcel reached the office of exchange, customs assessing the jacket's HS 62 at
    `rate_bp` and releasing it; returns (case id, order id, card id, card balance after
    the order was paid). `paid`: (request id, buyer id) of a request paid otherwise
    than by post card (card id and balance are then None)."""
    from payments.models import Payment, PostCard
    from payments.services import account_balance
    from tracking.models import CustomsCase, Parcel, TariffLine
    from tracking.services.events import record_partner_event

    rid, buyer_id = paid or _paid_request(app, shopper, office, make_card)
    order = db.get(Order, db.get(BuyRequest, rid).order_id)
    order_id = order.id
    assert (order.duty_estimate, order.customs_fees) == (26_195, 15_000)
    card_id = paid_balance = None
    if paid is None:
        card = db.get(PostCard, db.get(Payment, order.payment_id).card_id)
        card_id, paid_balance = card.id, account_balance(card.account_id)
    with unit_of_work():
        buyforme.record_purchase(rid, clerk_id=buyer_id, foreign_order_number="AMZ-1",
                                 ships_from="US")
        # The tariff changes after the quote: customs assesses by its own table.
        db.add(TariffLine(hs_prefix="62", rate_bp=rate_bp, description_en="Clothing",
                          description_ar="ملابس"))
    parcel = db.scalar(select(Parcel))
    assert (parcel.customs_prepaid_duty_iqd, parcel.customs_prepaid_fees_iqd) == (26_195,
                                                                                  15_000)
    with unit_of_work():
        record_partner_event(number=parcel.tracking_number, code="EMD",
                             occurred_at=utcnow(), location="Baghdad International Airport")
    drain(app)
    db.rollback()
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
    assert case.state == "released" and case.prepaid_iqd == 41_195
    return case.id, order_id, card_id, paid_balance


def _card_balance(card_id: int) -> int:
    from payments.models import PostCard
    from payments.services import account_balance

    db.rollback()
    return account_balance(db.get(PostCard, card_id).account_id)


def _hand_over(office, clerk):
    from tracking.models import Parcel
    from tracking.services.events import record_scan

    number = db.scalar(select(Parcel)).tracking_number
    with unit_of_work():
        # The parcel reaches the delivery office, where the addressee shows an
        # identity document.
        record_scan(number=number, code="EMG", office_id=office.id, actor_id=clerk.id)
        return record_scan(number=number, code="EMI", office_id=office.id,
                           actor_id=clerk.id, receiver_name="Zainab Ali",
                           receiver_id_number="A1234567")


def test_assessed_as_quoted_nothing_more_is_due_and_the_parcel_is_handed_over(
        app, client, shopper, rates, make_card, office, clerk):
    from tests.payments.helpers import ledger_problems
    from tracking.models import CustomsCase, Parcel
    from tracking.services.customs import duty_payable

    case_id, order_id, card_id, paid = _arrived(app, shopper, office, make_card, 2_000)
    case = db.get(CustomsCase, case_id)
    # 99.98 USD at 1,310 = 130,974 IQD; 20 % = 26,195; fees 15,000: all paid in the quote.
    assert (case.duty_iqd, case.assessed_total_iqd, case.total_due_iqd) == (26_195, 41_195, 0)
    assert not case.duty_outstanding and duty_payable(str(case_id), None) is None
    number = db.scalar(select(Parcel)).tracking_number
    page = client.get(f"/track/{number}/duty").get_data(as_text=True)
    assert "لا شيء آخر للدفع" in page
    out = _hand_over(office, clerk)
    assert out.outcome == "accepted", out.reason
    assert _card_balance(card_id) == paid  # nothing more taken, nothing given back
    assert db.scalar(select(AuditRecord).where(
        AuditRecord.action == "order.customs_excess_refunded")) is None
    assert ledger_problems() == []


def test_assessed_higher_the_shopper_pays_only_the_difference(app, client, shopper, rates,
                                                              make_card, office, clerk):
    from payments.services import get_payment
    from tests.payments.helpers import ledger_problems
    from tracking.models import CustomsCase, Parcel
    from tracking.services import customs

    case_id, order_id, card_id, paid = _arrived(app, shopper, office, make_card, 3_000)
    case = db.get(CustomsCase, case_id)
    # 30 % of 130,974 = 39,292 + 15,000 fees = 54,292; 41,195 paid in the quote.
    assert (case.assessed_total_iqd, case.total_due_iqd) == (54_292, 13_097)
    assert _hand_over(office, clerk).reason_code == "duty_unpaid"
    number = db.scalar(select(Parcel)).tracking_number
    page = client.get(f"/track/{number}/duty").get_data(as_text=True)
    assert "13,097 IQD" in page and "41,195 IQD" in page  # the credit shown on its own line
    payable = customs.duty_payable(str(case_id), None)
    assert payable.amount == 13_097
    with unit_of_work():
        customs.pay_duty_in_cash(case_id, clerk_id=clerk.id, office_id=office.id)
    case = db.get(CustomsCase, case_id)
    assert get_payment(int(case.payment_id)).amount == 13_097
    assert _hand_over(office, clerk).outcome == "accepted"
    assert _card_balance(card_id) == paid
    assert ledger_problems() == []


def test_assessed_lower_the_excess_goes_back_to_the_post_card_once(app, shopper, rates,
                                                                  make_card, office, clerk):
    from app.events import DomainEvent
    from shop.jobs import refund_prepaid_customs_excess
    from tests.payments.helpers import ledger_problems
    from tracking.models import CustomsCase

    case_id, order_id, card_id, paid = _arrived(app, shopper, office, make_card, 1_000)
    case = db.get(CustomsCase, case_id)
    # 10 % of 130,974 = 13,097 + 15,000 = 28,097; the quote took 41,195: 13,098 too much.
    assert (case.assessed_total_iqd, case.total_due_iqd, case.prepaid_excess_iqd) == (
        28_097, 0, 13_098)
    assert _card_balance(card_id) == paid + 13_098
    # The job runs again (a retry, a second delivery): nothing more moves.
    released = db.scalar(select(DomainEvent).where(DomainEvent.name == "customs.released"))
    for _ in range(2):
        with unit_of_work():
            refund_prepaid_customs_excess(released)
    drain(app)
    assert _card_balance(card_id) == paid + 13_098
    order = db.get(Order, order_id)
    assert (order.refunded_amount, order.status) == (13_098, "partially_refunded")
    [audit] = db.scalars(select(AuditRecord).where(
        AuditRecord.action == "order.customs_excess_refunded")).all()
    assert audit.details["amount"] == 13_098 and audit.details["case_id"] == case_id
    assert _hand_over(office, clerk).outcome == "accepted"
    assert ledger_problems() == []


def test_assessed_lower_the_excess_goes_back_to_the_bank_card_once(app, shopper, rates,
                                                                  office, clerk,
                                                                  stripe_app, localstripe):
    from payments import gateway
    from payments import services as pay
    from payments.models import Payment, Refund
    from shop.services import orders
    from tests.payments.helpers import ledger_problems
    from tracking.models import CustomsCase

    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    buyer_id, shopper_id = buyer.id, shopper.id
    rid = _request(shopper)
    with unit_of_work():
        buyforme.approve_request(rid, reviewer_id=buyer_id, data={})
    dest = pickup(office)
    q = buyforme.quote_for(db.get(BuyRequest, rid), destination_for(shopper, **dest))
    with unit_of_work():
        order = buyforme.accept_quote(rid, shopper_id, dest, payment=PaymentChoice("stripe"),
                                      seen_digest=q.digest, checkout_key="accept-card")
        order_id = order.id
    with unit_of_work():
        pid = orders.start_card_payment(order_id, shopper_id).payment.id
    pm = gateway.client().v1.payment_methods.create(params={
        "type": "card", "card": {"number": "4242424242424242", "exp_month": 12,
                                 "exp_year": 2034, "cvc": "123"}}).id
    with unit_of_work():
        assert pay.confirm_card_payment(pid, payment_method=pm,
                                        payer_user_id=shopper_id)["status"] == "succeeded"
    with unit_of_work():  # what the webhook's job does
        pay.sync_payment_intent(db.get(Payment, pid).stripe_payment_intent)
    drain(app)
    db.rollback()
    assert db.get(BuyRequest, rid).status == "paid"

    case_id, _o, _c, _b = _arrived(app, shopper, office, None, 1_000, paid=(rid, buyer_id))
    assert db.get(CustomsCase, case_id).prepaid_excess_iqd == 13_098
    drain(app)
    db.rollback()
    [refund] = db.scalars(select(Refund).where(Refund.payment_id == pid)).all()
    assert refund.amount == 13_098 and refund.stripe_refund_id
    at_stripe = gateway.client().v1.refunds.list(params={
        "payment_intent": db.get(Payment, pid).stripe_payment_intent}).data
    assert [(r.id, r.amount) for r in at_stripe] == [(refund.stripe_refund_id,
                                                      refund.charged_amount)]
    with unit_of_work():  # the job again: Stripe is not asked twice
        assert buyforme.refund_prepaid_excess(case_id) == 0
    assert len(gateway.client().v1.refunds.list(params={
        "payment_intent": db.get(Payment, pid).stripe_payment_intent}).data) == 1
    assert db.get(Order, order_id).refunded_amount == 13_098
    assert ledger_problems() == []


# -- the shopper's own requests: my orders, change, cancel, retry -------------------------

def _quote(rid: int) -> None:
    buyer = make_shopper("Buyer", Role.PROCUREMENT)
    with unit_of_work():
        buyforme.approve_request(rid, reviewer_id=buyer.id, data={})


def test_requests_show_in_my_orders_with_their_state_and_when_to_expect_our_price(
        client, shopper, rates, app):
    rid = _request(shopper)
    other = _request(shopper, title="Rain boots")
    _quote(other)
    req = db.get(BuyRequest, rid)
    login(client, shopper)
    html = client.get("/shop/orders").get_data(as_text=True)
    # Arabic first: "Waiting for our price", "Expected by <48 hours after sending>".
    assert req.number in html and "بانتظار سعرنا" in html
    hours = app.config["SHOP_QUOTE_ANSWER_HOURS"]
    assert buyforme.expected_answer(req) == req.created_at + timedelta(hours=hours)
    assert "متوقع قبل" in html
    quoted = db.get(BuyRequest, other)
    # The priced one shows its price and no expected time.
    assert quoted.number in html and f"{quoted.total:,} IQD" in html
    assert buyforme.expected_answer(quoted) is None
    # Another shopper sees none of them.
    client.post("/logout")
    login(client, make_shopper("Stranger"))
    html = client.get("/shop/orders").get_data(as_text=True)
    assert req.number not in html and quoted.number not in html


def test_a_request_is_changed_until_it_is_priced_then_refused_with_a_clear_message(
        client, shopper, rates):
    rid = _request(shopper)
    login(client, shopper)
    form = client.get(f"/shop/buy-for-me/{rid}/edit").get_data(as_text=True)
    assert 'value="49.99"' in form and "Winter jacket" in form  # what was typed, to correct
    res = client.post(f"/shop/buy-for-me/{rid}/edit",
                      data={**REQUEST, "quantity": "1", "action": "send"})
    assert res.status_code == 302
    db.expire_all()
    req = db.get(BuyRequest, rid)
    # One jacket now: the estimate is made again, as for a new request, and is lower.
    _values, one = buyforme.estimate({**REQUEST, "quantity": "1"})
    assert req.quantity == 1 and req.total == req.estimate_total == one.total < 200_718
    audit = db.scalar(select(AuditRecord).where(AuditRecord.action == "buy_request.edited"))
    assert audit.details["before"]["quantity"] == 2 and audit.details["after"]["quantity"] == 1
    # Bad input changes nothing.
    res = client.post(f"/shop/buy-for-me/{rid}/edit",
                      data={**REQUEST, "price": "abc", "action": "send"})
    assert res.status_code == 422
    db.expire_all()
    assert db.get(BuyRequest, rid).quantity == 1

    _quote(rid)
    total = db.get(BuyRequest, rid).total
    res = client.post(f"/shop/buy-for-me/{rid}/edit",
                      data={**REQUEST, "quantity": "5", "action": "send"},
                      follow_redirects=True)
    # "This request can no longer be changed or cancelled: we have already answered it."
    assert "لم يعد بالإمكان تعديل هذا الطلب أو إلغاؤه" in res.get_data(as_text=True)
    res = client.post(f"/shop/buy-for-me/{rid}/cancel", follow_redirects=True)
    assert "لم يعد بالإمكان تعديل هذا الطلب أو إلغاؤه" in res.get_data(as_text=True)
    db.expire_all()
    assert (db.get(BuyRequest, rid).quantity, db.get(BuyRequest, rid).total,
            db.get(BuyRequest, rid).status) == (1, total, "quoted")
    with pytest.raises(buyforme.RequestAlreadyPriced) as refused, unit_of_work():
        buyforme.edit_request(rid, shopper.id, {**REQUEST, "quantity": "5"})
    assert refused.value.http_status == 409


def test_a_cancelled_request_cannot_be_priced_and_a_stranger_cannot_touch_one(
        client, shopper, rates):
    rid = _request(shopper)
    stranger = make_shopper("Stranger")
    login(client, stranger)
    assert client.post(f"/shop/buy-for-me/{rid}/cancel").status_code == 404
    assert client.get(f"/shop/buy-for-me/{rid}/edit").status_code == 404
    assert client.post(f"/shop/buy-for-me/{rid}/edit",
                       data={**REQUEST, "action": "send"}).status_code == 404
    with pytest.raises(NotFound), unit_of_work():
        buyforme.cancel_request(rid, stranger.id)
    client.post("/logout")
    login(client, shopper)
    page = client.get(f"/shop/buy-for-me/{rid}").get_data(as_text=True)
    assert "ألغِ الطلب" in page and "عدّل الطلب" in page  # cancel / change buttons
    res = client.post(f"/shop/buy-for-me/{rid}/cancel")
    assert res.status_code == 303
    db.expire_all()
    req = db.get(BuyRequest, rid)
    assert req.status == "cancelled" and [h.to_status for h in req.history] == [
        "submitted", "cancelled"]
    page = client.get(f"/shop/buy-for-me/{rid}").get_data(as_text=True)
    assert "الطلب ملغى" in page and "ألغِ الطلب" not in page
    with pytest.raises(BuyRequestStateError), unit_of_work():
        buyforme.approve_request(rid, reviewer_id=make_shopper("Buyer", Role.PROCUREMENT).id,
                                 data={})


def test_after_a_refused_payment_the_shopper_tries_again_without_a_405(
        client, shopper, rates, office, make_card):
    import re

    rid = _request(shopper)
    _quote(rid)
    card = make_card(balance=500_000, user_id=shopper.id)
    login(client, shopper)
    dest = pickup(office)
    page = client.get(f"/shop/buy-for-me/{rid}", query_string=dest).get_data(as_text=True)
    digest = re.search(r'name="digest"[^>]*value="([0-9a-f]+)"', page).group(1)
    key = re.search(r'name="key"[^>]*value="([^"]+)"', page).group(1)
    res = client.post(f"/shop/buy-for-me/{rid}/accept", data={
        **dest, "digest": digest, "key": key, "payment": "post_card",
        "card_id": str(card.id), "pin": "0000"})
    assert res.status_code >= 400 and res.status_code != 405
    # Reloading that page, switching language or "start again" come back by GET.
    again = client.get(f"/shop/buy-for-me/{rid}/accept")
    assert again.status_code == 303
    assert again.headers["Location"].endswith(f"/shop/buy-for-me/{rid}")
    db.expire_all()
    assert db.get(BuyRequest, rid).status == "quoted"
    page = client.get(f"/shop/buy-for-me/{rid}", query_string=dest).get_data(as_text=True)
    key = re.search(r'name="key"[^>]*value="([^"]+)"', page).group(1)
    res = client.post(f"/shop/buy-for-me/{rid}/accept", data={
        **dest, "digest": digest, "key": key, "payment": "post_card",
        "card_id": str(card.id), "pin": CARD_PIN})
    assert res.status_code == 302 and "/shop/orders/" in res.headers["Location"]
    db.expire_all()
    assert db.get(BuyRequest, rid).status == "accepted"
