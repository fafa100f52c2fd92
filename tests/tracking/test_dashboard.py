"""The supervisor's dashboard against known rows: every figure counts what was put in,
a supervisor sees their own office and never another's, an admin sees the whole post,
and each figure's link opens a list that shows the same rows.

Rows are inserted directly (parcels, events, customs cases, payments, drawer accounts)
with chosen times and offices, so each expected number is written out here.
"""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import select

from app.auth.models import PostOffice
from app.dashboard import Scope, figures
from app.database import db
from app.i18n import BAGHDAD
from payments.models import Account, Payment, PostCard
from tests.tracking.helpers import login, make_user
from tracking.models import CustomsCase, Parcel, ParcelEvent
from tracking.services import figures as parcel_figures

_serial = itertools.count(1)
NOW = datetime.now(UTC).replace(microsecond=0)
TODAY = NOW.astimezone(BAGHDAD).date()
TODAY_START = datetime.combine(TODAY, time(), BAGHDAD)
# Safely inside today and yesterday in Baghdad, whatever the hour the suite runs.
EARLY_TODAY = TODAY_START + (NOW - TODAY_START) / 2
YESTERDAY = TODAY_START - timedelta(hours=5)


def parcel(office: PostOffice, *events: tuple[str, datetime], status: str = "in_transit",
           closed: bool = False, delayed: bool = False, flagged: int | None = None) -> Parcel:
    """A parcel whose events all happened at `office`; `flagged`: the position of an
    event recorded out of sequence (it does not count)."""
    n = next(_serial)
    last = max((t for _c, t in events), default=NOW)
    p = Parcel(tracking_number=f"CP{n:09d}IQ", service="parcel", status=status,
               closed=closed, sender_name="أحمد", recipient_name="فاطمة", weight_grams=500,
               origin_office_id=office.id, last_event_at=last, last_activity_at=last,
               delayed_at=NOW if delayed else None)
    db.add(p)
    db.flush()
    for i, (code, when) in enumerate(events):
        db.add(ParcelEvent(uid=f"dash-{n}-{i}", parcel_id=p.id, code=code, status=status,
                           occurred_at=when, office_id=office.id,
                           out_of_sequence=(i == flagged)))
    db.flush()
    return p


def held(office: PostOffice, since: datetime) -> CustomsCase:
    p = parcel(office, ("EMD", since), status="on_hold")
    c = CustomsCase(parcel_id=p.id, state="held", created_at=since)
    db.add(c)
    db.flush()
    return c


def a_card() -> PostCard:
    card = db.scalar(select(PostCard).limit(1))
    if card is None:
        card = PostCard(holder_name="زينب علي", national_id="199012345678",
                        mobile="+9647701234567", expires_on=TODAY + timedelta(days=900))
        db.add(card)
        db.flush()
    return card


def payment(office: PostOffice | None, method: str, amount: int, *, purpose: str = "postage",
            when: datetime = EARLY_TODAY, status: str = "succeeded") -> Payment:
    """A payment as payments records one: a top-up names the card it fills, a post-card
    payment the card it is paid from."""
    n = next(_serial)
    card = a_card() if purpose == "card_topup" or method == "post_card" else None
    p = Payment(idempotency_key=f"dash-pay-{n}", method=method, status=status, amount=amount,
                currency="IQD", purpose=purpose, reference_kind="test", reference_id=str(n),
                office_id=office.id if office else None, created_at=when,
                card_id=card.id if card else None)
    db.add(p)
    db.flush()
    return p


@pytest.fixture()
def seeded(offices):
    """Office A (Baghdad) and office B (Basra), each with known traffic."""
    a, b = offices
    seed(a, b)
    return a, b


def seed(a: PostOffice, b: PostOffice) -> None:
    """The known traffic of office A and office B (committed)."""
    # Office A: 3 accepted today (one of them also delivered today), 2 yesterday, one
    # re-posting flagged out of sequence (not counted), one accepted 40 days ago (too old).
    parcel(a, ("EMA", EARLY_TODAY))
    parcel(a, ("EMA", EARLY_TODAY))
    parcel(a, ("EMA", YESTERDAY - timedelta(hours=1)), ("EMI", EARLY_TODAY),
           status="delivered", closed=True)
    parcel(a, ("EMA", YESTERDAY), ("EMA", EARLY_TODAY), flagged=1)
    parcel(a, ("EMA", YESTERDAY))
    parcel(a, ("EMA", NOW - timedelta(days=40)), status="delivered", closed=True)
    parcel(a, ("EMA", NOW - timedelta(days=2)), status="in_transit", delayed=True)
    # Customs at A: held 2 hours, 2 days and 10 days.
    held(a, NOW - timedelta(hours=2))
    held(a, NOW - timedelta(days=2))
    held(a, NOW - timedelta(days=10))
    # Office B: 4 accepted today, 2 delayed, 1 held 5 days.
    for _ in range(4):
        parcel(b, ("EMA", EARLY_TODAY))
    parcel(b, ("EMA", NOW - timedelta(days=3)), delayed=True)
    parcel(b, ("EMA", NOW - timedelta(days=3)), delayed=True)
    held(b, NOW - timedelta(days=5))
    # Payments: A took cash 10,000 + 5,000, a card top-up in cash 20,000 and a post-card
    # payment 7,000 today; a failed card payment (not counted). B took cash 1,000,000.
    # One online bank-card payment belongs to no office (the admin's figures only).
    payment(a, "cash", 10_000)
    payment(a, "cash", 5_000, when=YESTERDAY)
    payment(a, "cash", 20_000, purpose="card_topup")
    payment(a, "post_card", 7_000)
    payment(a, "post_card", 9_000, status="failed")
    payment(b, "cash", 1_000_000)
    payment(None, "stripe", 30_000)
    db.add_all([Account(code=f"drawer:{a.id}:IQD", kind="cash_drawer", currency="IQD",
                        balance=35_000),
                Account(code=f"drawer:{b.id}:IQD", kind="cash_drawer", currency="IQD",
                        balance=1_000_000)])
    db.commit()


def _scope(office: PostOffice | None) -> Scope:
    return Scope(None if office is None else frozenset({office.id}), TODAY, NOW)


def _figures(app, office):
    """The figures as an English-speaking supervisor (office) or admin (None) gets them."""
    from flask import session

    with app.test_request_context("/backoffice/"):
        session["lang"] = "en"
        return {f.key: f for f in figures(_scope(office))}


def _series(fig, n):
    return dict(zip(fig.days, fig.series[n].values, strict=True))


def test_parcels_accepted_and_delivered_per_day(app, seeded):
    a, b = seeded
    mine = _figures(app, a)["parcel-flow"]
    accepted, delivered = _series(mine, 0), _series(mine, 1)
    yesterday = TODAY - timedelta(days=1)
    assert (accepted[TODAY], accepted[yesterday], delivered[TODAY]) == (2, 3, 1)
    assert sum(accepted.values()) == 6  # the 40-day-old and the flagged one are not counted
    assert len(mine.days) == 30 and mine.days[-1] == TODAY
    whole = _figures(app, None)["parcel-flow"]
    assert _series(whole, 0)[TODAY] == 6
    assert dict(mine.headline)["Accepted today"] == "2"


def test_parcels_by_status_and_stale_by_office(app, seeded):
    a, b = seeded
    figs = _figures(app, a)
    statuses = {bar.label: bar.value for bar in figs["parcel-status"].bars}
    # Open parcels at A (in transit: 4 + 1 delayed), and the one delivered today; the one
    # delivered 40 days ago is left out. B's and the customs parcels' are not A's... the
    # held parcels are at A too.
    assert statuses == {"On its way": 5, "Held": 3, "Delivered": 1}
    assert [(bar.value, "BGD01" in bar.label) for bar in figs["stale-parcels"].bars] == [
        (1, True)]
    whole = _figures(app, None)["stale-parcels"]
    assert [(bar.value, bar.label.endswith("(BSR01)")) for bar in whole.bars] == [
        (2, True), (1, False)]


def test_customs_backlog_and_average_time_held(app, seeded):
    a, b = seeded
    fig = _figures(app, a)["customs-backlog"]
    assert [bar.value for bar in fig.bars] == [1, 1, 0, 1]
    # (2 h + 48 h + 240 h) / 3 = 96.67 h = 4.0 days.
    assert dict(fig.headline) == {"Held by customs": "3", "Average time held": "4.0 days"}
    whole = _figures(app, None)["customs-backlog"]
    assert [bar.value for bar in whole.bars] == [1, 1, 1, 1]
    backlog = parcel_figures.customs_backlog(_scope(None))
    assert backlog.total == 4
    assert backlog.average_hours == pytest.approx((2 + 48 + 240 + 120) / 4, abs=0.01)


def test_payments_by_method_card_money_and_drawers(app, seeded):
    a, b = seeded
    figs = _figures(app, a)
    methods = {bar.label.split(" · ")[0]: (bar.value, bar.label.split(" · ")[1])
               for bar in figs["payments-method"].bars}
    assert methods == {"Cash": (35_000, "3 payments"), "Post card": (7_000, "1 payments")}
    topups, spending = _series(figs["card-money"], 0), _series(figs["card-money"], 1)
    assert (topups[TODAY], spending[TODAY]) == (20_000, 7_000)
    assert sum(topups.values()) == 20_000 and sum(spending.values()) == 7_000
    assert [(bar.value, bar.shown) for bar in figs["drawers"].bars] == [(35_000, "35,000 IQD")]

    whole = _figures(app, None)
    methods = {bar.label.split(" · ")[0]: bar.value for bar in whole["payments-method"].bars}
    assert methods == {"Cash": 1_035_000, "Bank card": 30_000, "Post card": 7_000}
    assert [bar.value for bar in whole["drawers"].bars] == [1_000_000, 35_000]


def test_an_office_that_is_nobodys_sees_nothing(app, seeded):
    with app.test_request_context("/backoffice/"):
        figs = {f.key: f for f in figures(Scope(frozenset(), TODAY, NOW))}
    assert sum(sum(s.values) for s in figs["parcel-flow"].series) == 0
    assert figs["parcel-status"].bars == [] and figs["drawers"].bars == []


# -- the page -------------------------------------------------------------------------------


def _numbers_of(html: str, key: str) -> str:
    start = html.index(f'id="fig-{key}"')
    return html[start:html.index("</figure>", start)]


def test_supervisor_sees_their_office_admin_the_post_clerk_only_links(app, client, seeded):
    a, b = seeded
    boss = make_user("Huda Supervisor", "supervisor", office=a)
    admin = make_user("Sami Admin", "admin", office=b)
    clerk = make_user("Zaid Clerk", "clerk", office=a)
    db.commit()

    login(client, boss)
    page = client.get("/backoffice/", headers={"Accept-Language": "en"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for key in ("parcel-flow", "parcel-status", "customs-backlog", "stale-parcels",
                "payments-method", "card-money", "drawers"):
        assert f'id="fig-{key}"' in html
    assert html.count('role="img"') == 7 and "<script" not in _numbers_of(html, "drawers")
    drawers = _numbers_of(html, "drawers")
    assert "35,000 IQD" in drawers and "1,000,000" not in drawers
    assert "BSR01" not in html.split('<div class="bo-dashboard">')[0]
    # Each figure links to its list, narrowed to the supervisor's office.
    assert f"/backoffice/parcels/?accepted={TODAY.isoformat()}&amp;office={a.id}" in html
    assert f"/backoffice/payments/drawer?office={a.id}" in html
    client.post("/logout")

    login(client, admin)
    html = client.get("/backoffice/").get_data(as_text=True)
    assert "1,000,000 IQD" in _numbers_of(html, "drawers")
    assert f"/backoffice/payments/drawer?office={b.id}" in html
    client.post("/logout")

    login(client, clerk)
    html = client.get("/backoffice/").get_data(as_text=True)
    assert 'class="dash"' not in html and 'role="img"' not in html


def test_the_lists_behind_the_figures_show_the_same_rows(app, client, seeded):
    a, b = seeded
    boss = make_user("Huda Supervisor", "supervisor", office=a)
    admin = make_user("Sami Admin", "admin", office=b)
    db.commit()
    login(client, boss)

    def numbers(url):
        res = client.get(url)
        assert res.status_code == 200, (url, res.status_code)
        return set(re.findall(r"CP\d{9}IQ", res.get_data(as_text=True)))

    today = TODAY.isoformat()
    assert len(numbers(f"/backoffice/parcels/?accepted={today}")) == 2
    assert len(numbers(f"/backoffice/parcels/?delivered={today}&office={a.id}")) == 1
    assert len(numbers("/backoffice/parcels/?status=on_hold")) == 3
    assert len(numbers(f"/backoffice/parcels/delayed?office={a.id}")) == 1
    assert len(numbers(f"/backoffice/customs/?office={a.id}")) == 3
    res = client.get(f"/backoffice/payments/payments?method=cash&office={a.id}")
    assert res.get_data(as_text=True).count("/backoffice/payments/payments/") == 3
    res = client.get(f"/backoffice/payments/payments?purpose=card_topup&date={today}")
    assert res.get_data(as_text=True).count("/backoffice/payments/payments/") == 1
    # Another office's lists are refused to a supervisor, by number, not quietly widened.
    for url in (f"/backoffice/parcels/?office={b.id}", f"/backoffice/parcels/delayed?office={b.id}",
                f"/backoffice/customs/?office={b.id}",
                f"/backoffice/payments/payments?office={b.id}",
                f"/backoffice/payments/drawer?office={b.id}"):
        assert client.get(url).status_code == 403, url
    # Bad filters say so.
    assert client.get("/backoffice/parcels/?accepted=yesterday").status_code == 422
    assert client.get("/backoffice/parcels/?office=1%20OR%201=1").status_code == 422
    assert client.get("/backoffice/payments/payments?date=2026-13-01").status_code == 422
    # Arabic-Indic digits in a date are read as digits.
    arabic = today.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
    assert len(numbers(f"/backoffice/parcels/?accepted={arabic}")) == 2
    client.post("/logout")

    login(client, admin)
    assert len(numbers(f"/backoffice/parcels/?accepted={today}")) == 6
    assert len(numbers(f"/backoffice/parcels/delayed?office={b.id}")) == 2
    res = client.get(f"/backoffice/payments/drawer?office={a.id}")
    assert res.status_code == 200 and "BGD01" in res.get_data(as_text=True)


def test_the_page_in_arabic_has_the_figures_titles_translated(app, client, seeded):
    a, _b = seeded
    boss = make_user("Huda Supervisor", "supervisor", office=a)
    db.commit()
    login(client, boss)
    html = client.get("/backoffice/", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    dash = html[html.index('<section class="dash"'):html.index('<div class="bo-dashboard">')]
    text = re.sub(r"<[^>]+>", " ", dash)
    # No English words in the figures of the Arabic page (IQD and office codes aside).
    english = {w for w in re.findall(r"[A-Za-z]{2,}", text)} - {"IQD", "BGD"}
    assert not english, english
    assert 'direction="rtl"' in dash


def test_a_stored_time_reads_as_its_baghdad_day_on_sqlite_too():
    """baghdad_day and epoch_seconds compile for SQLite as for PostgreSQL."""
    from sqlalchemy import Column, DateTime, MetaData, Table, create_engine, insert

    from app.dashboard import baghdad_day, epoch_seconds

    engine = create_engine("sqlite://")
    meta = MetaData()
    t = Table("t", meta, Column("at", DateTime))
    meta.create_all(engine)
    with engine.begin() as conn:
        # 22:30 UTC is 01:30 the next day in Baghdad.
        conn.execute(insert(t).values(at=datetime(2026, 3, 4, 22, 30)))
        day, seconds = conn.execute(select(baghdad_day(t.c.at), epoch_seconds(t.c.at))).one()
    assert day == "2026-03-05"
    assert seconds == datetime(2026, 3, 4, 22, 30, tzinfo=UTC).timestamp()


SQLITE_PROBE = """
import json
from flask import session
from app import create_app
from app.auth.models import PostOffice
from app.dashboard import Scope, figures
from app.database import Base, db, get_engine
from app.models_registry import load_all
from tests.tracking import test_dashboard as t

app = create_app({"DATABASE_URL": "sqlite:///%s", "TESTING": True})
load_all()
Base.metadata.create_all(get_engine())
with app.app_context():
    a = PostOffice(code="BGD01", name_ar="بغداد", name_en="Baghdad", governorate="IQ-BG")
    b = PostOffice(code="BSR01", name_ar="البصرة", name_en="Basra", governorate="IQ-BA")
    db.add_all([a, b])
    db.flush()
    t.seed(a, b)
    out = {}
    for name, office in (("a", a), ("all", None)):
        with app.test_request_context("/backoffice/"):
            session["lang"] = "en"
            figs = {f.key: f for f in figures(t._scope(office))}
            out[name] = {
                "flow": [[sum(s.values), s.values[-1]] for s in figs["parcel-flow"].series],
                "status": {b.label: b.value for b in figs["parcel-status"].bars},
                "backlog": [b.value for b in figs["customs-backlog"].bars],
                "held": dict(figs["customs-backlog"].headline),
                "stale": [b.value for b in figs["stale-parcels"].bars],
                "methods": sorted(b.value for b in figs["payments-method"].bars),
                "card": [sum(s.values) for s in figs["card-money"].series],
                "drawers": [b.value for b in figs["drawers"].bars],
            }
print(json.dumps(out))
"""


def test_the_same_figures_on_the_embedded_sqlite_database(tmp_path):
    """The embedded default (SQLite) counts the same rows the same way (a process of its
    own: a second create_app here would replace the suite's database engine)."""
    import json
    import os
    import subprocess
    import sys

    from app.config import ROOT

    env = {k: v for k, v in os.environ.items() if not k.startswith("BARID")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-c", SQLITE_PROBE % (tmp_path / "b.sqlite3")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    a, whole = out["a"], out["all"]
    assert a["flow"] == [[6, 2], [1, 1]] and whole["flow"][0] == [12, 6]
    assert a["status"] == {"On its way": 5, "Held": 3, "Delivered": 1}
    assert a["backlog"] == [1, 1, 0, 1] and whole["backlog"] == [1, 1, 1, 1]
    assert a["held"] == {"Held by customs": "3", "Average time held": "4.0 days"}
    assert a["stale"] == [1] and whole["stale"] == [2, 1]
    assert a["methods"] == [7_000, 35_000] and whole["methods"] == [7_000, 30_000, 1_035_000]
    assert a["card"] == [20_000, 7_000]
    assert a["drawers"] == [35_000] and whole["drawers"] == [1_000_000, 35_000]


def test_the_page_asks_the_database_the_same_few_questions_however_busy_the_post(
        app, client, seeded):
    """Figures are aggregated in SQL: more parcels and payments, the same statements."""
    from sqlalchemy import event

    from app.database import get_engine

    a, b = seeded
    admin = make_user("Sami Admin", "admin", office=b)
    db.commit()
    login(client, admin)
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)

    def statements() -> int:
        seen.clear()
        event.listen(get_engine(), "before_cursor_execute", count)
        try:
            assert client.get("/backoffice/").status_code == 200
        finally:
            event.remove(get_engine(), "before_cursor_execute", count)
        return len(seen)

    quiet = statements()
    for n in range(40):
        parcel(a if n % 2 else b, ("EMA", EARLY_TODAY), delayed=n % 3 == 0)
        held(b, NOW - timedelta(hours=n + 1))
        payment(a, "cash", 1_000 + n)
    db.commit()
    assert statements() == quiet
    assert quiet <= 20, quiet
