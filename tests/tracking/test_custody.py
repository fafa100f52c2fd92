"""Custody of parcels against people: scans at the clerk's own office, repeated and stray
scans, and the hand-over at the counter (destination office, supervisor override,
receiver's identity, one hand-over only)."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.audit import AuditRecord
from app.database import db, unit_of_work
from app.i18n import BAGHDAD
from tests.tracking.helpers import PASSWORD, at, domestic_draft, login, make_user
from tracking.models import Parcel, ParcelEvent
from tracking.services import events as ev
from tracking.services.parcels import preadvise

ARABIC_DIGITS = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")


@pytest.fixture()
def basra_clerk(offices):
    return make_user("Huda Clerk", "clerk", office=offices[1])


@pytest.fixture()
def supervisor(offices):
    return make_user("Sami Supervisor", "supervisor", office=offices[0])


def _events(parcel_id: int, code: str | None = None) -> list[ParcelEvent]:
    stmt = select(ParcelEvent).where(ParcelEvent.parcel_id == parcel_id)
    if code:
        stmt = stmt.where(ParcelEvent.code == code)
    return list(db.scalars(stmt.order_by(ParcelEvent.occurred_at, ParcelEvent.id)))


def _parcel(parcel_id: int) -> Parcel:
    return db.get(Parcel, parcel_id, populate_existing=True)


def _at_basra(offices, clerk, basra_clerk) -> Parcel:
    """A parcel posted in Baghdad for Basra, arrived at the Basra delivery office."""
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    for code, office, who, hour in (("EMA", offices[0], clerk, 0), ("EDD", offices[0], clerk, 1),
                                    ("EMG", offices[1], basra_clerk, 2)):
        out = ev.record_scan(number=n, code=code, office_id=office.id, actor_id=who.id,
                             occurred_at=at(hour))
        assert out.outcome == "accepted", out.reason
    return parcel


def _scan(client, number: str, code: str, **extra):
    return client.post("/backoffice/parcels/scan",
                       json={"number": number, "code": code, **extra}).get_json()


# ---- scans ------------------------------------------------------------------------------


def test_a_scans_office_is_the_clerks_own(client, clerk, offices):
    """The scanning page offers no office; a forged office id is ignored and the scan is
    recorded at the Baghdad clerk's own office."""
    login(client, clerk)
    page = client.get("/backoffice/parcels/scan").get_data(as_text=True)
    assert 'id="office_id"' not in page and "BGD01" in page
    parcel = preadvise(domestic_draft())
    out = _scan(client, parcel.tracking_number, "EMA", office_id=offices[1].id)
    assert out["outcome"] == "accepted"
    [event] = _events(parcel.id)
    assert (event.office_id, event.actor_id) == (offices[0].id, clerk.id)
    audit = db.scalar(select(AuditRecord).where(AuditRecord.action == "parcel.event"))
    assert audit.details["office_id"] == offices[0].id


def test_a_staff_member_without_an_office_cannot_scan(client, offices):
    admin = make_user("Nour Admin", "admin")
    login(client, admin)
    parcel = preadvise(domestic_draft())
    out = _scan(client, parcel.tracking_number, "EMA", office_id=offices[0].id)
    assert (out["outcome"], out["reason_code"]) == ("rejected", "no_office")
    assert _events(parcel.id) == []


def test_a_duplicate_scan_adds_no_event_and_says_when(client, clerk, offices):
    login(client, clerk)
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    assert _scan(client, n, "EMA")["outcome"] == "accepted"
    first = _scan(client, n, "EDD")
    again = _scan(client, n.lower(), "EDD")
    assert first["outcome"] == "accepted"
    assert (again["outcome"], again["reason_code"]) == ("duplicate", "repeat_scan")
    [edd] = _events(parcel.id, "EDD")
    local = edd.occurred_at.astimezone(BAGHDAD).strftime("%H:%M")
    assert re.search(r"\b\d\d:\d\d\b", again["reason"]) and local in again["reason"]
    assert len(_events(parcel.id)) == 2
    assert db.scalar(select(func.count()).select_from(AuditRecord)
                     .where(AuditRecord.action == "parcel.event")) == 2


def test_the_repeat_window_is_a_setting_and_later_scans_count(app, clerk, offices):
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    scan = dict(number=n, office_id=offices[0].id, actor_id=clerk.id)
    ev.record_scan(code="EMA", occurred_at=at(0), **scan)
    assert ev.record_scan(code="EDD", occurred_at=at(1), **scan).outcome == "accepted"
    nine_min = at(1) + timedelta(minutes=9)
    assert ev.record_scan(code="EDD", occurred_at=nine_min, **scan).outcome == "duplicate"
    # At another office the same event is news (the parcel went through two centres).
    other = ev.record_scan(number=n, code="EDD", office_id=offices[1].id, actor_id=clerk.id,
                           occurred_at=nine_min)
    assert other.outcome == "accepted"
    later = ev.record_scan(code="EDD", occurred_at=at(1) + timedelta(minutes=11), **scan)
    assert later.outcome == "accepted"
    old = app.config["SCAN_REPEAT_WINDOW_SECONDS"]
    app.config["SCAN_REPEAT_WINDOW_SECONDS"] = 3600
    try:
        out = ev.record_scan(code="EDD", occurred_at=at(1) + timedelta(minutes=40), **scan)
    finally:
        app.config["SCAN_REPEAT_WINDOW_SECONDS"] = old
    assert out.outcome == "duplicate"
    assert len(_events(parcel.id, "EDD")) == 3


def test_partner_feeds_follow_the_same_repeat_rule(offices):
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    ev.record_partner_event(number=n, code="EMA", occurred_at=at(0), uid="h-1",
                            office_id=offices[0].id)
    first = ev.record_partner_event(number=n, code="EDD", occurred_at=at(1), uid="h-2",
                                    office_id=offices[0].id)
    # The handheld scanned the same bag twice and gave each scan its own id.
    second = ev.record_partner_event(number=n, code="EDD",
                                     occurred_at=at(1) + timedelta(minutes=2), uid="h-3",
                                     office_id=offices[0].id)
    assert (first.outcome, second.outcome) == ("accepted", "duplicate")
    assert len(_events(parcel.id, "EDD")) == 1


def test_an_event_out_of_sequence_is_kept_flagged_and_does_not_move_the_parcel_back(
        client, clerk, basra_clerk, offices):
    parcel = _at_basra(offices, clerk, basra_clerk)
    n = parcel.tracking_number
    ev.record_scan(number=n, code="EDG", office_id=offices[1].id, actor_id=basra_clerk.id,
                   occurred_at=at(3))
    assert _parcel(parcel.id).status == "out_for_delivery"
    # A stray sorting-centre scan after the parcel went out for delivery.
    login(client, clerk)
    out = _scan(client, n, "EDD")
    assert out["outcome"] == "accepted" and out["out_of_sequence"] and out["reason"]
    stray = _events(parcel.id, "EDD")[-1]
    assert stray.out_of_sequence and not stray.after_final
    assert _parcel(parcel.id).status == "out_for_delivery"
    page = client.get(f"/backoffice/parcels/{n}").get_data(as_text=True)
    assert page.count("out-of-sequence") == 1 and "flag-sequence" in page
    public = client.get(f"/api/v1/tracking/{n}").get_json()
    assert [e["code"] for e in public["events"]] == ["EDG", "EMG", "EDD", "EMA"]
    assert public["status"] == "out_for_delivery"


def test_an_arrival_reported_after_delivery_is_flagged_and_a_clerks_is_refused(
        clerk, basra_clerk, offices):
    parcel = _at_basra(offices, clerk, basra_clerk)
    n = parcel.tracking_number
    assert ev.hand_over(number=n, office_id=offices[1].id, clerk_id=basra_clerk.id,
                        receiver_name="فاطمة الموسوي", receiver_id_number="A1234567",
                        occurred_at=at(5)).outcome == "accepted"
    late = ev.record_partner_event(number=n, code="EMG", occurred_at=at(6), uid="late-1",
                                   location="BASRA HUB")
    assert late.outcome == "accepted" and late.after_final
    refused = ev.record_scan(number=n, code="EMG", office_id=offices[1].id,
                             actor_id=basra_clerk.id)
    assert (refused.outcome, refused.reason_code) == ("rejected", "closed")
    assert _parcel(parcel.id).status == "delivered"
    assert len(_events(parcel.id, "EMG")) == 2


def test_a_failed_delivery_reason_is_not_carried_to_later_scans(client, basra_clerk, offices):
    login(client, basra_clerk)
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    ev.record_scan(number=n, code="EMA", office_id=offices[1].id, actor_id=basra_clerk.id,
                   occurred_at=at(0))
    ev.record_scan(number=n, code="EDG", office_id=offices[1].id, actor_id=basra_clerk.id,
                   occurred_at=at(1))
    failed = _scan(client, n, "EMH", reason_code="no_one_home", action_code="retry")
    assert failed["outcome"] == "accepted"
    # An older scanning page sends the reason it still shows with every later scan.
    again = _scan(client, n, "EDH", reason_code="no_one_home", action_code="retry",
                  receiver_name="someone")
    assert again["outcome"] == "accepted"
    ev.record_partner_event(number=n, code="EDF", occurred_at=at(30), uid="p-1",
                            office_id=offices[1].id, reason_code="refused",
                            action_code="return_to_sender")
    emh, edh, edf = (_events(parcel.id, c)[0] for c in ("EMH", "EDH", "EDF"))
    assert (emh.reason_code, emh.action_code) == ("no_one_home", "retry")
    for later in (edh, edf):
        assert (later.reason_code, later.action_code, later.receiver_name) == (None, None, None)
    assert _parcel(parcel.id).status == "ready_for_pickup"


def test_bad_scans_get_clear_answers_and_change_nothing(client, clerk, basra_clerk, offices):
    parcel = _at_basra(offices, clerk, basra_clerk)
    n = parcel.tracking_number
    login(client, clerk)
    before = len(_events(parcel.id))
    unknown = _scan(client, "EE123456785IQ", "EDD")
    wrong_check = str((int(n[10]) + 1) % 10)
    typo = _scan(client, n[:2] + (n[2:10] + wrong_check).translate(ARABIC_DIGITS) + n[11:],
                 "EDD")
    assert (unknown["outcome"], unknown["reason_code"]) == ("rejected", "unknown_parcel")
    assert typo["outcome"] == "rejected" and typo["reason_code"] == "invalid_number"
    assert unknown["reason"] and typo["reason"]
    assert len(_events(parcel.id)) == before
    # The same number typed on an Arabic keyboard is the parcel's number.
    arabic = n[:2] + n[2:11].translate(ARABIC_DIGITS) + n[11:]
    out = _scan(client, arabic, "EDE")
    assert (out["outcome"], out["tracking_number"]) == ("accepted", n)
    ev.hand_over(number=n, office_id=offices[1].id, clerk_id=basra_clerk.id,
                 receiver_name="فاطمة", receiver_id_number="A1")
    delivered = _scan(client, n, "EDD")
    assert (delivered["outcome"], delivered["reason_code"]) == ("rejected", "closed")
    assert delivered["reason"]
    assert len(_events(parcel.id)) == before + 2


# ---- hand-over at the counter ---------------------------------------------------------


def _hand_over(client, number: str, **data):
    form = {"receiver_name": "فاطمة الموسوي", "receiver_id_number": "A1234567", **data}
    res = client.post(f"/backoffice/parcels/{number}/handover", data=form)
    assert res.status_code == 302
    return client.get(res.headers["Location"]).get_data(as_text=True)


def test_hand_over_at_the_wrong_office_is_refused(client, clerk, basra_clerk, offices):
    parcel = _at_basra(offices, clerk, basra_clerk)
    login(client, clerk)  # a Baghdad clerk; the parcel waits in Basra
    page = _hand_over(client, parcel.tracking_number)
    assert "supervisor_login" in page  # the page offers the supervisor's approval
    assert _events(parcel.id, "EMI") == [] and _parcel(parcel.id).status == "in_transit"
    out = ev.hand_over(number=parcel.tracking_number, office_id=offices[0].id,
                       clerk_id=clerk.id, receiver_name="x", receiver_id_number="1")
    assert (out.outcome, out.reason_code) == ("rejected", "wrong_office") and out.reason


def test_a_parcel_not_yet_at_its_delivery_office_needs_a_supervisor(clerk, offices):
    parcel = preadvise(domestic_draft())
    ev.record_scan(number=parcel.tracking_number, code="EMA", office_id=offices[0].id,
                   actor_id=clerk.id)
    out = ev.hand_over(number=parcel.tracking_number, office_id=offices[0].id,
                       clerk_id=clerk.id, receiver_name="x", receiver_id_number="1")
    assert out.reason_code == "no_destination"
    # An arrival scanned in another governorate (misrouted) does not make it the
    # destination: the recipient lives in Basra.
    ev.record_scan(number=parcel.tracking_number, code="EMG", office_id=offices[0].id,
                   actor_id=clerk.id)
    out = ev.hand_over(number=parcel.tracking_number, office_id=offices[0].id,
                       clerk_id=clerk.id, receiver_name="x", receiver_id_number="1")
    assert out.reason_code == "no_destination" and _events(parcel.id, "EMI") == []


def test_a_supervisors_override_hands_over_and_is_audited(
        client, clerk, basra_clerk, supervisor, offices):
    parcel = _at_basra(offices, clerk, basra_clerk)
    login(client, clerk)
    # The clerk cannot approve their own hand-over, another clerk cannot either, and a
    # wrong password approves nothing (but is kept on the record).
    for who, password in ((clerk, PASSWORD), (basra_clerk, PASSWORD),
                          (supervisor, "not the password")):
        _hand_over(client, parcel.tracking_number, supervisor_login=who.email,
                   supervisor_password=password)
        assert _events(parcel.id, "EMI") == []
    assert db.scalar(select(func.count()).select_from(AuditRecord).where(
        AuditRecord.action == "auth.login_failed")) == 1
    page = _hand_over(client, parcel.tracking_number, supervisor_login=supervisor.email,
                      supervisor_password=PASSWORD)
    [emi] = _events(parcel.id, "EMI")
    assert (emi.office_id, emi.actor_id) == (offices[0].id, clerk.id)
    assert _parcel(parcel.id).status == "delivered"
    override = db.scalar(select(AuditRecord).where(
        AuditRecord.action == "parcel.handover_override"))
    handover = db.scalar(select(AuditRecord).where(AuditRecord.action == "parcel.handover"))
    assert override.actor_id == supervisor.id and override.details["clerk_id"] == clerk.id
    assert override.details["destination_office_id"] == offices[1].id
    assert handover.actor_id == clerk.id
    assert handover.details["approved_by_id"] == supervisor.id
    assert "A1234567" in page


def test_the_receivers_name_and_id_are_kept_for_staff_and_not_shown_in_public(
        client, clerk, basra_clerk, offices):
    parcel = _at_basra(offices, clerk, basra_clerk)
    n = parcel.tracking_number
    login(client, basra_clerk)
    for missing in ({"receiver_name": ""}, {"receiver_id_number": "  "}):
        _hand_over(client, n, **missing)
        assert _events(parcel.id, "EMI") == []
    page = _hand_over(client, n, receiver_id_number="ب ٩٨٧٦٥٤٣")
    [emi] = _events(parcel.id, "EMI")
    assert (emi.receiver_name, emi.receiver_id_number) == ("فاطمة الموسوي", "ب 9876543")
    assert "ب 9876543" in page and "فاطمة الموسوي" in page
    audit = db.scalar(select(AuditRecord).where(AuditRecord.action == "parcel.handover"))
    assert audit.actor_id == basra_clerk.id and audit.details["approved_by_id"] is None
    anonymous = client.application.test_client()
    for url in (f"/track/{n}", f"/api/v1/tracking/{n}"):
        text = anonymous.get(url).get_data(as_text=True)
        assert "9876543" not in text and "فاطمة" not in text
    # Handed over once: a second hand-over is refused and changes nothing.
    again = ev.hand_over(number=n, office_id=offices[1].id, clerk_id=basra_clerk.id,
                         receiver_name="Someone", receiver_id_number="Z9")
    assert (again.outcome, again.reason_code) == ("rejected", "already_delivered")
    assert len(_events(parcel.id, "EMI")) == 1


def test_hand_over_refuses_while_duty_is_unpaid_wherever_it_is(clerk, offices, supervisor):
    from tests.tracking.helpers import inbound_draft, run_jobs
    from tracking.models import CustomsCase
    from tracking.services import customs
    from tracking.services.parcels import register_inbound

    customs.import_tariff(customs.SAMPLE_TARIFF_CSV.read_bytes(), actor_id=None)
    register_inbound("LX123456785CN", inbound_draft())
    ev.record_scan(number="LX123456785CN", code="EMD", office_id=offices[0].id,
                   actor_id=clerk.id, occurred_at=at(0))
    run_jobs()
    case = db.scalar(select(CustomsCase))
    assert case.state == "released" and case.duty_outstanding
    ev.record_scan(number="LX123456785CN", code="EMG", office_id=offices[0].id,
                   actor_id=clerk.id, occurred_at=at(1))
    out = ev.hand_over(number="LX123456785CN", office_id=offices[0].id, clerk_id=clerk.id,
                       receiver_name="Omar Hassan", receiver_id_number="B1",
                       approver_id=supervisor.id)
    assert (out.outcome, out.reason_code) == ("rejected", "duty_unpaid")
    assert db.scalar(select(func.count()).select_from(ParcelEvent)
                     .where(ParcelEvent.code == "EMI")) == 0


@pytest.mark.commits  # each clerk's request runs on its own session and connection
def test_two_clerks_handing_over_one_parcel_at_once_hand_it_over_once(app):
    from app.auth.models import PostOffice

    with app.app_context(), unit_of_work():
        baghdad = PostOffice(code="BGD01", name_ar="بغداد", name_en="Baghdad",
                             governorate="IQ-BG")
        basra = PostOffice(code="BSR01", name_ar="البصرة", name_en="Basra",
                           governorate="IQ-BA")
        db.add_all([baghdad, basra])
        db.flush()
        clerks = [make_user(f"Counter Clerk {i}", "clerk", office=basra) for i in range(2)]
        clerk_ids, office_id = [c.id for c in clerks], basra.id
        parcel = preadvise(domestic_draft())
        number, parcel_id = parcel.tracking_number, parcel.id
        for code, hour in (("EMA", 0), ("EMG", 1)):
            ev.record_scan(number=number, code=code, office_id=office_id,
                           actor_id=clerk_ids[0], occurred_at=at(hour))
    db.remove()

    barrier = threading.Barrier(2)
    results: list[str] = []
    lock = threading.Lock()

    def counter(clerk_id: int, name: str) -> None:
        with app.app_context():
            barrier.wait()
            with unit_of_work():
                out = ev.hand_over(number=number, office_id=office_id, clerk_id=clerk_id,
                                   receiver_name=name, receiver_id_number=f"ID-{clerk_id}")
            db.remove()
        with lock:
            results.append(out.reason_code or out.outcome)

    threads = [threading.Thread(target=counter, args=(cid, f"Receiver {cid}"))
               for cid in clerk_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["accepted", "already_delivered"]
    with app.app_context():
        emis = db.scalars(select(ParcelEvent).where(ParcelEvent.parcel_id == parcel_id,
                                                    ParcelEvent.code == "EMI")).all()
        audits = db.scalar(select(func.count()).select_from(AuditRecord)
                           .where(AuditRecord.action == "parcel.handover"))
        assert len(emis) == 1 and audits == 1
        assert db.get(Parcel, parcel_id).status == "delivered"
        db.remove()
