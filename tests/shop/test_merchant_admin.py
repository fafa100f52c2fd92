"""Admins approve, suspend and set the commission of merchants in the back office; every
decision is audited, and only admins may take them."""

from __future__ import annotations

from sqlalchemy import select

from app.audit import AuditRecord
from app.auth import services as auth
from app.auth.models import Role
from app.database import db
from shop.models import Merchant, MerchantStatus
from tests.shop.helpers import make_merchant, make_office, make_product

PASSWORD = "correct horse battery"


def _login(client, role: Role, email: str):
    office = make_office()
    db.commit()
    user = auth.create_user("Staff", email=email, password=PASSWORD, roles=[role],
                            post_office_code=office.code)
    client.post("/login", data={"identifier": email, "password": PASSWORD})
    client.get("/lang/en")
    return user


def _merchant(merchant_id: int) -> Merchant:
    db.remove()
    return db.get(Merchant, merchant_id)


def _audits(action: str) -> list[AuditRecord]:
    db.remove()
    return list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)))


def test_only_admins_open_the_merchant_pages(client, app):
    assert client.get("/backoffice/admin/merchants/").status_code == 302  # to login
    _login(client, Role.CLERK, "clerk@example.iq")
    assert client.get("/backoffice/admin/merchants/").status_code == 403
    shop = make_merchant(status=MerchantStatus.PENDING)
    db.commit()
    assert client.post(f"/backoffice/admin/merchants/{shop.id}/approve").status_code == 403
    assert _merchant(shop.id).status == MerchantStatus.PENDING


def test_admin_approves_a_pending_shop_and_its_products_appear(client, category):
    admin = _login(client, Role.ADMIN, "admin@example.iq")
    shop = make_merchant(status=MerchantStatus.PENDING)
    make_product(shop, category, title_en="Date syrup")
    db.commit()
    listing = client.get("/backoffice/admin/merchants/").get_data(as_text=True)
    assert shop.name_en in listing and "Waiting for approval" in listing
    assert "Date syrup" not in client.get("/shop/search?q=date").get_data(as_text=True)

    page = client.post(f"/backoffice/admin/merchants/{shop.id}/approve",
                       follow_redirects=True).get_data(as_text=True)
    assert "The shop is active" in page
    assert _merchant(shop.id).status == MerchantStatus.ACTIVE
    [audit] = _audits("merchant.approved")
    assert (audit.actor_id, audit.object_id, audit.details) == (
        admin.id, str(shop.id), {"from": "pending"})
    assert "Date syrup" in client.get("/shop/search?q=date").get_data(as_text=True)


def test_a_local_shop_needs_a_post_office_before_approval(client, app):
    _login(client, Role.ADMIN, "admin@example.iq")
    shop = make_merchant(status=MerchantStatus.PENDING)
    shop.post_office_id = None
    db.commit()
    # The refused approval rolls its unit of work back, which expires (and, at the end of
    # the request, detaches) the test's `shop`: keep its id in hand.
    shop_id = shop.id
    page = client.post(f"/backoffice/admin/merchants/{shop_id}/approve",
                       follow_redirects=True).get_data(as_text=True)
    assert "Choose the post office where this shop hands over its parcels first." in page
    assert _merchant(shop_id).status == MerchantStatus.PENDING

    office = make_office("BSR")
    db.commit()
    client.post(f"/backoffice/admin/merchants/{shop_id}/post-office",
                data={"post_office_id": office.id})
    client.post(f"/backoffice/admin/merchants/{shop_id}/approve")
    assert _merchant(shop_id).status == MerchantStatus.ACTIVE


def test_suspension_needs_a_reason_and_is_audited(client, app):
    admin = _login(client, Role.ADMIN, "admin@example.iq")
    shop = make_merchant()
    db.commit()
    page = client.post(f"/backoffice/admin/merchants/{shop.id}/suspend", data={"reason": ""},
                       follow_redirects=True).get_data(as_text=True)
    assert "Say why the shop is suspended." in page
    assert _merchant(shop.id).status == MerchantStatus.ACTIVE

    client.post(f"/backoffice/admin/merchants/{shop.id}/suspend",
                data={"reason": "Sold counterfeit goods"})
    assert _merchant(shop.id).status == MerchantStatus.SUSPENDED
    [audit] = _audits("merchant.suspended")
    assert audit.actor_id == admin.id
    assert audit.details == {"from": "active", "reason": "Sold counterfeit goods"}
    assert client.get(f"/shop/m/{shop.slug}").status_code == 404


def test_commission_is_set_in_basis_points_within_range(client, app):
    _login(client, Role.ADMIN, "admin@example.iq")
    shop = make_merchant()
    db.commit()
    page = client.post(f"/backoffice/admin/merchants/{shop.id}/commission",
                       data={"commission_bps": "1250"}, follow_redirects=True
                       ).get_data(as_text=True)
    assert "Commission saved." in page and "12.5 %" in page
    assert _merchant(shop.id).commission_bps == 1250
    [audit] = _audits("merchant.commission_changed")
    assert audit.details == {"from_bps": 0, "to_bps": 1250}

    page = client.post(f"/backoffice/admin/merchants/{shop.id}/commission",
                       data={"commission_bps": "20000"}, follow_redirects=True
                       ).get_data(as_text=True)
    assert "The commission is between 0 and 10000 basis points." in page
    assert _merchant(shop.id).commission_bps == 1250
