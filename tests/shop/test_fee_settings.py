"""The shop's delivery and handling fees, as an administrator sets them (app.overrides):
checkout prices from the figures in force, a bad figure saves nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app import overrides
from app.audit import AuditRecord
from app.database import db
from app.errors import ValidationFailed
from shop.services import delivery_fees as fees


def _typed(**changes: str) -> dict[str, str]:
    now = {k: str(v) for k, v in overrides.figures("shop_fees").items()}
    return {**now, **changes}


def test_a_changed_delivery_fee_prices_the_next_quote(app_ctx):
    assert fees.delivery_fee("kurdistan", 2500, door=True) == 8000 + 2 * 1000 + 2000
    changed = overrides.change_figures("shop_fees", _typed(**{
        "SHOP_DELIVERY_FEES.kurdistan.base": "9000", "SHOP_DOOR_FEE": "٢٥٠٠",
        "SHOP_HANDLING_FEE": "6,000"}), actor_id=None)
    assert set(changed) == {"SHOP_DELIVERY_FEES", "SHOP_DOOR_FEE", "SHOP_HANDLING_FEE"}
    assert fees.delivery_fee("kurdistan", 2500, door=True) == 9000 + 2 * 1000 + 2500
    assert fees.delivery_fee("same_governorate", 500, door=False) == 3000  # untouched
    assert fees.handling_fee() == 6000
    audit = db.scalar(select(AuditRecord).where(AuditRecord.object_id == "SHOP_DELIVERY_FEES"))
    assert audit.details["before"]["kurdistan"]["base"] == 8000
    assert audit.details["after"]["kurdistan"]["base"] == 9000
    assert audit.details["after"]["other_governorate"] == {"base": 6000, "per_kg": 1000}


def test_one_bad_figure_saves_none_of_them(app_ctx):
    with pytest.raises(ValidationFailed) as err:
        overrides.change_figures("shop_fees", _typed(**{
            "SHOP_DOOR_FEE": "100", "SHOP_HANDLING_FEE": "-1"}), actor_id=None)
    assert list(err.value.fields) == ["SHOP_HANDLING_FEE"]
    assert fees.delivery_fee("kurdistan", 1000, door=True) == 10000
    assert db.scalars(select(AuditRecord)).first() is None


def test_the_fees_page_shows_every_figure_in_arabic(client, app):
    from tests.app.test_auth_support import log_in, make_office, make_user

    make_office(app)
    make_user(app, email="fees-sup@example.iq", roles=("supervisor",), office="BGD-01")
    assert log_in(client, "fees-sup@example.iq").status_code == 302
    res = client.get("/backoffice/admin/shop-fees")
    body = res.get_data(as_text=True)
    assert res.status_code == 200
    assert "التوصيل إلى الباب" in body and "أجور التخليص الكمركي" in body
    assert "Delivery" not in body
