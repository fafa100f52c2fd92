"""The clerk's and officer's pages: acceptance, labels, scanning, upload, customs queue."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import select

from app.database import db, unit_of_work
from tests.tracking.helpers import domestic_draft, inbound_draft, login, run_jobs
from tracking.models import CustomsCase, IngestBatch, Parcel
from tracking.services import customs
from tracking.services.parcels import preadvise, register_inbound

ACCEPT_FORM = {
    "acceptance_key": "k-1", "service": "parcel", "direction": "domestic",
    "sender_name": "أحمد الكاظمي", "sender_phone": "07701234567",
    "sender_governorate": "IQ-BG", "sender_district": "الكرادة", "sender_landmark": "",
    "recipient_name": "فاطمة الموسوي", "recipient_phone": "07801234567",
    "recipient_governorate": "IQ-BA", "recipient_district": "العشار",
    "recipient_landmark": "قرب سوق حنا الشيخ", "weight_grams": "1500", "length_cm": "20",
    "width_cm": "10", "height_cm": "10", "payment_method": "cash",
}


def test_anonymous_and_wrong_roles_are_kept_out(client, officer):
    assert client.get("/backoffice/parcels/accept").status_code in (302, 401)
    login(client, officer)
    assert client.get("/backoffice/parcels/accept").status_code == 403


def test_clerk_accepts_at_the_counter_and_prints_the_label(client, clerk):
    login(client, clerk)
    page = client.get("/backoffice/parcels/accept")
    assert page.status_code == 200 and "weight_grams" in page.get_data(as_text=True)
    res = client.post("/backoffice/parcels/accept", data=ACCEPT_FORM)
    assert res.status_code == 302
    parcel = db.scalar(select(Parcel))
    assert parcel.status == "picked_up" and parcel.postage_amount == 6000
    assert res.headers["Location"].endswith(f"/backoffice/parcels/{parcel.tracking_number}"
                                            "?printed=1")
    pdf = client.get(f"/backoffice/parcels/{parcel.tracking_number}/label.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    # The same form posted again (double click) makes no second parcel.
    client.post("/backoffice/parcels/accept", data=ACCEPT_FORM)
    assert db.query(Parcel).count() == 1


def test_zero_weight_is_shown_beside_its_field(client, clerk):
    login(client, clerk)
    res = client.post("/backoffice/parcels/accept", data={**ACCEPT_FORM, "weight_grams": "0",
                                                          "acceptance_key": "k-2"})
    assert res.status_code == 422
    assert "field-error" in res.get_data(as_text=True)
    assert db.query(Parcel).count() == 0


def test_scans_confirm_or_refuse_visibly(client, clerk, offices):
    login(client, clerk)
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    assert "scan-input" in client.get("/backoffice/parcels/scan").get_data(as_text=True)

    def scan(number, code, **extra):
        return client.post("/backoffice/parcels/scan", json={
            "number": number, "code": code, "office_id": offices[0].id, **extra}).get_json()

    assert scan(n.lower(), "EMA")["outcome"] == "accepted"
    assert scan(n, "EDD")["outcome"] == "accepted"
    assert scan("EE123456785IQ", "EDD")["reason_code"] == "unknown_parcel"
    assert scan("EE123456786IQ", "EDD")["reason_code"] == "invalid_number"
    assert scan(n, "EMH")["reason_code"] == "missing_reason"
    ok = scan(n, "EMH", reason_code="no_one_home", action_code="retry")
    assert ok["outcome"] == "accepted" and ok["status"] == "delivery_failed"


def test_csv_upload_is_processed_and_each_row_reported(client, clerk, offices):
    login(client, clerk)
    parcel = preadvise(domestic_draft())
    csv_data = (
        "tracking_number,code,occurred_at,office_code\n"
        f"{parcel.tracking_number},EMA,2025-01-01T10:00:00+03:00,BGD01\n"
        f"{parcel.tracking_number},EMI,2025-01-01T11:00:00+03:00,BGD01\n"
    ).encode()
    res = client.post("/backoffice/parcels/ingest",
                      data={"file": (io.BytesIO(csv_data), "pda.csv")},
                      content_type="multipart/form-data")
    assert res.status_code == 302
    run_jobs()
    page = client.get(res.headers["Location"]).get_data(as_text=True)
    batch = db.scalar(select(IngestBatch))
    assert (batch.accepted, batch.rejected) == (1, 1)
    assert "missing_receiver" not in page and "EMI" in page


def test_upload_of_a_bad_file_says_why(client, clerk):
    login(client, clerk)
    res = client.post("/backoffice/parcels/ingest",
                      data={"file": (io.BytesIO(b"number,code\n1,2\n"), "x.csv")},
                      content_type="multipart/form-data")
    assert res.status_code == 422 and "occurred_at" in res.get_data(as_text=True)


def test_partner_api_needs_a_key_and_reports_rows(client, app, offices):
    from tracking.services import partners

    with unit_of_work():
        _partner, _key, secret = partners.issue_key("turkpost")
        parcel = register_inbound("LX123456785CN", inbound_draft())
    events = [{"tracking_number": "LX123456785CN", "code": "EMC",
               "occurred_at": "2025-01-01T10:00:00+08:00", "event_id": "tp-1",
               "location": "ISTANBUL"},
              {"tracking_number": "LX123456785CN", "code": "ZZZ",
               "occurred_at": "2025-01-01T10:00:00+08:00"}]
    assert client.post("/api/v1/tracking-events", json=events).status_code == 401
    res = client.post("/api/v1/tracking-events", json={"events": events},
                      headers={"Authorization": f"Bearer {secret}"})
    assert res.status_code == 202
    run_jobs()
    summary = client.get(res.get_json()["status_url"],
                         headers={"Authorization": f"Bearer {secret}"}).get_json()
    assert [r["outcome"] for r in summary["rows"]] == ["accepted", "rejected"]
    assert db.get(Parcel, parcel.id).status == "in_transit"


@pytest.fixture()
def held_case(offices, clerk):
    from tracking.services import events as ev
    from tracking.services.parcels import Article

    customs.import_tariff(customs.SAMPLE_TARIFF_CSV.read_bytes(), actor_id=None)
    register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Smart watch", quantity=1, value_amount=2000,
                value_currency="USD", hs_code="999999", origin_country="CN")]))
    ev.record_scan(number="LX123456785CN", code="EMD", office_id=offices[0].id,
                   actor_id=clerk.id)
    run_jobs()
    return db.scalar(select(CustomsCase))


def test_officer_works_the_queue(client, officer, held_case):
    login(client, officer)
    assert "LX123456785CN" in client.get("/backoffice/customs/").get_data(as_text=True)
    page = client.get(f"/backoffice/customs/{held_case.id}").get_data(as_text=True)
    assert "Smart watch" in page
    article_id = held_case.parcel.articles[0].id
    client.post(f"/backoffice/customs/{held_case.id}/reclassify",
                data={"article_id": article_id, "hs_code": "910211", "note": "watch"})
    client.post(f"/backoffice/customs/{held_case.id}/decide",
                data={"note": "ok", "outcome": "return", "release": "1"})
    db.expire_all()
    case = db.get(CustomsCase, held_case.id)
    assert case.state == "released" and case.decided_by_id == officer.id
    assert "LX123456785CN" not in client.get("/backoffice/customs/").get_data(as_text=True)


def test_counter_reprint_serves_the_label_kept_at_first_print(client, clerk):
    """Acceptance draws no label; the first print draws and keeps it; a reprint is the
    same bytes, and a size never printed is drawn when asked for."""
    from tracking.models import ParcelLabel

    login(client, clerk)
    client.post("/backoffice/parcels/accept", data={**ACCEPT_FORM, "acceptance_key": "k-9"})
    parcel = db.scalar(select(Parcel))
    assert db.query(ParcelLabel).count() == 0
    url = f"/backoffice/parcels/{parcel.tracking_number}/label.pdf"
    first = client.get(url)
    assert first.status_code == 200 and first.data.startswith(b"%PDF")
    assert db.query(ParcelLabel).count() == 1
    assert client.get(url).data == first.data
    assert client.get(url + "?size=a6").data != first.data
    assert db.query(ParcelLabel).count() == 2
    assert client.get(url + "?size=a3").status_code == 404
