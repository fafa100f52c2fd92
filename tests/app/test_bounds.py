"""Numbers beyond what the database holds: an id in a URL past BIGINT is a 404 on every
route, an id at the very top reaches the view and is still no 500, and the API refuses
out-of-range ids and cursors with 422 and the field."""

from __future__ import annotations

import base64

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import AnyConverter, IntegerConverter, Rule

from app.auth.models import PostOffice, Role, User, UserRole
from app.database import db
from app.numbers import MAX_BIGINT, parse_decimal, parse_whole

TOO_BIG = [MAX_BIGINT + 1, 2**70, 99999999999999999999, int("9" * 40)]


def _int_get_rules(app) -> list[Rule]:
    rules = [r for r in app.url_map.iter_rules()
             if "GET" in (r.methods or ()) and any(
                 isinstance(c, IntegerConverter) for c in r._converters.values())]
    assert len(rules) > 10  # shop, payments, tracking, customs and the API all have some
    return rules


def _path(rule: Rule, number: int) -> str:
    """The rule's path with `number` for each int and a plain value for the others (built
    by hand: the int converter would refuse to build a number it does not match)."""
    parts = []
    for is_dynamic, value in rule._trace:
        if not is_dynamic:
            parts.append(value)
            continue
        converter = rule._converters[value]
        if isinstance(converter, IntegerConverter):
            parts.append(str(number))
        elif isinstance(converter, AnyConverter):
            parts.append(converter.items[0] if hasattr(converter, "items") else "x")
        else:
            parts.append("x")
    path = "".join(parts)
    return path[path.index("|") + 1:] if "|" in path else path


@pytest.fixture()
def everyone(app_ctx) -> User:
    """One account with every role, attached to an office: each route's own role lets it
    in, so the walk reaches the views themselves."""
    office = PostOffice(code="BND01", name_ar="مكتب", name_en="Office", governorate="IQ-BG")
    db.add(office)
    db.flush()
    user = User(email="all.roles@post.iq", full_name="All Roles", password_hash="unused",
                post_office_id=office.id)
    user.role_rows = [UserRole(role=r.value) for r in Role]
    db.add(user)
    db.commit()
    return user


def _log_in(client, user: User) -> None:
    with client.session_transaction() as sess:
        sess["_user_id"] = user.get_id()
        sess["_fresh"] = True


def test_an_id_past_bigint_is_a_404_on_every_int_route(app, client, everyone):
    _log_in(client, everyone)
    adapter = app.url_map.bind("localhost")
    for rule in _int_get_rules(app):
        for number in TOO_BIG:
            path = _path(rule, number)
            res = client.get(path)
            assert res.status_code != 500, (path, res.status_code)
            try:
                adapter.match(path, method="GET")
            except (NotFound, MethodNotAllowed):
                assert res.status_code == 404, (path, res.status_code)


def test_the_largest_id_reaches_each_view_and_is_no_500(app, client, everyone):
    _log_in(client, everyone)
    for rule in _int_get_rules(app):
        path = _path(rule, MAX_BIGINT)
        res = client.get(path)
        assert res.status_code != 500, (path, res.status_code)


def test_named_pages_with_huge_ids_are_not_found(client, everyone):
    _log_in(client, everyone)
    for path in ("/shop/orders/99999999999999999999",
                 f"/backoffice/payments/payments/{2**70}",
                 f"/backoffice/payments/cards/{2**63}",
                 f"/backoffice/customs/{2**64}"):
        assert client.get(path).status_code == 404, path


def test_numbers_people_type_are_read_or_refused():
    assert parse_whole("١٢٣") == 123 and parse_whole("۱۲۳") == 123
    assert parse_whole("75,000") == 75_000 and parse_whole("٧٥٬٠٠٠") == 75_000
    for bad in ("", "abc", "-5", "+5", "1e9", "12.5", "1,00", "NaN", "٫", "9" * 31, "١ ٢"):
        assert parse_whole(bad) is None, bad
    assert str(parse_decimal("٤٩٫٩٩")) == "49.99" and str(parse_decimal("1,250.5")) == "1250.5"
    for bad in ("1e9999", "Infinity", "NaN", "-1", "1.2.3", ".5", "abc"):
        assert parse_decimal(bad) is None, bad


def test_an_api_cursor_past_bigint_is_refused():
    from app.api.platform import decode_cursor
    from app.errors import ValidationFailed

    def cursor(value: str) -> str:
        return base64.urlsafe_b64encode(f"id:{value}".encode()).decode().rstrip("=")

    assert decode_cursor(cursor("42")) == 42
    for value in (str(2**63), "99999999999999999999", "-1", "0"):
        with pytest.raises(ValidationFailed) as err:
            decode_cursor(cursor(value))
        assert "cursor" in err.value.fields


@pytest.mark.parametrize("path", [
    "/backoffice/admin/audit?after=99999999999999999999",
    "/shop/?page=99999999999999999999",
    "/shop/search?q=x&page=99999999999999999999",
    "/backoffice/payments/cards?q=99999999999999999999",
    f"/backoffice/admin/audit?actor={2**70}",
    "/payments/pay-for/customs_duty/99999999999999999999",
    f"/payments/pay-for/order/{2**70}",
    f"/payments/pay-for/card_topup/{2**70}",
    f"/payments/pay/{2**63}",
])
def test_huge_numbers_in_query_strings_are_no_500(client, everyone, path):
    _log_in(client, everyone)
    assert client.get(path).status_code < 500, path


def test_a_scan_with_an_office_past_bigint_ignores_it(client, everyone):
    """A scan is recorded at the clerk's own office: an office id sent by the browser,
    even one past BIGINT, is never read, so the answer is about the parcel alone."""
    _log_in(client, everyone)
    for office_id in (2**70, "99999999999999999999", -1):
        res = client.post("/backoffice/parcels/scan", json={
            "number": "EE123456785IQ", "code": "EMB", "office_id": office_id})
        assert res.status_code == 200 and res.json["reason_code"] == "unknown_parcel"
