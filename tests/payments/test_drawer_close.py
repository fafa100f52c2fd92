"""Closing the clerk's day: counted cash, the difference, a signed row that cannot change,
no cash into a closed day, one close when two race, and no opening another office's
drawer."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.audit import AuditRecord
from app.auth.models import PostOffice, User
from app.database import db, get_engine, unit_of_work
from payments import drawer, services
from payments.errors import DrawerAlreadyClosed, DrawerDayClosed
from payments.models import DrawerDay, JournalEntry
from tests.payments.helpers import ledger_problems

PASSWORD = "correct horse 42"


def person(name: str, *roles: str, office: PostOffice | None = None) -> User:
    from app.auth.services import create_user

    u = create_user(name, email=f"{name.lower().replace(' ', '.')}@barid.iq", password=PASSWORD,
                    roles=roles, post_office_code=office.code if office else None)
    return db.get(User, u.id)


def login(client, user: User) -> None:
    client.post("/logout")
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def audits(action: str) -> list[AuditRecord]:
    return list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)
                           .order_by(AuditRecord.id)))


@pytest.fixture()
def offices(app_ctx):
    baghdad = PostOffice(code="BGD01", name_ar="مكتب بريد بغداد المركزي",
                         name_en="Baghdad Central Post Office", governorate="IQ-BG")
    basra = PostOffice(code="BSR01", name_ar="مكتب بريد البصرة", name_en="Basra Post Office",
                       governorate="IQ-BA")
    db.add_all([baghdad, basra])
    db.commit()
    return baghdad, basra


def take_cash(office: PostOffice, clerk: User, amount: int, key: str):
    with unit_of_work():
        return services.receive_cash(office_id=office.id, clerk_id=clerk.id, amount=amount,
                                     currency="IQD", reference_kind="counter",
                                     reference_id=key, purpose="postage",
                                     idempotency_key=key)


def test_clerk_closes_the_day_with_the_difference_and_the_day_cannot_change(client, offices):
    baghdad, _ = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    take_cash(baghdad, clerk, 25_000, "k1")
    take_cash(baghdad, clerk, 5_000, "k2")
    login(client, clerk)
    page = client.get("/backoffice/payments/drawer").get_data(as_text=True)
    assert 'id="drawer-close"' in page

    # Counted in Arabic-Indic digits with a separator; 1,000 dinars are missing.
    res = client.post("/backoffice/payments/drawer/close",
                      data={"counted": "٢٩٬٠٠٠", "day": drawer.business_date().isoformat()})
    assert res.status_code == 302
    db.expire_all()
    row = db.scalar(select(DrawerDay).where(DrawerDay.office_id == baghdad.id))
    assert (row.expected, row.counted, row.difference) == (30_000, 29_000, -1_000)
    assert row.closed_by_id == clerk.id and drawer.verify(row)
    [audit] = audits("drawer.day_closed")
    assert audit.details["after"]["difference"] == -1_000 and audit.actor_id == clerk.id

    page = client.get("/backoffice/payments/drawer").get_data(as_text=True)
    assert 'id="drawer-difference"' in page and 'id="drawer-close"' not in page
    pdf = client.get("/backoffice/payments/drawer.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")

    # A second close is refused and changes nothing.
    again = client.post("/backoffice/payments/drawer/close", data={"counted": "30000"},
                        follow_redirects=True)
    assert "already closed" in again.get_data(as_text=True) or \
        "مغلق" in again.get_data(as_text=True)
    db.expire_all()
    assert db.scalar(select(DrawerDay.counted)) == 29_000

    # No cash may go into the closed day: refused with a clear error, nothing booked.
    entries = db.scalar(select(text("count(*)")).select_from(JournalEntry))
    with pytest.raises(DrawerDayClosed):
        take_cash(baghdad, clerk, 1_000, "k3")
    db.rollback()
    assert db.scalar(select(text("count(*)")).select_from(JournalEntry)) == entries
    # A retry of a payment taken before the close is still answered (it moves nothing).
    assert take_cash(baghdad, clerk, 5_000, "k2").amount == 5_000
    assert ledger_problems() == []

    # The ORM refuses to edit or delete the row.
    row = db.get(DrawerDay, row.id)
    row.counted = 30_000
    with pytest.raises(PermissionError):
        db.flush()
    db.rollback()


def test_wrong_counts_are_refused_and_nothing_is_closed(client, offices):
    baghdad, _ = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    login(client, clerk)
    for bad in ("", "-5", "12.5", "abc", "1e9", "9" * 20):
        res = client.post("/backoffice/payments/drawer/close", data={"counted": bad},
                          follow_redirects=True)
        assert res.status_code == 200
    tomorrow = drawer.business_date().toordinal() + 1
    from datetime import date
    client.post("/backoffice/payments/drawer/close",
                data={"counted": "0", "day": date.fromordinal(tomorrow).isoformat()})
    db.expire_all()
    assert db.scalar(select(DrawerDay)) is None


def test_other_offices_drawer_is_forbidden_and_audited(client, offices):
    baghdad, basra = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    login(client, clerk)
    for url in (f"/backoffice/payments/drawer?office={basra.id}",
                f"/backoffice/payments/drawer.pdf?office={basra.id}",
                "/backoffice/payments/drawer?office=99999999999999999999"):
        assert client.get(url).status_code == 403
    res = client.post("/backoffice/payments/drawer/close",
                      data={"counted": "0", "office": str(basra.id)})
    assert res.status_code == 403
    db.expire_all()
    assert db.scalar(select(DrawerDay)) is None
    refused = audits("drawer.forbidden")
    assert len(refused) == 4 and all(a.actor_id == clerk.id for a in refused)
    assert refused[0].object_id == str(basra.id)
    # Their own office, named or not, opens.
    assert client.get(f"/backoffice/payments/drawer?office={baghdad.id}").status_code == 200
    # An administrator may open any office's drawer.
    admin = person("Huda Admin", "admin", office=baghdad)
    login(client, admin)
    assert client.get(f"/backoffice/payments/drawer?office={basra.id}").status_code == 200


def test_tampered_row_is_detected(app, client, offices):
    baghdad, _ = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    take_cash(baghdad, clerk, 10_000, "t1")
    with unit_of_work():
        row = drawer.close_day(baghdad.id, drawer.business_date(), counted=10_000,
                               clerk_id=clerk.id)
    assert drawer.verify(row) and row.difference == 0
    # The database itself refuses an UPDATE (append-only trigger)...
    with pytest.raises(Exception, match="append-only"), db.begin_nested():
        db.execute(text("UPDATE drawer_days SET counted = 1 WHERE id = :i"), {"i": row.id})
    # ...so someone with the database's keys turns it off and edits the figures.
    db.execute(text("ALTER TABLE drawer_days DISABLE TRIGGER drawer_days_append_only"))
    db.execute(text("UPDATE drawer_days SET counted = 12000, difference = 2000 WHERE id = :i"),
               {"i": row.id})
    db.execute(text("ALTER TABLE drawer_days ENABLE TRIGGER drawer_days_append_only"))
    db.expire_all()
    assert not drawer.verify(db.get(DrawerDay, row.id))
    login(client, clerk)
    page = client.get("/backoffice/payments/drawer").get_data(as_text=True)
    assert "flash-error" in page and 'id="drawer-difference"' in page


@pytest.mark.commits
def test_two_closes_at_once_make_one(app, offices):
    baghdad, _ = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    db.commit()
    take_cash(baghdad, clerk, 7_000, "c1")
    db.commit()
    office_id, clerk_id = baghdad.id, clerk.id
    day = drawer.business_date()
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def close(counted: int) -> None:
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    drawer.close_day(office_id, day, counted=counted, clerk_id=clerk_id)
                outcomes.append("closed")
            except DrawerAlreadyClosed:
                outcomes.append("refused")
            finally:
                db.remove()

    threads = [threading.Thread(target=close, args=(7_000 + i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["closed", "refused", "refused", "refused"]
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM drawer_days")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = "
                                 "'drawer.day_closed'")).scalar() == 1


@pytest.mark.commits
def test_cash_waiting_on_the_drawer_while_it_closes_is_refused(app, offices):
    """A cash payment and the close race: either the payment is in the expected cash
    or it is refused; never booked into a closed day."""
    baghdad, _ = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    db.commit()
    take_cash(baghdad, clerk, 3_000, "r0")
    db.commit()
    office_id, clerk_id = baghdad.id, clerk.id
    barrier = threading.Barrier(2)
    result: dict[str, object] = {}

    def pay() -> None:
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    services.receive_cash(office_id=office_id, clerk_id=clerk_id, amount=4_000,
                                          currency="IQD", reference_kind="counter",
                                          reference_id="r1", purpose="postage",
                                          idempotency_key="r1")
                result["pay"] = "booked"
            except DrawerDayClosed:
                result["pay"] = "refused"
            finally:
                db.remove()

    def close() -> None:
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    row = drawer.close_day(office_id, drawer.business_date(), counted=3_000,
                                           clerk_id=clerk_id)
                result["expected"] = row.expected
            finally:
                db.remove()

    threads = [threading.Thread(target=pay), threading.Thread(target=close)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (result["pay"], result["expected"]) in (("booked", 7_000), ("refused", 3_000))


def test_a_correction_after_the_close_is_a_new_entry_on_the_next_day(client, offices,
                                                                     monkeypatch, tmp_path):
    """The closed day keeps its figures; the next business day takes cash again, and
    the drawer's next day starts from what the ledger says."""
    from datetime import timedelta

    from app.database import utcnow
    from payments import ledger

    baghdad, _ = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    take_cash(baghdad, clerk, 9_000, "n1")
    today = drawer.business_date()
    with unit_of_work():
        closed = drawer.close_day(baghdad.id, today, counted=9_000, clerk_id=clerk.id)
    login(client, clerk)
    pdf = client.get("/backoffice/payments/drawer.pdf")
    assert pdf.status_code == 200
    (tmp_path / "drawer.pdf").write_bytes(pdf.data)
    import os
    if os.environ.get("BARID_KEEP_PDF"):
        (Path(os.environ["BARID_KEEP_PDF"]) / "drawer.pdf").write_bytes(pdf.data)

    tomorrow = utcnow() + timedelta(days=1)
    monkeypatch.setattr(drawer, "utcnow", lambda: tomorrow)
    monkeypatch.setattr(ledger, "utcnow", lambda: tomorrow)
    take_cash(baghdad, clerk, 1_000, "n2")  # e.g. a refund found missing, booked anew
    db.expire_all()
    again = db.get(DrawerDay, closed.id)
    assert (again.expected, again.counted) == (9_000, 9_000) and drawer.verify(again)
    report = services.drawer_report(baghdad.id, today + timedelta(days=1))
    assert (report.opening, report.closing) == (9_000, 10_000)
    assert services.drawer_report(baghdad.id, today).closing == 9_000
