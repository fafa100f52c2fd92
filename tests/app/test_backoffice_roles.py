"""Every back-office route against every role: a page that forgets its role check, or a
new page nobody put in this table, fails here.

The table is written out by hand on purpose: it is the statement of who may open what.
Anonymous visitors are sent to login; a logged-in person whose roles the page does not
name gets a 403, and the refusal is in the audit log.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select
from werkzeug.routing import Rule

from app.audit import AuditRecord
from app.database import db
from tests.app.test_auth_support import log_in, make_office, make_user

STAFF = {"clerk", "customs_officer", "procurement", "supervisor", "admin"}
COUNTER = {"clerk", "supervisor", "admin"}
SUPERVISION = {"supervisor", "admin"}
ADMIN = {"admin"}
CUSTOMS = {"customs_officer", "supervisor", "admin"}
PROCUREMENT = {"procurement", "admin"}

ALLOWED: dict[str, set[str]] = {
    "backoffice.index": STAFF,
    "backoffice.search": STAFF,
    "backoffice.admin_audit": SUPERVISION,
    "backoffice.admin_audit_csv": SUPERVISION,
    "backoffice.admin_notifications": SUPERVISION,
    "backoffice.admin_notifications_csv": SUPERVISION,
    "backoffice.admin_notification_templates": ADMIN,
    "backoffice.admin_notification_template": ADMIN,
    "backoffice.admin_notification_template_restore": ADMIN,
    "backoffice.admin_offices": ADMIN,
    "backoffice.admin_offices_csv": ADMIN,
    "backoffice.admin_office": ADMIN,
    "backoffice.admin_office_action": ADMIN,
    # Supervisors manage the clerks and officers of their own office.
    "backoffice.admin_users": SUPERVISION,
    "backoffice.admin_users_csv": SUPERVISION,
    "backoffice.admin_user": SUPERVISION,
    "backoffice.admin_user_action": SUPERVISION,
    "backoffice.admin_user_grant": ADMIN,
    "backoffice.admin_user_revoke": ADMIN,
    "shop_admin.merchants": ADMIN,
    "shop_admin.merchants_csv": ADMIN,
    "shop_admin.merchant": ADMIN,
    "shop_admin.approve": ADMIN,
    "shop_admin.commission": ADMIN,
    "shop_admin.post_office": ADMIN,
    "shop_admin.suspend": ADMIN,
    "shop_orders_bo.order": COUNTER,
    # Finance: supervisors and admins record bank transfers paid to merchants.
    "shop_payouts.payouts": SUPERVISION,
    "shop_payouts.merchant_payouts": SUPERVISION,
    "shop_procurement.requests": PROCUREMENT,
    "shop_procurement.requests_csv": PROCUREMENT,
    "shop_procurement.buy_request": PROCUREMENT,
    "shop_procurement.approve": PROCUREMENT,
    "shop_procurement.purchased": PROCUREMENT,
    "shop_procurement.reject": PROCUREMENT,
    "customs_bo.queue": CUSTOMS,
    "customs_bo.queue_csv": CUSTOMS,
    "customs_bo.case": CUSTOMS,
    "customs_bo.decide": CUSTOMS,
    "customs_bo.reclassify": CUSTOMS,
    "customs_bo.revalue": CUSTOMS,
    "customs_bo.tariff": SUPERVISION,
    # Supervisors preview and apply tariff files, as they loaded them before.
    "customs_bo.tariff_apply": SUPERVISION,
    # Fees, limits and postage: supervisors see them; only an admin's save is taken
    # (a supervisor's POST is refused, see tests/tracking/test_fees.py).
    "customs_bo.fees": SUPERVISION,
    "tracking_bo.postage_tariff": SUPERVISION,
    "tracking_bo.postage_bands": SUPERVISION,
    "payments_bo.limits": SUPERVISION,
    "shop_fees_bo.fees": SUPERVISION,
    "tracking_bo.parcel": COUNTER | {"customs_officer"},
    "tracking_bo.declaration": COUNTER | {"customs_officer"},
    "tracking_bo.duty_receipt": COUNTER | {"customs_officer"},
    "tracking_bo.pay_duty": COUNTER,
    "tracking_bo.handover": COUNTER,
    "tracking_bo.label": COUNTER,
    "tracking_bo.labels_batch": COUNTER,
    "tracking_bo.accept": COUNTER,
    "tracking_bo.delayed": SUPERVISION,
    "tracking_bo.delayed_csv": SUPERVISION,
    # The lists behind the dashboard's figures (a supervisor's own office, an admin's all).
    "tracking_bo.parcels": SUPERVISION,
    "tracking_bo.parcels_csv": SUPERVISION,
    "tracking_bo.ingest": COUNTER,
    "tracking_bo.batch": COUNTER,
    "tracking_bo.scan": COUNTER,
    "tracking_bo.scan_one": COUNTER,
    "payments_bo.find_cards": COUNTER,
    "payments_bo.card": COUNTER,
    "payments_bo.card_action": COUNTER,
    "payments_bo.top_up": COUNTER,
    "payments_bo.issue_card": COUNTER,
    "payments_bo.disputes": SUPERVISION,
    "payments_bo.disputes_csv": SUPERVISION,
    "payments_bo.payments": SUPERVISION,
    "payments_bo.payments_csv": SUPERVISION,
    "payments_bo.drawer": COUNTER,
    "payments_bo.drawer_pdf": COUNTER,
    "payments_bo.close_drawer": COUNTER,
    "payments_bo.payment": COUNTER,
    "payments_bo.receipt": COUNTER,
    "payments_bo.refund": COUNTER,
    "payments_bo.exchange_rates": SUPERVISION,
    "payments_bo.decide_rate": SUPERVISION,
    "payments_bo.reconciliation": SUPERVISION,
    "payments_bo.refund_requests": SUPERVISION,
    "payments_bo.refund_requests_csv": SUPERVISION,
    "payments_bo.decide_refund": SUPERVISION,
    # Supervisors report on their own office, admins on any office or the whole post.
    "reports_bo.index": SUPERVISION,
    "reports_bo.run": SUPERVISION,
    "reports_bo.status": SUPERVISION,
    "reports_bo.download": SUPERVISION,
}
ROLES = ("shopper", "merchant", "clerk", "customs_officer", "procurement", "supervisor",
         "admin")
# A valid S10 number for routes that take one (no such parcel needs to exist).
S10 = "CP000000014IQ"


def _backoffice_rules(app) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/backoffice")),
                  key=lambda r: (r.rule, r.endpoint))


def _request(rule: Rule) -> tuple[str, str]:
    """The method and a concrete URL for `rule`: GET when it answers GET, else POST;
    ids are 1, S10 numbers a valid one, a choice its first option."""
    values = {}
    for arg in rule.arguments:
        converter = rule._converters[arg]
        if hasattr(converter, "items"):  # any(...)
            values[arg] = sorted(converter.items)[0]
        elif arg == "number":
            values[arg] = S10
        else:
            values[arg] = 1
    url = rule.build(values, append_unknown=False)[1]
    return ("GET" if "GET" in (rule.methods or ()) else "POST"), url


def test_every_backoffice_route_is_in_the_table(app):
    """A new back-office page must be added to ALLOWED (and so have its roles decided)."""
    endpoints = {r.endpoint for r in _backoffice_rules(app)}
    assert endpoints - ALLOWED.keys() == set(), "back-office routes missing from ALLOWED"
    assert ALLOWED.keys() - endpoints == set(), "ALLOWED names routes that do not exist"


def test_an_anonymous_visitor_is_sent_to_login_from_every_backoffice_route(app, client):
    wrong = []
    for rule in _backoffice_rules(app):
        method, url = _request(rule)
        resp = client.open(url, method=method)
        if resp.status_code != 302 or not resp.headers["Location"].startswith("/login"):
            wrong.append((method, url, resp.status_code))
    assert wrong == []


@pytest.mark.parametrize("role", ROLES)
def test_each_role_opens_exactly_the_backoffice_routes_the_table_gives_it(app, client, role):
    make_office(app)
    make_user(app, email=f"{role}@example.iq", roles=(role,),
              office="BGD-01" if role in STAFF else None)
    assert log_in(client, f"{role}@example.iq").status_code == 302
    wrong = []
    refused = 0
    for rule in _backoffice_rules(app):
        method, url = _request(rule)
        status = client.open(url, method=method).status_code
        allowed = role in ALLOWED.get(rule.endpoint, set())
        if allowed and (status in (401, 403) or status >= 500):
            wrong.append(("refused or failed", method, url, status))
        if not allowed:
            refused += 1
            if status != 403:
                wrong.append(("not refused", method, url, status))
    assert wrong == []
    # Each refusal is audited: who, which page.
    with app.app_context():
        records = db.scalars(select(AuditRecord).where(
            AuditRecord.action == "auth.forbidden")).all()
        assert len(records) == refused
        if refused:
            assert {r.details["held"][0] for r in records} == {role}
            assert all(r.actor_id is not None and r.details["path"].startswith("/backoffice")
                       for r in records)
