"""A post card used online by someone who does not hold it: it pays only with the one-time
code the holder gets by SMS, read here from the messages the notification backend
delivered. Wrong, expired, spent and raced codes move no money; the holder's own linked
card pays with card and PIN only; tries across cards are throttled per account."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from app import ratelimit
from app.audit import AuditRecord
from app.auth.models import User
from app.config import ROOT
from app.database import db, unit_of_work, utcnow
from app.notify import sent_messages
from payments import otp, payables, services
from payments.errors import OneTimeCodeSent, TooManyCardTries, WrongOneTimeCode
from payments.models import OneTimeCode, Payment
from tests.payments.helpers import CARD_PIN, balance, ledger_problems

PASSWORD = "correct horse battery"
FEE = "otp_test_fee"
URL = f"/payments/pay-for/{FEE}/F1"
HOLDER_MOBILE = "+9647701234567"  # make_card's holder: the page names only "67"
CODE_SENT_AR = "أرسلنا رمز تحقق برسالة قصيرة إلى هاتف حامل البطاقة المنتهي بـ 67"
WRONG_CODE_AR = "رمز التحقق غير صحيح أو لم يعد صالحاً"


def _person(name: str) -> User:
    from app.auth.services import create_user

    with unit_of_work():  # create_user flushes only
        user = create_user(name, email=f"{name.split()[0].lower()}@example.iq",
                           password=PASSWORD, roles=("shopper",))
    return db.get(User, user.id)


def _login(client, user: User) -> None:
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303)


@pytest.fixture()
def fee(app_ctx):
    """A reference anyone may pay on /payments/pay-for (2,500 IQD)."""
    payables.register_payable(FEE, lambda ref, user: payables.Payable(
        2500, "IQD", "postage", f"Fee {ref}"))
    sent_messages.clear()
    yield URL
    sent_messages.clear()


def _codes_sent() -> list[str]:
    """The codes the holder's phone got, oldest first."""
    found = []
    for m in sent_messages:
        assert m["phone"] == HOLDER_MOBILE and m["email"] is None
        found.append(re.search(r"\b(\d{6})\b", m["body"]).group(1))
    return found


def _ask_code(client, card, key="k1") -> str:
    """Card and PIN, by someone who does not hold it: the page asks for the code."""
    res = client.post(URL, data={"method": "post_card", "card_number": card.number,
                                 "pin": CARD_PIN, "key": key})
    page = res.get_data(as_text=True)
    assert res.status_code == 200 and CODE_SENT_AR in page, page[:3000]
    assert HOLDER_MOBILE not in page and "45 67" not in page  # the last 2 digits only
    assert 'name="one_time_code"' in page
    return _codes_sent()[-1]


def _give_code(client, card, code, key="k2"):
    return client.post(URL, data={"method": "post_card", "card_number": card.number,
                                  "one_time_code": code, "key": key})


def _payments() -> int:
    db.rollback()
    return len(db.scalars(select(Payment).where(Payment.reference_kind == FEE)).all())


@pytest.mark.commits  # the code is kept apart from the request that sent it
def test_someone_elses_card_pays_only_with_the_code_its_holder_got(client, fee, make_card):
    holder, friend = _person("Holder Person"), _person("Friend Person")
    card = make_card(balance=10_000, user_id=holder.id)
    _login(client, friend)

    code = _ask_code(client, card)
    assert len(code) == 6 and balance(card) == 10_000 and _payments() == 0
    [row] = db.scalars(select(OneTimeCode)).all()
    assert code not in row.code_hash and row.actor_id == friend.id
    assert (row.amount, row.currency, row.purpose, row.tries) == (2500, "IQD", "postage", 0)
    assert timedelta(minutes=4) < row.expires_at - row.created_at <= timedelta(minutes=5)

    # Without the PIN, the code alone (sent only after the right PIN) pays.
    res = _give_code(client, card, "".join("٠١٢٣٤٥٦٧٨٩"[int(d)] for d in code))  # Arabic
    assert res.status_code == 302, res.get_data(as_text=True)[:2000]
    assert balance(card) == 7500
    [p] = db.scalars(select(Payment).where(Payment.reference_kind == FEE)).all()
    assert p.status == "succeeded" and p.payer_user_id == friend.id and p.card_id == card.id
    assert db.scalar(select(OneTimeCode.used_at)) is not None

    # The same code again, on a new payment: spent, refused, nothing moves.
    again = _give_code(client, card, code, key="k3")
    assert again.status_code == 422 and WRONG_CODE_AR in again.get_data(as_text=True)
    assert balance(card) == 7500 and _payments() == 1
    assert len(sent_messages) == 1
    assert ledger_problems() == []


@pytest.mark.commits
def test_three_wrong_codes_kill_it_and_move_nothing(client, fee, make_card):
    holder, thief = _person("Holder Person"), _person("Thief Person")
    card = make_card(balance=10_000, user_id=holder.id)
    _login(client, thief)
    code = _ask_code(client, card)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    answers = set()
    for i in range(3):
        res = _give_code(client, card, wrong, key=f"w{i}")
        answers.add((res.status_code, WRONG_CODE_AR in res.get_data(as_text=True)))
    assert answers == {(422, True)}
    # The right code now comes too late: three tries, then dead.
    late = _give_code(client, card, code, key="late")
    assert late.status_code == 422 and WRONG_CODE_AR in late.get_data(as_text=True)
    assert balance(card) == 10_000 and _payments() == 0
    assert db.scalar(select(OneTimeCode.tries)) == 3
    assert len(db.scalars(select(AuditRecord).where(
        AuditRecord.action == "post_card.code_failed")).all()) == 4
    assert ledger_problems() == []


@pytest.mark.commits
def test_an_expired_code_is_refused(client, fee, make_card, monkeypatch):
    holder, friend = _person("Holder Person"), _person("Friend Person")
    card = make_card(balance=10_000, user_id=holder.id)
    _login(client, friend)
    code = _ask_code(client, card)
    later = utcnow() + timedelta(minutes=5, seconds=1)
    monkeypatch.setattr(otp, "utcnow", lambda: later)
    res = _give_code(client, card, code)
    assert res.status_code == 422 and WRONG_CODE_AR in res.get_data(as_text=True)
    assert balance(card) == 10_000 and _payments() == 0
    assert ledger_problems() == []


@pytest.mark.commits
def test_a_new_code_retires_the_old_one_and_codes_are_rate_limited(client, fee, make_card,
                                                                     app):
    holder, friend = _person("Holder Person"), _person("Friend Person")
    card = make_card(balance=10_000, user_id=holder.id)
    _login(client, friend)
    first = _ask_code(client, card, key="a")
    second = _ask_code(client, card, key="b")
    if first != second:  # one in a million they are the same
        assert _give_code(client, card, first).status_code == 422
    assert _give_code(client, card, second, key="c").status_code == 302
    assert balance(card) == 7500
    # Per card: CARD_CODES_PER_CARD (3) codes a window; the fourth is refused.
    _ask_code(client, card, key="d")
    res = client.post(URL, data={"method": "post_card", "card_number": card.number,
                                 "pin": CARD_PIN, "key": "e"})
    assert "رموز تحقق كثيرة جداً" in res.get_data(as_text=True)
    assert len(sent_messages) == app.config["CARD_CODES_PER_CARD"] == 3


def test_the_holders_own_linked_card_pays_with_card_and_pin(client, fee, make_card):
    holder = _person("Holder Person")
    card = make_card(balance=10_000, user_id=holder.id)
    _login(client, holder)
    res = client.post(URL, data={"method": "post_card", "card_number": card.number,
                                 "pin": CARD_PIN, "key": "own"})
    assert res.status_code == 302 and balance(card) == 7500
    assert sent_messages == [] and db.scalar(select(OneTimeCode.id)) is None


@pytest.mark.commits  # the counts live outside the database
def test_a_holder_buying_often_with_their_own_card_is_not_throttled(client, fee, make_card,
                                                                    app):
    """The throttle stops walking card numbers, not a regular buyer: a holder pays more
    times than the limit with their own linked card, while a stranger's card typed by
    the same account is still counted."""
    holder = _person("Regular Buyer")
    own = make_card(balance=100_000, user_id=holder.id)
    other = make_card(balance=10_000)
    _login(client, holder)
    limit = app.config["CARD_TRIES_PER_ACCOUNT"]
    for i in range(limit + 3):
        res = client.post(URL, data={"method": "post_card", "card_number": own.number,
                                     "pin": CARD_PIN, "key": f"own{i}"})
        assert res.status_code == 302, i
    assert balance(own) == 100_000 - (limit + 3) * 2500
    answers = [client.post(URL, data={"method": "post_card", "card_number": other.number,
                                      "pin": "1357", "key": f"o{i}"}).status_code
               for i in range(limit + 1)]
    assert answers[-1] == 429 and ledger_problems() == []


def test_the_code_is_asked_of_strangers_through_the_services_too(app, fee, make_card):
    """The rule sits in payments, not in a page: any caller paying online with a card it
    does not hold gets OneTimeCodeSent, and a code without a live one is refused."""
    card = make_card(balance=10_000)  # linked to nobody
    args = dict(card_number=card.number, pin=CARD_PIN, amount=1000, currency="IQD",
                reference_kind="order", reference_id="1", purpose="shop_order",
                actor_id=None)
    with app.test_request_context(), pytest.raises(OneTimeCodeSent):
        services.authorize_post_card(idempotency_key="h1", **args)
    with app.test_request_context(), pytest.raises(WrongOneTimeCode):
        services.pay_with_post_card(idempotency_key="h2",
                                    **{**args, "pin": "", "purpose": "postage"},
                                    one_time_code="123456")
    assert balance(card) == 10_000


@pytest.mark.commits  # two threads, two connections
def test_one_code_sent_twice_at_once_pays_once(app, fee, make_card, monkeypatch):
    holder, friend = _person("Holder Person"), _person("Friend Person")
    card = make_card(balance=10_000, user_id=holder.id)
    client = app.test_client()
    _login(client, friend)
    code = _ask_code(client, card)
    friend_id, card_number = friend.id, card.number
    real = otp._matches

    def slow(stored, typed):  # both tries are counted before either spends the code
        threading.Event().wait(0.3)
        return real(stored, typed)

    monkeypatch.setattr(otp, "_matches", slow)
    start = threading.Barrier(2)
    results: list[str] = []

    def pay(key: str) -> None:
        with app.test_request_context():
            start.wait()
            try:
                with unit_of_work():
                    services.pay_bill_with_post_card(
                        FEE, "F1", user=db.get(User, friend_id), card_number=card_number,
                        pin="", idempotency_key=key, one_time_code=code)
                results.append("paid")
            except WrongOneTimeCode:
                results.append("refused")
            finally:
                db.remove()

    threads = [threading.Thread(target=pay, args=(k,)) for k in ("race-a", "race-b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == ["paid", "refused"]
    assert balance(card) == 7500 and _payments() == 1
    assert ledger_problems() == []


@pytest.mark.commits  # the counts live outside the database
def test_one_account_walking_card_numbers_is_stopped_whatever_its_address(
        client, fee, make_card, app):
    thief = _person("Thief Person")
    card = make_card(balance=10_000)
    _login(client, thief)
    limit = app.config["CARD_TRIES_PER_ACCOUNT"]
    answers = []
    for i in range(limit + 5):
        # A new address each time: the account's own count stops it all the same.
        res = client.post(URL, data={"method": "post_card", "card_number": card.number,
                                     "pin": f"{1000 + i}", "key": f"w{i}"},
                          environ_base={"REMOTE_ADDR": f"10.0.{i}.1"})
        answers.append(res.status_code)
    assert answers[:limit] == [200] * limit  # the stranger's refusal, on the form
    assert answers[limit:] == [429] * 5
    db.rollback()
    # Five wrong PINs locked the card; the throttled tries were never checked.
    assert len(db.scalars(select(AuditRecord).where(
        AuditRecord.action == "post_card.pin_failed")).all()) == 5
    assert balance(card) == 10_000


def test_on_sqlite_checkout_with_someone_elses_card_keeps_the_code_and_pays_with_it(tmp_path):
    """The embedded default: the checkout's transaction holds SQLite's one write lock
    when the code is stored and then rolls back; the code is written again right after,
    so the next try pays with it. A process of its own (its own engine)."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.payments.sqlite_pin_probe",
         str(tmp_path / "c.sqlite3"), "code"],
        cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])["code"]
    assert seen == {"first_status": 200, "asks_code": True, "sms": 1, "codes_kept": 1,
                    "orders_after_first": False, "second_status": 302, "orders": 1,
                    "code_spent": True}


def test_the_throttle_is_kept_in_redis_for_every_process(app, redis_url, monkeypatch):
    """With Redis configured the count is shared: a process that never saw the tries
    (its own memory empty) refuses the next one all the same."""
    monkeypatch.setitem(app.config, "REDIS_URL", redis_url)
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.9.9.9"}):
        for _ in range(app.config["CARD_TRIES_PER_CLIENT"]):
            otp.count_try(None)
        ratelimit.reset()  # this process's memory forgets; Redis does not
        with pytest.raises(TooManyCardTries):
            otp.count_try(None)
    with app.test_request_context(environ_base={"REMOTE_ADDR": "10.9.9.10"}):
        otp.count_try(None)  # another address has its own count
