"""Top-up limits an administrator sets in the back office (app.overrides): every top-up
checks the limit in force now, a supervisor only sees it, and the change is audited."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.database import db
from payments import services
from payments.errors import TopUpLimitExceeded
from payments.models import JournalEntry
from tests.payments.helpers import balance
from tests.tracking.helpers import login as _log_in
from tests.tracking.helpers import make_user


def _top_up(card, clerk, office, amount: int, key: str):
    return services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=amount,
                                 currency="IQD", reference_kind="post_card",
                                 reference_id=str(card.id), purpose="card_topup",
                                 idempotency_key=key)


def test_a_lower_top_up_limit_is_enforced_at_once_and_audited(app, client, make_card,
                                                              office, clerk):
    card = make_card(balance=0)
    admin = make_user("Limits Admin", "admin", office=office)
    _log_in(client, admin)
    page = client.get("/backoffice/payments/limits")
    assert page.status_code == 200
    res = client.post("/backoffice/payments/limits", data={
        "PAYMENTS_TOPUP_MAX": "٥٠٬٠٠٠", "PAYMENTS_CARD_MAX_BALANCE": "10,000,000"})
    assert res.status_code == 302, res.get_data(as_text=True)
    with pytest.raises(TopUpLimitExceeded):
        _top_up(card, clerk, office, 50_001, "over")
    db.rollback()
    assert balance(card) == 0 and db.query(JournalEntry).count() == 0
    _top_up(card, clerk, office, 50_000, "at")
    assert balance(card) == 50_000
    [audit] = db.scalars(select(AuditRecord).where(AuditRecord.action == "settings.changed"))
    assert (audit.object_id, audit.details["before"], audit.details["after"]) == (
        "PAYMENTS_TOPUP_MAX", app.config["PAYMENTS_TOPUP_MAX"], 50_000)
    assert audit.actor_id == admin.id


def test_a_supervisor_sees_the_limits_but_cannot_change_them(client, office):
    supervisor = make_user("Limits Supervisor", "supervisor", office=office)
    _log_in(client, supervisor)
    assert client.get("/backoffice/payments/limits").status_code == 200
    res = client.post("/backoffice/payments/limits", data={
        "PAYMENTS_TOPUP_MAX": "1", "PAYMENTS_CARD_MAX_BALANCE": "1"})
    assert res.status_code == 403
    assert db.scalars(select(AuditRecord).where(
        AuditRecord.action == "settings.changed")).first() is None


@pytest.mark.parametrize("typed", ["0", "abc", "-5", "1e6"])
def test_a_limit_below_one_or_not_a_number_is_refused(client, office, typed):
    admin = make_user("Limits Admin", "admin", office=office)
    _log_in(client, admin)
    res = client.post("/backoffice/payments/limits", data={
        "PAYMENTS_TOPUP_MAX": typed, "PAYMENTS_CARD_MAX_BALANCE": "10000000"})
    assert res.status_code == 422
    assert db.scalars(select(AuditRecord).where(
        AuditRecord.action == "settings.changed")).first() is None
