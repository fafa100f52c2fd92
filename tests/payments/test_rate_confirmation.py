"""Exchange rates: a small change applies at once, a large one waits for a second admin
or supervisor, and zero, negative or absurd rates are refused with a form error."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.audit import AuditRecord
from app.auth.models import User
from app.database import db, unit_of_work
from payments import rates
from payments.errors import AbsurdRate, AlreadyDecided, SecondPersonRequired
from payments.models import ExchangeRate, RateProposal

PASSWORD = "correct horse 42"


def person(name: str, *roles: str) -> User:
    from app.auth.services import create_user

    u = create_user(name, email=f"{name.lower().replace(' ', '.')}@barid.iq", password=PASSWORD,
                    roles=roles)
    return db.get(User, u.id)


def login(client, user: User) -> None:
    client.post("/logout")
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def usd_now() -> Decimal:
    db.expire_all()
    return Decimal(rates.rate_at("USD").rate)


@pytest.fixture()
def people(app_ctx):
    found = {"admin": person("Rate Admin", "admin"), "admin2": person("Second Admin", "admin"),
             "supervisor": person("Rate Supervisor", "supervisor")}
    with unit_of_work():
        rates.add_rate("USD", "1310")
    return found


def test_a_small_change_applies_at_once(client, people):
    login(client, people["admin"])
    res = client.post("/backoffice/payments/rates", data={"base": "USD", "rate": "١٣٥٠"})
    assert res.status_code == 302
    assert usd_now() == Decimal("1350")  # 3% away: under the 10% that needs a second person
    assert db.scalar(select(RateProposal)) is None


def test_a_big_change_waits_for_a_second_person(client, people):
    login(client, people["admin"])
    res = client.post("/backoffice/payments/rates", data={"base": "USD", "rate": "1500"},
                      follow_redirects=True)
    assert res.status_code == 200
    assert usd_now() == Decimal("1310")  # 14.5% away: not in force yet
    proposal = db.scalar(select(RateProposal))
    assert proposal.status == "pending" and proposal.proposed_by_id == people["admin"].id

    # The proposer cannot confirm it, on the page or in the service.
    res = client.post(f"/backoffice/payments/rates/proposals/{proposal.id}/confirm",
                      follow_redirects=True)
    assert res.status_code == 200 and usd_now() == Decimal("1310")
    with pytest.raises(SecondPersonRequired), unit_of_work():
        rates.confirm_rate(proposal.id, actor_id=people["admin"].id)

    # A supervisor sees it waiting and confirms it: it takes effect now.
    login(client, people["supervisor"])
    page = client.get("/backoffice/payments/rates").get_data(as_text=True)
    assert "1,500.0000" in page and "Rate Admin" in page
    res = client.post(f"/backoffice/payments/rates/proposals/{proposal.id}/confirm")
    assert res.status_code == 302
    assert usd_now() == Decimal("1500")
    db.expire_all()
    assert db.get(RateProposal, proposal.id).decided_by_id == people["supervisor"].id
    confirmed = db.scalar(select(AuditRecord).where(
        AuditRecord.action == "exchange_rate.confirmed"))
    assert confirmed.actor_id == people["supervisor"].id
    assert confirmed.details["proposed_by_id"] == people["admin"].id
    # A supervisor confirms, but does not set rates.
    assert client.post("/backoffice/payments/rates",
                       data={"base": "USD", "rate": "1510"}).status_code == 403
    # Confirmed once: a second confirmation is refused.
    with pytest.raises(AlreadyDecided), unit_of_work():
        rates.confirm_rate(proposal.id, actor_id=people["admin2"].id)
    assert len(db.scalars(select(ExchangeRate)).all()) == 2


def test_a_declined_rate_never_applies(app_ctx, people):
    with unit_of_work():
        proposal = rates.propose_rate("USD", "900", actor_id=people["admin"].id)
    assert isinstance(proposal, RateProposal)
    with unit_of_work():
        rates.decline_rate(proposal.id, actor_id=people["admin2"].id)
    with pytest.raises(AlreadyDecided), unit_of_work():
        rates.confirm_rate(proposal.id, actor_id=people["supervisor"].id)
    assert usd_now() == Decimal("1310")


@pytest.mark.parametrize("typed", ["0", "-1310", "0.000000001", "abc", "131000000",
                                   "13.09", "1e9"])
def test_zero_negative_and_absurd_rates_are_form_errors(client, people, typed):
    login(client, people["admin"])
    res = client.post("/backoffice/payments/rates", data={"base": "USD", "rate": typed})
    assert res.status_code == 422
    page = res.get_data(as_text=True)
    assert 'class="field-error"' in page
    assert "أكبر من صفر" in page or "تحقّق من السعر" in page  # above zero / check the rate
    assert usd_now() == Decimal("1310")
    assert db.scalar(select(RateProposal)) is None


def test_absurd_is_a_hundredfold_from_the_current_rate(app_ctx, people):
    with pytest.raises(AbsurdRate), unit_of_work():
        rates.propose_rate("USD", "131001", actor_id=people["admin"].id)
    with pytest.raises(AbsurdRate), unit_of_work():
        rates.add_rate("USD", "13.09")
    # 100 times is still a (large) change a second person may confirm.
    with unit_of_work():
        assert isinstance(rates.propose_rate("USD", "131000", actor_id=people["admin"].id),
                          RateProposal)
    # A first rate has nothing to compare to: it is kept within what any currency is worth.
    with pytest.raises(AbsurdRate), unit_of_work():
        rates.add_rate("EUR", "2000000")
    with unit_of_work():
        assert isinstance(rates.propose_rate("EUR", "1420", actor_id=people["admin"].id),
                          ExchangeRate)


@pytest.mark.commits  # two confirmers, each in a thread with a session of their own
def test_two_people_confirming_at_once_set_the_rate_once(app, people):
    db.commit()
    with unit_of_work():
        pid = rates.propose_rate("USD", "1600", actor_id=people["admin"].id).id
    outcomes: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def confirm(user_id: int) -> None:
        with app.app_context():
            try:
                barrier.wait()
                with unit_of_work():
                    rates.confirm_rate(pid, actor_id=user_id)
                outcomes.append("confirmed")
            except AlreadyDecided:
                outcomes.append("already")
            except BaseException as exc:  # surfaced below
                errors.append(exc)
            finally:
                db.remove()

    threads = [threading.Thread(target=confirm, args=(u,))
               for u in (people["admin2"].id, people["supervisor"].id)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(outcomes) == ["already", "confirmed"]
    db.remove()
    assert [str(r.rate) for r in db.scalars(select(ExchangeRate).order_by(ExchangeRate.id))] \
        == ["1310.00000000", "1600.00000000"]
