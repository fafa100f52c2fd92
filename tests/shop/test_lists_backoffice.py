"""Every back-office list uses the shared list mechanism (app/listing.py): each opens,
refuses malformed filters and cursors with a 400, and exports the whole filter as CSV;
the merchants list pages through every shop once, and a supervisor's export of people
holds only the staff they manage."""

from __future__ import annotations

import csv
import io
import re

import pytest

from app.auth import services as auth
from app.auth.models import Role
from app.database import db
from shop.models import MerchantStatus
from tests.shop.helpers import make_merchant, make_office

PASSWORD = "correct horse battery"

# (page, CSV export, a filter and a value it must refuse)
LISTS = [
    ("/backoffice/admin/audit", "/backoffice/admin/audit.csv", "since", "31-12-2026"),
    ("/backoffice/admin/notifications", "/backoffice/admin/notifications.csv", "channel",
     "fax"),
    ("/backoffice/admin/users", "/backoffice/admin/users.csv", "role", "emperor"),
    ("/backoffice/admin/merchants/", "/backoffice/admin/merchants/export.csv", "status",
     "sleeping"),
    ("/backoffice/procurement/", "/backoffice/procurement/export.csv", "until", "tomorrow"),
    ("/backoffice/customs/", "/backoffice/customs/export.csv", "state", "lost"),
    ("/backoffice/payments/disputes", "/backoffice/payments/disputes.csv", "payment",
     "P-12x"),
    ("/backoffice/payments/refund-requests", "/backoffice/payments/refund-requests.csv",
     "status", "requested"),
    ("/backoffice/admin/offices", "/backoffice/admin/offices.csv", "open", "maybe"),
    ("/backoffice/parcels/delayed", "/backoffice/parcels/delayed.csv", "since", "2026-99-01"),
]


def _login(client, role: Role, email: str, office=None):
    office = office or make_office()
    db.commit()
    user = auth.create_user("Staff", email=email, password=PASSWORD, roles=[role],
                            post_office_code=office.code)
    db.commit()
    client.post("/login", data={"identifier": email, "password": PASSWORD})
    return user


def _csv(resp) -> list[list[str]]:
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    raw = resp.get_data()
    assert raw.startswith("\ufeff".encode())
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


@pytest.mark.parametrize("page,export,name,bad", LISTS)
def test_each_list_opens_refuses_bad_input_and_exports(client, app, page, export, name, bad):
    _login(client, Role.ADMIN, "admin@example.iq")
    resp = client.get(page)
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert 'class="bo-search list-filters"' in html and "تنزيل ملف CSV" in html
    assert client.get(page, query_string={name: bad}).status_code == 400
    assert client.get(export, query_string={name: bad}).status_code == 400
    assert client.get(page, query_string={"after": "not-a-cursor"}).status_code == 400
    assert client.get(page, query_string={"per_page": "1000000"}).status_code == 400
    rows = _csv(client.get(export))
    assert rows and all(cell for cell in rows[0]), "a header row"


def test_merchants_page_through_every_shop_once_and_export_the_filter(client, app):
    _login(client, Role.ADMIN, "admin@example.iq")
    made = [make_merchant(status=MerchantStatus.PENDING if i % 2 else MerchantStatus.ACTIVE)
            for i in range(7)]
    db.commit()
    seen: list[str] = []
    url = "/backoffice/admin/merchants/?per_page=3"
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += re.findall(r'/backoffice/admin/merchants/(\d+)"', html)
        more = re.search(r'rel="next" href="([^"]+)"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
        make_merchant()  # a shop signs up while the admin reads: it shifts nothing
        db.commit()
    original = [str(m.id) for m in made]
    assert [s for s in seen if s in original] == list(reversed(original))
    assert len(seen) == len(set(seen))
    rows = _csv(client.get("/backoffice/admin/merchants/export.csv?status=pending"))
    assert sorted(int(r[0]) for r in rows[1:]) == sorted(m.id for m in made[1::2])
    assert all(r[2].startswith("متجر") for r in rows[1:]), "Arabic names survive"


def test_a_supervisor_lists_and_exports_only_the_staff_they_manage(client, app):
    office = make_office()
    other = make_office()
    db.commit()
    clerk = auth.create_user("كاتب هنا", email="here@example.iq", password=PASSWORD,
                             roles=[Role.CLERK], post_office_code=office.code)
    auth.create_user("كاتب هناك", email="there@example.iq", password=PASSWORD,
                     roles=[Role.CLERK], post_office_code=other.code)
    auth.create_user("مدير", email="boss@example.iq", password=PASSWORD,
                     roles=[Role.ADMIN], post_office_code=office.code)
    db.commit()
    _login(client, Role.SUPERVISOR, "sup@example.iq", office=office)
    html = client.get("/backoffice/admin/users").get_data(as_text=True)
    body = html.split("<tbody>")[1]
    assert "كاتب هنا" in body and "كاتب هناك" not in body and "مدير" not in body
    rows = _csv(client.get("/backoffice/admin/users.csv"))
    assert [int(r[0]) for r in rows[1:]] == [clerk.id]
    # Asking for another office's staff by filter gives an error, not their names.
    assert client.get(f"/backoffice/admin/users.csv?office={other.id}").status_code == 400


@pytest.mark.parametrize("page,export,args", [
    ("/backoffice/parcels/", "/backoffice/parcels/parcels.csv", "status=delivered"),
    ("/backoffice/payments/payments", "/backoffice/payments/payments.csv", "method=cash"),
])
def test_the_lists_behind_the_dashboard_page_and_export_with_its_arguments(
        client, app, page, export, args):
    _login(client, Role.ADMIN, "admin@example.iq")
    html = client.get(f"{page}?{args}").get_data(as_text=True)
    assert "تنزيل ملف CSV" in html
    assert re.search(r'download href="[^"]*\?[^"]*' + re.escape(args), html), \
        "the export keeps the figure's arguments"
    assert client.get(f"{page}?{args}&after=forged").status_code == 400
    rows = _csv(client.get(f"{export}?{args}"))
    assert rows[0] and len(rows) == 1
