"""The post card's PIN lock, attacked the way a thief would: a burst of guesses at once,
guesses whose payment is rolled back, and probing which cards exist. Five wrong PINs are
the most ever checked per card, the count survives every rollback (PostgreSQL and the
embedded SQLite), and a stranger gets one answer whatever was wrong."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading

import pytest
import requests
from sqlalchemy import select

from app.audit import AuditRecord
from app.auth.models import User
from app.config import ROOT
from app.database import db, unit_of_work, utcnow
from payments import cards, payables, services
from payments.errors import CardBusy, CardLocked, CardRefused, WrongPin
from payments.models import Payment, PostCard
from tests.payments.helpers import CARD_PIN, balance

PASSWORD = "correct horse battery"
FEE = "pin_test_fee"
# The stranger's one answer, in either language of the site.
REFUSED = {"The card number or PIN is not right, or the card cannot pay. "
           "Check them, or ask at a post office.",
           "رقم البطاقة أو الرمز السري غير صحيح، أو لا يمكن الدفع بهذه البطاقة. "
           "تأكد منهما، أو راجع مكتب البريد."}


def _person(name: str, *roles: str) -> User:
    from app.auth.services import create_user

    with unit_of_work():  # create_user flushes only
        user = create_user(name, email=f"{name.split()[0].lower()}@example.iq",
                           password=PASSWORD, roles=roles or ("shopper",))
    return db.get(User, user.id)


@pytest.fixture()
def fee(app_ctx):
    """A reference anyone may pay on /payments/pay-for (2,500 IQD)."""
    payables.register_payable(FEE, lambda ref, user: payables.Payable(
        2500, "IQD", "postage", f"Fee {ref}"))
    return f"/payments/pay-for/{FEE}/F1"


@pytest.fixture()
def counted_checks(monkeypatch):
    """Every PIN hash check, counted; each one is slowed down so the attempts of a burst
    are all in flight together."""
    calls: list[str] = []
    lock = threading.Lock()
    real = cards._pin_matches

    def counting(card, pin):
        with lock:
            calls.append(pin)
        threading.Event().wait(0.2)
        return real(card, pin)

    monkeypatch.setattr(cards, "_pin_matches", counting)
    return calls


def _attempts(card_id: int) -> tuple[int, bool]:
    db.remove()
    card = db.get(PostCard, card_id)
    return card.failed_pin_attempts, card.locked_at is not None


def _pay(card, pin, key, actor_id=None):
    return services.pay_with_post_card(
        card_number=card.number, pin=pin, amount=1000, currency="IQD", reference_kind="parcel",
        reference_id="RR000000080IQ", purpose="postage", idempotency_key=key,
        actor_id=actor_id, at_counter=actor_id is not None)  # a clerk here, or a stranger


# --- a burst over HTTP ------------------------------------------------------------------


@pytest.mark.commits  # a live server, other threads and their own connections
def test_twenty_wrong_pins_at_once_check_at_most_five_and_lock_the_card(
        app, serve, fee, make_card, counted_checks, monkeypatch):
    # The card's own lock is under test: the throttle across cards (which would stop
    # this client after a few tries, see test_one_time_code) is lifted.
    monkeypatch.setitem(app.config, "CARD_TRIES_PER_CLIENT", 0)
    monkeypatch.setitem(app.config, "CARD_TRIES_PER_ACCOUNT", 0)
    card = make_card(balance=10_000, pin="2468")
    card_id, number = card.id, card.number
    thief = _person("Thief Person")
    base = serve(app)
    web = requests.Session()
    assert web.post(f"{base}/login", data={"identifier": thief.email, "password": PASSWORD,
                                           "csrf_token": _csrf(web, f"{base}/login")},
                    allow_redirects=False).status_code in (302, 303)
    web.get(f"{base}/lang/en", timeout=30)
    token = _csrf(web, base + fee)
    start = threading.Barrier(20)
    answers: list[tuple[int, str]] = []

    def guess(pin: str) -> None:
        start.wait()
        res = web.post(base + fee, data={"method": "post_card", "card_number": number,
                                         "pin": pin, "key": f"k{pin}", "csrf_token": token},
                       headers={"Accept-Language": "en"}, timeout=60)
        answers.append((res.status_code, _flash(res.text)))

    threads = [threading.Thread(target=guess, args=(f"{1000 + i}",)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)

    assert len(answers) == 20
    assert len(counted_checks) <= 5, counted_checks
    assert _attempts(card_id) == (5, True)
    # Every guess got the stranger's one answer: no count, no "locked" (in English here).
    assert len(set(answers)) == 1 and answers[0][0] == 200 and answers[0][1] in REFUSED
    # The right PIN, now, is refused without being checked, and nothing was paid.
    right = web.post(base + fee, data={"method": "post_card", "card_number": number,
                                       "pin": "2468", "key": "right", "csrf_token": token},
                     headers={"Accept-Language": "en"}, timeout=60)
    assert (right.status_code, _flash(right.text)) == answers[0]
    assert len(counted_checks) <= 5
    assert balance(db.get(PostCard, card_id)) == 10_000
    assert db.scalar(select(Payment).where(Payment.reference_kind == FEE)) is None
    failed = db.scalars(select(AuditRecord.details).where(
        AuditRecord.action == "post_card.pin_failed")).all()
    assert len(failed) == len(counted_checks) == 5
    assert [d["locked"] for d in failed].count(True) == 1


def _csrf(web: requests.Session, url: str) -> str:
    page = web.get(url, timeout=30).text
    return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)


def _flash(html: str) -> str:
    found = re.findall(r'class="flash flash-error"[^>]*>([^<]*)<', html)
    return found[0].strip() if found else ""


# --- the count is kept, whatever the caller does ----------------------------------------


def test_a_locked_card_is_refused_without_checking_the_pin(make_card, clerk, counted_checks):
    card = make_card(balance=10_000)
    card.locked_at = utcnow()
    db.commit()
    with pytest.raises(CardLocked):
        _pay(card, CARD_PIN, "locked", actor_id=clerk.id)
    assert counted_checks == []


def test_a_right_pin_gives_the_attempts_back(make_card, clerk):
    card = make_card(balance=10_000)
    with pytest.raises(WrongPin) as exc:
        _pay(card, "9999", "w1", actor_id=clerk.id)
    assert exc.value.attempts_left == 4
    assert _pay(card, CARD_PIN, "ok", actor_id=clerk.id).status == "succeeded"
    db.flush()
    db.refresh(card)
    assert card.failed_pin_attempts == 0 and card.locked_at is None


def test_five_attempts_in_flight_make_the_next_wait_then_give_up(app, make_card, clerk):
    card = make_card(balance=10_000)
    card.failed_pin_attempts = cards.MAX_PIN_ATTEMPTS  # five being checked, none decided
    db.commit()
    old = app.config["PIN_WAIT_SECONDS"]
    app.config["PIN_WAIT_SECONDS"] = 0
    try:
        with pytest.raises(CardBusy):
            _pay(card, CARD_PIN, "busy", actor_id=clerk.id)
        with pytest.raises(CardRefused):  # a stranger cannot tell this from the others
            _pay(card, CARD_PIN, "busy2", actor_id=None)
    finally:
        app.config["PIN_WAIT_SECONDS"] = old


@pytest.mark.commits  # the attempt is kept on a connection of its own
def test_a_wrong_pin_stays_counted_when_the_callers_work_is_rolled_back(make_card, clerk):
    card = make_card(balance=10_000)
    card_id = card.id
    with pytest.raises(WrongPin), unit_of_work():
        # The caller wrote first (an order, a parcel...): all of it is rolled back.
        db.add(AuditRecord(action="test.caller_wrote_first", details={}))
        db.flush()
        _pay(card, "9999", "rolled-back", actor_id=clerk.id)
    assert _attempts(card_id) == (1, False)
    assert db.scalar(select(AuditRecord).where(
        AuditRecord.action == "test.caller_wrote_first")) is None
    assert len(db.scalars(select(AuditRecord).where(
        AuditRecord.action == "post_card.pin_failed")).all()) == 1


def test_on_sqlite_a_wrong_pin_at_checkout_is_a_quick_form_error_and_is_counted(tmp_path):
    """The embedded default: SQLite allows one writer, and the checkout's own transaction
    holds it when the PIN is checked. Run in a process of its own (its own engine)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.payments.sqlite_pin_probe", str(tmp_path / "b.sqlite3")],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    checkout, rolled_back = seen["checkout"], seen["rolled_back"]
    assert checkout["status"] == 422 and checkout["seconds"] < 1.0
    assert len(checkout["flashed"]) == 1 and checkout["flashed"][0] in REFUSED
    assert checkout["attempts"] == 1 and checkout["orders"] is False
    assert checkout["other_write_seconds"] is not None and checkout["other_write_seconds"] < 1.0
    # A caller that had written first, then rolled back: the attempt is still counted.
    assert rolled_back["error"] == "CardRefused" and rolled_back["seconds"] < 1.0
    assert (rolled_back["before"], rolled_back["after"]) == (1, 2)
    assert [d["failed"] for d in rolled_back["failed_audits"]] == [1, 2]
    assert rolled_back["caller_kept"] is False


# --- one answer for strangers ----------------------------------------------------------


def _login(client, user: User, url: str) -> None:
    """Log in, in English, and see the page once (the welcome is shown and gone)."""
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303)
    with client.session_transaction() as session:
        session["lang"] = "en"
    assert client.get(url).status_code == 200


def _answer(client, url: str, number: str, pin: str) -> tuple[int, str]:
    res = client.post(url, data={"method": "post_card", "card_number": number, "pin": pin,
                                 "key": "same-key"}, headers={"Accept-Language": "en"})
    # The form shows back the number typed; everything else must be the same.
    return res.status_code, res.get_data(as_text=True).replace(number, "<number>")


def test_a_stranger_cannot_tell_a_missing_card_a_wrong_pin_or_a_locked_card(
        client, fee, make_card):
    card = make_card(balance=10_000)
    locked = make_card(balance=10_000)
    locked.locked_at = utcnow()
    db.commit()
    missing = cards.new_card_number()  # a well-formed number no card has
    assert db.scalar(select(PostCard).where(PostCard.number == missing)) is None
    _login(client, _person("Stranger Person"), fee)

    answers = [_answer(client, fee, missing, CARD_PIN), _answer(client, fee, card.number, "9999"),
               _answer(client, fee, locked.number, CARD_PIN)]
    status, body = answers[0]
    assert answers[1] == answers[0] and answers[2] == answers[0]
    assert _flash(body) in REFUSED
    for telling in ("Attempts left", "locked", "المحاولات الباقية", "قفل"):
        assert telling not in body


def test_the_holder_and_the_counter_are_told_why(client, fee, make_card, clerk):
    holder = _person("Holder Person")
    card = make_card(balance=10_000, user_id=holder.id)
    _login(client, holder, fee)
    # The holder's own account hears what went wrong (in the page's language).
    wrong = _flash(_answer(client, fee, card.number, "9999")[1])
    assert wrong and wrong not in REFUSED and wrong.endswith("4")  # four attempts left
    card.locked_at = utcnow()
    db.commit()
    locked = _flash(_answer(client, fee, card.number, CARD_PIN)[1])
    assert locked and locked not in REFUSED and locked != wrong
    # The counter (a clerk taking postage) hears it too.
    with pytest.raises(CardLocked):
        _pay(card, CARD_PIN, "counter", actor_id=clerk.id)
