"""Issuing post cards: numbers nobody can count to, and PINs a thief does not try first."""

from __future__ import annotations

from itertools import product
from types import SimpleNamespace

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app.database import db, unit_of_work
from payments import cards, forms, pins, seed, services
from payments.errors import CardNumbersExhausted, InvalidPin, WeakPin
from payments.models import Account, PostCard
from tests.payments.helpers import CARD_PIN
from tests.payments.test_pages import login, person

REPEATED = ["0000", "1111", "7777", "11111", "999999", "000000"]
RUNS = ["1234", "4321", "0123", "9876", "3456", "6543", "12345", "54321", "654321", "456789",
        "8901", "9012", "7890", "0987", "1098", "2109", "890123"]  # wrap-around counts
COMMON = ["1212", "1004", "2000", "6969", "1122", "1313", "2001", "1010"]
WEAK = [(p, pins.Weakness.REPEATED) for p in REPEATED] + \
    [(p, pins.Weakness.RUN) for p in RUNS] + [(p, pins.Weakness.COMMON) for p in COMMON]
GOOD = [CARD_PIN, "7305", "1357", "2468", "2580", "1235", "90210", "482613"]


def body(number: str) -> int:
    """The 11 digits between the prefix and the Luhn digit."""
    return int(number[len(cards.CARD_PREFIX):-1])


def issue(pin: str = CARD_PIN, **kw) -> PostCard:
    with unit_of_work():  # issue_card flushes only
        return cards.issue_card(**{"holder_name": "Ali Hassan", "national_id": "199011110000",
                                   "mobile": "+9647701112222", "pin": pin, "user_id": None,
                                   "clerk_id": None, "office_id": None, **kw})


def card_count() -> int:
    return db.scalar(select(func.count()).select_from(PostCard))


def force_draws(monkeypatch, *bodies: int) -> list[int]:
    """Make the random source hand out `bodies` in turn (the last one forever)."""
    asked: list[int] = []

    def randbelow(n: int) -> int:
        assert n == 10 ** cards.CARD_RANDOM_DIGITS
        asked.append(n)
        return bodies[min(len(asked), len(bodies)) - 1]

    monkeypatch.setattr(cards, "secrets", SimpleNamespace(randbelow=randbelow))
    return asked


# --- Numbers ---------------------------------------------------------------------


def test_a_thousand_new_numbers_are_valid_distinct_and_not_countable(app_ctx):
    # issue_card's numbering step, a thousand times (the whole use case a thousand times
    # costs half a minute of ledger accounts that say nothing about numbers).
    values = dict(holder_name="Ali", national_id="1", mobile="+9647700000000", user_id=None,
                  issued_by_id=None, issued_at_office_id=None, pin_hash=None,
                  expires_on=cards.today_in_baghdad())
    with unit_of_work():
        made = [cards._insert_with_new_number(values) for _ in range(1000)]
        made.append(issue())  # and the use case itself numbers the same way
    numbers = [c.number for c in made]
    for n in numbers:
        assert len(n) == 16 and n.isdigit() and n.startswith("9647") and cards.luhn_valid(n)
        assert cards.normalise_number(n) == n  # every issued number is accepted at checkout
    assert len(set(numbers)) == len(made) == 1001
    bodies = [body(n) for n in numbers]
    # Not counted: neighbours in issue order are not a fixed step apart (a serial is +1),
    # and no number moves with the row id (a serial from the id is body = id + k).
    steps = {b - a for a, b in zip(bodies, bodies[1:], strict=False)}
    assert len(steps) > 990 and 1 not in steps
    assert len({b - c.id for b, c in zip(bodies, made, strict=True)}) > 990
    # Spread over the whole range, not bunched at the bottom like a young serial: the
    # first random digit takes every value, and sorted numbers are not a block of runs.
    assert {f"{b:011d}"[0] for b in bodies} == set("0123456789")
    ordered = sorted(bodies)
    assert sum(1 for a, b in zip(ordered, ordered[1:], strict=False) if b - a == 1) == 0


def test_a_number_already_taken_is_drawn_again(app_ctx, make_card, monkeypatch):
    first = make_card()
    kept = first.number
    accounts = db.scalar(select(func.count()).select_from(Account))
    asked = force_draws(monkeypatch, body(first.number), 31_415_926_535)
    second = issue()
    assert len(asked) == 2  # the clash was seen and a new number drawn
    assert second.number == "964731415926535" + cards.luhn_check_digit("964731415926535")
    assert cards.luhn_valid(second.number)
    db.expire_all()
    assert db.get(PostCard, first.id).number == kept  # the holder of the first card is untouched
    assert card_count() == 2
    # The clashing insert was undone alone: one card's two accounts were added, not more.
    assert db.scalar(select(func.count()).select_from(Account)) == accounts + 2


def test_a_random_source_that_always_clashes_stops_issuing(app_ctx, make_card, monkeypatch):
    first = make_card()
    asked = force_draws(monkeypatch, body(first.number))
    with pytest.raises(CardNumbersExhausted):
        issue()
    assert len(asked) == cards.MAX_NUMBER_DRAWS
    assert card_count() == 1


def test_a_card_issued_before_keeps_its_printed_number(app_ctx, make_card, clerk):
    # A card from the serial days: its number is on the plastic and must never change.
    old = make_card(balance=5000)
    printed = "9647" + "00000000042"
    printed += cards.luhn_check_digit(printed)
    old.number = printed
    db.flush()
    issue(), issue()
    with unit_of_work():  # the clerk's use cases flush only
        cards.change_pin(old.id, new_pin="5937", clerk_id=clerk.id)
        cards.freeze_card(old.id, clerk_id=clerk.id)
        cards.unfreeze_card(old.id, clerk_id=clerk.id)
    db.expire_all()
    assert db.get(PostCard, old.id).number == printed
    assert cards.find_card(" ".join(printed[i:i + 4] for i in range(0, 16, 4))).id == old.id
    p = services.pay_with_post_card(card_number=printed, pin="5937", amount=100, currency="IQD",
                                    reference_kind="parcel", reference_id="RR000000080IQ",
                                    purpose="postage", idempotency_key="old-card",
                                    actor_id=clerk.id, at_counter=True)
    assert p.status == "succeeded"


# --- PINs ------------------------------------------------------------------------


def test_the_rules_refuse_exactly_the_repeats_runs_and_commonest_four_digit_pins():
    refused = {p for p in map("".join, product("0123456789", repeat=4)) if pins.weakness(p)}
    repeats = {d * 4 for d in "0123456789"}
    runs = {"".join(str((s + k * i) % 10) for i in range(4)) for s in range(10) for k in (1, -1)}
    assert refused == repeats | runs | pins.COMMONEST_PINS
    assert len(pins.COMMONEST_PINS) == 20
    assert len(refused) == 10 + 20 + len(COMMON)  # the commonest not already a repeat or run
    for good in GOOD:
        assert pins.weakness(good) is None


@pytest.mark.parametrize(("pin", "why"), WEAK)
def test_a_weak_pin_is_refused_at_issue_with_the_reason(app_ctx, pin, why):
    with pytest.raises(WeakPin) as exc:
        issue(pin=pin)
    assert exc.value.weakness == why and exc.value.http_status == 422
    assert exc.value.fields == {"pin": pins.WHY[why]}
    assert card_count() == 0


@pytest.mark.parametrize(("pin", "why"), WEAK)
def test_a_weak_pin_is_refused_at_change_and_the_old_one_stays(app_ctx, make_card, clerk,
                                                               pin, why):
    card = make_card()
    before = card.pin_hash
    with pytest.raises(WeakPin) as exc, unit_of_work():
        cards.change_pin(card.id, new_pin=pin, clerk_id=clerk.id)
    assert exc.value.weakness == why
    db.expire_all()
    assert db.get(PostCard, card.id).pin_hash == before


@pytest.mark.parametrize("bad", ["", "123", "1234567", "12a4", "١٢٣", "१२३४"])
def test_a_pin_of_the_wrong_shape_is_still_refused(app_ctx, make_card, clerk, bad):
    with pytest.raises(InvalidPin) as exc:
        issue(pin=bad)
    assert not isinstance(exc.value, WeakPin)
    card = make_card()
    with pytest.raises(InvalidPin), unit_of_work():
        cards.change_pin(card.id, new_pin=bad, clerk_id=clerk.id)


@pytest.mark.parametrize("good", GOOD)
def test_a_good_pin_is_accepted_at_issue_and_change(app_ctx, make_card, clerk, good):
    assert issue(pin=good).pin_hash.startswith("$argon2id$")
    card = make_card(balance=1000)
    with unit_of_work():
        cards.change_pin(card.id, new_pin=good, clerk_id=clerk.id)
    p = services.pay_with_post_card(card_number=card.number, pin=good, amount=100,
                                    currency="IQD", reference_kind="parcel",
                                    reference_id="RR000000080IQ", purpose="postage",
                                    idempotency_key=f"good-{good}", actor_id=clerk.id,
                                    at_counter=True)
    assert p.status == "succeeded"


def test_the_reason_is_told_in_the_users_language(app_ctx):
    with force_locale("ar"):
        ar = {str(m) for m in pins.WHY.values()}
    with force_locale("en"):
        en = {str(m) for m in pins.WHY.values()}
    assert len(ar) == len(en) == 3 and not ar & en
    assert all("الرمز السري" in m for m in ar)


def test_the_demo_card_is_still_made_with_a_pin_that_passes(app_ctx):
    shopper = person("Shopper", "shopper")
    assert shopper.email == "shopper@barid.iq"
    with unit_of_work():
        seed._seed_demo_card()
    assert pins.weakness(seed.DEMO_CARD_PIN) is None
    assert len(cards.cards_of(shopper.id)) == 1


# --- The back-office form ----------------------------------------------------------


@pytest.fixture()
def counter(client, app_ctx, office):
    login(client, person("Huda Clerk", "clerk", office=office))
    return client


def issue_form(client, pin: str):
    return client.post("/backoffice/payments/cards/new", data={
        "holder_name": "سارة أحمد", "national_id": "199012345678", "mobile": "+9647701112222",
        "pin": pin, "pin_again": pin})


@pytest.mark.parametrize(("pin", "why"), [("0000", pins.Weakness.REPEATED),
                                          ("12345", pins.Weakness.RUN),
                                          ("8901", pins.Weakness.RUN),
                                          ("6969", pins.Weakness.COMMON)])
def test_the_issue_form_shows_why_a_weak_pin_is_refused_and_makes_no_card(counter, pin, why):
    res = issue_form(counter, pin)
    assert res.status_code == 422
    with force_locale("ar"):  # the back office speaks Arabic first
        reason = str(pins.WHY[why])
    # Next to the PIN field, where the clerk looks, not only in a banner.
    assert f'<p class="field-error" role="alert">{reason}</p>' in res.get_data(as_text=True)
    assert card_count() == 0


def test_the_service_refuses_a_weak_pin_the_form_let_through(counter, monkeypatch):
    monkeypatch.setattr(forms, "weakness", lambda _pin: None)  # a form check that was lost
    res = issue_form(counter, "1111")
    assert res.status_code == 422
    with force_locale("ar"):
        reason = str(pins.WHY[pins.Weakness.REPEATED])
    assert f'<p class="field-error" role="alert">{reason}</p>' in res.get_data(as_text=True)
    assert card_count() == 0


def test_the_issue_form_takes_a_good_pin(counter):
    res = issue_form(counter, "7305")
    assert res.status_code == 302 and card_count() == 1
