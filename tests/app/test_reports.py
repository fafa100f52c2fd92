"""Reports: their totals are the ledger's and the parcel tables' (per office and for the
whole post, daily and monthly), long ranges are refused, a run is a job with progress,
only the right people download it, and a CSV cannot carry a spreadsheet formula."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text

from app.audit import AuditRecord
from app.auth.models import PostOffice, User
from app.database import db, unit_of_work
from app.errors import ValidationFailed
from app.i18n import BAGHDAD
from app.reports import ReportRun, RunState, periods, request_report, totals
from app.reports.render import safe_cell

PASSWORD = "correct horse 42"
D1, D2, D3 = date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 2)


def person(name: str, *roles: str, office: PostOffice | None = None) -> User:
    from app.auth.services import create_user

    u = create_user(name, email=f"{name.lower().replace(' ', '.')}@barid.iq", password=PASSWORD,
                    roles=roles, post_office_code=office.code if office else None)
    return db.get(User, u.id)


def login(client, user: User) -> None:
    client.post("/logout")
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def baghdad_time(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), BAGHDAD).astimezone(UTC)


def run_jobs() -> int:
    from flask import current_app

    from app.jobs import drain

    db.commit()
    return drain(current_app, max_rounds=50)


@pytest.fixture()
def offices(app_ctx):
    baghdad = PostOffice(code="BGD01", name_ar="مكتب بريد بغداد المركزي",
                         name_en="Baghdad Central Post Office", governorate="IQ-BG")
    basra = PostOffice(code="BSR01", name_ar="=HYPERLINK(\"http://x\")",
                       name_en="=HYPERLINK(\"http://evil\")", governorate="IQ-BA")
    db.add_all([baghdad, basra])
    db.commit()
    return baghdad, basra


@pytest.fixture()
def seeded(offices, monkeypatch):
    """Money and parcels over three days across a month's end, at both offices and
    online, with entries either side of Baghdad's midnight."""
    from payments import ledger
    from payments.models import AccountKind, PostCard
    from tracking.models import Parcel, ParcelEvent

    baghdad, basra = offices
    clerk = person("Noor Clerk", "clerk", office=baghdad)
    clock = {"now": baghdad_time(D1, 10)}
    monkeypatch.setattr(ledger, "utcnow", lambda: clock["now"])

    def book(when, key, legs, office):
        clock["now"] = when
        with unit_of_work():
            ledger.post_entry(idempotency_key=key, kind="test", legs=legs, actor_id=clerk.id,
                              office_id=office.id if office else None)

    with unit_of_work():
        drawer_b = ledger.drawer_account(baghdad.id)
        drawer_s = ledger.drawer_account(basra.id)
        postage = ledger.purpose_account("postage", "IQD")
        duty = ledger.purpose_account("customs_duty", "IQD")
        shop = ledger.purpose_account("shop_order", "IQD")
        payable = ledger.purpose_account("merchant_order", "IQD")
        stripe = ledger.stripe_clearing_account("IQD")
        cards = []
        for i, office in enumerate((baghdad, basra)):
            acc = ledger.get_account(f"card:{i}", AccountKind.POST_CARD, "IQD",
                                     no_overdraft=True)
            hold = ledger.get_account(f"cardhold:{i}", AccountKind.CARD_HOLD, "IQD",
                                      no_overdraft=True)
            card = PostCard(number=f"900000000000000{i}", holder_name="زينب", national_id=str(i),
                            mobile="+9647701234567", expires_on=date(2030, 1, 1),
                            account_id=acc.id, hold_account_id=hold.id,
                            issued_at_office_id=office.id)
            db.add(card)
            cards.append((acc, hold))
    d, c = ledger.debit, ledger.credit
    book(baghdad_time(D1, 10), "e1", [d(drawer_b, 5_000), c(postage, 5_000)], baghdad)
    book(baghdad_time(D1, 23, 30), "e2", [d(drawer_b, 2_000), c(postage, 2_000)], baghdad)
    # 00:30 in Baghdad on D2 is still D1 in UTC: it belongs to D2.
    book(baghdad_time(D2, 0, 30), "e3", [d(drawer_s, 7_000), c(duty, 7_000)], basra)
    book(baghdad_time(D2, 9), "e4", [d(drawer_b, 50_000), c(cards[0][0], 50_000)], baghdad)
    book(baghdad_time(D2, 12), "e5", [d(drawer_s, 30_000), c(cards[1][0], 30_000)], basra)
    book(baghdad_time(D2, 13), "e6", [d(cards[0][0], 8_000), c(cards[0][1], 8_000)], None)
    book(baghdad_time(D3, 11), "e7", [d(stripe, 20_000), c(payable, 18_000), c(shop, 2_000)],
         None)
    book(baghdad_time(D3, 12), "e8", [d(postage, 1_000), c(drawer_b, 1_000)], baghdad)  # refund
    book(baghdad_time(D3, 14), "e9", [d(drawer_s, 3_000), c(postage, 3_000)], basra)
    db.commit()

    def parcel(n: int) -> Parcel:
        p = Parcel(tracking_number=f"EE{n:09d}IQ", service="parcel", sender_name="s",
                   weight_grams=500, recipient_name="r")
        db.add(p)
        db.flush()
        return p

    def event(p, code, when, office, **kw):
        db.add(ParcelEvent(uid=f"{p.id}-{code}-{when.isoformat()}", parcel_id=p.id, code=code,
                           status="x", occurred_at=when,
                           office_id=office.id if office else None, **kw))

    p1, p2, p3, p4 = (parcel(i) for i in range(1, 5))
    event(p1, "EMA", baghdad_time(D1, 9), baghdad)
    event(p2, "EMA", baghdad_time(D1, 23, 50), baghdad)
    event(p2, "EMA", baghdad_time(D1, 23, 55), baghdad, out_of_sequence=True)  # not counted
    event(p3, "EMA", baghdad_time(D2, 8), basra)
    event(p1, "EMI", baghdad_time(D2, 15), basra)
    event(p1, "EMI", baghdad_time(D2, 16), basra, after_final=True)  # not counted
    event(p4, "EMA", baghdad_time(D2, 0, 10), baghdad)
    event(p3, "EDX", baghdad_time(D3, 10), None)
    event(p2, "EMI", baghdad_time(D3, 11), baghdad)
    db.commit()
    monkeypatch.undo()
    return baghdad, basra, clerk


def figures(run: ReportRun) -> list[dict[str, int]]:
    return [{f[0]: f[3] for f in p["figures"]} for p in run.rows["periods"]]


def make(kind, office, first, last, user, fmt="csv", language="en"):
    with unit_of_work():
        run = request_report(kind=kind, office_id=office.id if office else None, first=first,
                             last=last, fmt=fmt, language=language, requested_by=user.id,
                             today=date(2026, 12, 1))
    run_jobs()
    db.expire_all()
    return db.get(ReportRun, run.id)


def independent(office_id, first: date, last: date) -> dict[str, int]:
    """The same figures straight from the tables, in SQL written apart from the code."""
    start = datetime.combine(first, time(), BAGHDAD)
    end = datetime.combine(last + timedelta(days=1), time(), BAGHDAD)
    where = "" if office_id is None else " AND e.office_id = :office"
    args = {"s": start, "e": end, "office": office_id}
    out = {}
    for key, code in (("revenue.postage.IQD", "revenue:postage:IQD"),
                      ("revenue.shop_order.IQD", "revenue:shop_order:IQD"),
                      ("customs.IQD", "duty:IQD")):
        out[key] = -int(db.execute(text(
            "SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p JOIN ledger_entries e "
            "ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE a.code = :code AND e.created_at >= :s AND e.created_at < :e" + where),
            {**args, "code": code}).scalar())
    card_where = "" if office_id is None else (
        " AND a.id IN (SELECT account_id FROM post_cards WHERE issued_at_office_id = :office "
        "UNION SELECT hold_account_id FROM post_cards WHERE issued_at_office_id = :office)")
    out["card_float.IQD"] = -int(db.execute(text(
        "SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p JOIN ledger_entries e "
        "ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id "
        "WHERE a.kind IN ('post_card', 'card_hold') AND e.created_at < :e" + card_where),
        args).scalar())
    if office_id is None:
        out["merchant_payables.IQD"] = -int(db.execute(text(
            "SELECT coalesce(sum(p.amount), 0) FROM ledger_postings p JOIN ledger_entries e "
            "ON e.id = p.entry_id JOIN ledger_accounts a ON a.id = p.account_id "
            "WHERE a.kind = 'merchant_payable' AND e.created_at < :e"), args).scalar())
    ev_where = "" if office_id is None else " AND office_id = :office"
    for key, code in (("parcels.accepted", "EMA"), ("parcels.delivered", "EMI"),
                      ("parcels.returned", "EDX")):
        out[key] = int(db.execute(text(
            "SELECT count(DISTINCT parcel_id) FROM parcel_events WHERE code = :code AND "
            "NOT after_final AND NOT out_of_sequence AND occurred_at >= :s AND "
            "occurred_at < :e" + ev_where), {**args, "code": code}).scalar())
    return out


def test_daily_figures_per_office_and_whole_post_match_the_tables(seeded):
    baghdad, basra, _clerk = seeded
    admin = person("Huda Admin", "admin", office=baghdad)
    for office in (baghdad, basra, None):
        run = make("daily", office, D1, D3, admin)
        assert run.state == RunState.DONE and run.progress == 100
        days = [p.first for p in periods("daily", D1, D3)]
        assert len(run.rows["periods"]) == len(days) == 4
        for day, got in zip(days, figures(run), strict=True):
            want = independent(office.id if office else None, day, day)
            assert {k: got.get(k, 0) for k in want} == want, (office, day)

    # Hand-counted, so the SQL above is checked too.
    b = figures(make("daily", baghdad, D1, D3, admin))
    assert b[0]["revenue.postage.IQD"] == 7_000 and b[0]["parcels.accepted"] == 2
    assert b[1]["revenue.postage.IQD"] == 0 and b[1]["parcels.accepted"] == 1
    assert b[1]["card_float.IQD"] == 50_000  # the held 8,000 is still the holder's
    assert b[3]["revenue.postage.IQD"] == -1_000 and b[3]["parcels.delivered"] == 1
    assert "merchant_payables.IQD" not in b[0]
    whole = figures(make("daily", None, D1, D3, admin))
    assert whole[1]["customs.IQD"] == 7_000 and whole[1]["parcels.delivered"] == 1
    assert whole[3]["revenue.shop_order.IQD"] == 2_000
    assert whole[3]["merchant_payables.IQD"] == 18_000 and whole[3]["parcels.returned"] == 1
    assert whole[3]["card_float.IQD"] == 80_000


def test_monthly_totals_match_and_add_up(seeded):
    baghdad, basra, _clerk = seeded
    admin = person("Huda Admin", "admin", office=baghdad)
    for office in (baghdad, basra, None):
        run = make("monthly", office, D1, D3, admin)
        months = periods("monthly", D1, D3)
        assert [(p.first, p.last) for p in months] == [(D1, date(2026, 10, 31)),
                                                       (date(2026, 11, 1), D3)]
        for p, got in zip(months, figures(run), strict=True):
            want = independent(office.id if office else None, p.first, p.last)
            assert {k: got.get(k, 0) for k in want} == want
        # The range's totals: flows added, balances as of the end.
        whole = independent(office.id if office else None, D1, D3)
        got = {f.key: f.value for f in totals(run)}
        assert {k: got.get(k, 0) for k in whole} == whole


def test_ten_years_are_refused_with_a_clear_error(client, seeded):
    baghdad, _basra, _clerk = seeded
    admin = person("Huda Admin", "admin", office=baghdad)
    with pytest.raises(ValidationFailed, match="366.*3653"):
        request_report(kind="daily", office_id=None, first=date(2016, 1, 1),
                       last=date(2025, 12, 31), fmt="csv", language="en",
                       requested_by=admin.id, today=date(2026, 12, 1))
    login(client, admin)
    res = client.post("/backoffice/reports/", data={
        "kind": "monthly", "scope": "", "first": "2016-01-01", "last": "2025-12-31",
        "format": "pdf", "language": "ar"})
    assert res.status_code == 422
    page = res.get_data(as_text=True)
    assert "366" in page and "3653" in page and 'role="alert"' in page
    for bad in ({"first": "2026-11-05", "last": "2026-11-01"}, {"first": "", "last": ""},
                {"first": "2026-13-01", "last": "2026-11-01"}, {"kind": "yearly"},
                {"format": "xlsx"}, {"scope": "abc"}, {"scope": "999999"},
                {"last": "2999-01-01"}):
        data = {"kind": "daily", "scope": "", "first": "2026-11-01", "last": "2026-11-02",
                "format": "csv", "language": "en", **bad}
        assert client.post("/backoffice/reports/", data=data).status_code == 422, bad
    assert db.scalar(select(ReportRun)) is None


def test_run_shows_progress_and_offers_the_file(app, client, seeded):
    baghdad, basra, clerk = seeded
    supervisor = person("Omar Supervisor", "supervisor", office=baghdad)
    app.config["REPORTS_PERIODS_PER_STEP"] = 1
    try:
        login(client, supervisor)
        res = client.post("/backoffice/reports/", data={
            "kind": "daily", "scope": str(baghdad.id), "first": D1.isoformat(),
            "last": D3.isoformat(), "format": "csv", "language": "ar"})
        assert res.status_code == 302
        run_id = int(res.headers["Location"].rstrip("/").split("/")[-1])
        page = client.get(f"/backoffice/reports/runs/{run_id}").get_data(as_text=True)
        assert 'http-equiv="refresh"' in page
        assert client.get(f"/backoffice/reports/runs/{run_id}/status").json["progress"] == 0
        assert client.get(f"/backoffice/reports/runs/{run_id}/download").status_code == 404

        from app.events import OutboxJob
        from app.jobs import run_outbox_job

        db.commit()
        seen = []
        while True:
            job = db.scalar(select(OutboxJob).where(OutboxJob.state == "pending")
                            .order_by(OutboxJob.id))
            if job is None:
                break
            run_outbox_job(job.id)
            # Running the same delivery again does nothing.
            assert run_outbox_job(job.id) is False
            seen.append(client.get(f"/backoffice/reports/runs/{run_id}/status").json)
        assert [s["progress"] for s in seen] == [25, 50, 75, 100]
        assert seen[-1]["state"] == "done" and seen[-1]["download"]
        page = client.get(f"/backoffice/reports/runs/{run_id}").get_data(as_text=True)
        assert 'http-equiv="refresh"' not in page and 'id="report-download"' in page
        got = client.get(seen[-1]["download"])
        assert got.status_code == 200 and got.mimetype == "text/csv"
        assert "attachment" in got.headers["Content-Disposition"]
        rows = list(csv.reader(io.StringIO(got.data.decode("utf-8-sig"))))
        assert rows[0][0] == "period_first" and "الطرود المقبولة" in {r[4] for r in rows}
    finally:
        app.config["REPORTS_PERIODS_PER_STEP"] = 31

    # A step delivered again after the run finished changes nothing.
    from app.reports import run_report_step

    with unit_of_work():
        run_report_step(run_id, 0)
    assert db.get(ReportRun, run_id).state == RunState.DONE

    # Only the requester, that office's supervisors and admins may see or download it.
    other_sup = person("Sara Supervisor", "supervisor", office=basra)
    same_office_sup = person("Ali Supervisor", "supervisor", office=baghdad)
    admin = person("Huda Admin", "admin")
    for user, code in ((clerk, 403), (other_sup, 403), (same_office_sup, 200), (admin, 200)):
        login(client, user)
        assert client.get(f"/backoffice/reports/runs/{run_id}/download").status_code == code
        assert client.get(f"/backoffice/reports/runs/{run_id}/status").status_code == code
    refused = db.scalars(select(AuditRecord).where(AuditRecord.action.in_(
        ("report.forbidden", "auth.forbidden")))).all()
    assert len(refused) >= 3
    # Guessed ids.
    assert client.get("/backoffice/reports/runs/999999/download").status_code == 404


def test_supervisor_reports_on_own_office_only(client, seeded):
    baghdad, basra, _clerk = seeded
    supervisor = person("Omar Supervisor", "supervisor", office=baghdad)
    login(client, supervisor)
    for scope in (str(basra.id), ""):
        res = client.post("/backoffice/reports/", data={
            "kind": "daily", "scope": scope, "first": D1.isoformat(), "last": D3.isoformat(),
            "format": "csv", "language": "en"})
        assert res.status_code == 403
    assert db.scalar(select(ReportRun)) is None
    assert len(db.scalars(select(AuditRecord).where(
        AuditRecord.action == "report.forbidden_scope")).all()) == 2


def test_csv_cells_cannot_start_a_formula(seeded):
    baghdad, basra, _clerk = seeded
    admin = person("Huda Admin", "admin", office=baghdad)
    run = make("daily", basra, D1, D1, admin, language="en")
    rows = list(csv.reader(io.StringIO(run.file.decode("utf-8-sig"))))
    scopes = {r[2] for r in rows[1:]}
    assert scopes == {"'=HYPERLINK(\"http://evil\") - BSR01"}
    for value in ("=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1"):
        assert safe_cell(value).startswith("'")
    assert safe_cell(-500) == -500 and safe_cell("فرق") == "فرق"
    for row in rows:
        assert not any(cell.startswith(("=", "+", "@")) for cell in row if cell)
        assert not any(cell.startswith("-") and not cell.lstrip("-").isdigit()
                       for cell in row if cell)


def test_pdf_in_arabic_and_english(seeded, tmp_path):
    baghdad, _basra, _clerk = seeded
    admin = person("Huda Admin", "admin", office=baghdad)
    for language in ("ar", "en"):
        run = make("monthly", baghdad, D1, D3, admin, fmt="pdf", language=language)
        assert run.state == RunState.DONE and run.file.startswith(b"%PDF")
        (tmp_path / f"report-{language}.pdf").write_bytes(run.file)
        import os
        if os.environ.get("BARID_KEEP_PDF"):
            (Path(os.environ["BARID_KEEP_PDF"]) / f"report-{language}.pdf").write_bytes(run.file)


def test_a_report_runs_through_rq_as_in_production(app, redis_url, monkeypatch):
    """The rq executor (`barid worker`): each step is an rq job handed over after the
    previous step commits; the run ends done with its file."""
    import redis
    from rq import Queue, SimpleWorker

    from app.redisconn import get_redis

    redis.Redis.from_url(redis_url).flushdb()
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    monkeypatch.setitem(app.config, "REPORTS_PERIODS_PER_STEP", 2)
    with app.app_context():
        admin = person("Huda Admin", "admin")
        db.commit()
        with unit_of_work():
            run = request_report(kind="daily", office_id=None, first=date(2026, 11, 1),
                                 last=date(2026, 11, 7), fmt="pdf", language="ar",
                                 requested_by=admin.id, today=date(2026, 12, 1))
        conn = get_redis()
        queues = [Queue(name, connection=conn) for name in ("default", "webhooks", "low")]
        assert Queue("low", connection=conn).count == 1
        SimpleWorker(queues, connection=conn).work(burst=True)
        db.expire_all()
        done = db.get(ReportRun, run.id)
        assert (done.state, done.progress, done.step) == (RunState.DONE, 100, 4)
        assert len(done.rows["periods"]) == 7 and done.file.startswith(b"%PDF")
        db.remove()
