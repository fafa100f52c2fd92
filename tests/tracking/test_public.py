"""Public tracking: the page and the JSON, without personal data, rate limited."""

from __future__ import annotations

import pytest
from flask_babel import refresh

from tests.openapi_check import answer_schema, validate_answer
from tests.tracking.helpers import at, domestic_draft
from tracking.services import events as ev
from tracking.services.parcels import preadvise


@pytest.fixture()
def journey(offices, clerk):
    parcel = preadvise(domestic_draft())
    n = parcel.tracking_number
    for i, (code, extra) in enumerate([("EMA", {}), ("EDD", {}), ("EDG", {})]):
        office = offices[0] if i < 2 else offices[1]
        ev.record_scan(number=n, code=code, office_id=office.id, actor_id=clerk.id,
                       occurred_at=at(i), **extra)
    return n


def test_json_lookup_shows_status_and_events_without_people(client, journey):
    res = client.get(f"/api/v1/tracking/{journey}?lang=en")
    assert res.status_code == 200
    body = res.get_json()
    assert body["tracking_number"] == journey and body["status"] == "out_for_delivery"
    assert [e["code"] for e in body["events"]] == ["EDG", "EDD", "EMA"]
    assert body["events"][0]["office_city"] == "Basra"
    assert body["events"][0]["description"] == "Item out for physical delivery"
    assert body["events"][0]["time"].endswith("+00:00")
    text = res.get_data(as_text=True)
    for private in ("فاطمة", "أحمد", "07801234567", "7701234567", "العشار", "حنا"):
        assert private not in text


def test_json_lookup_in_arabic(client, journey):
    body = client.get(f"/api/v1/tracking/{journey}?lang=ar").get_json()
    assert body["events"][0]["office_city"] == "البصرة"
    assert body["events"][-1]["description"] == "قبول الإرسالية"


def test_invalid_and_unknown_numbers(client, app_ctx):
    res = client.get("/api/v1/tracking/EE123456786IQ")
    assert res.status_code == 400
    assert res.get_json()["reason"] == "check_digit" and res.get_json()["message"]
    res = client.get("/api/v1/tracking/" + "A" * 500)
    assert res.status_code == 400 and res.get_json()["reason"] == "too_long"
    res = client.get("/api/v1/tracking/EE123456785IQ")
    assert res.status_code == 404 and res.get_json()["error"] == "not_found"


def test_json_answers_are_the_ones_the_openapi_document_describes(client, journey, app):
    doc = client.get("/api/v1/openapi.json").get_json()
    path = "/api/v1/tracking/{number}"
    op = doc["paths"][path]["get"]
    assert op["security"] == [] and set(op["responses"]) == {"200", "400", "404", "429"}
    found = client.get(f"/api/v1/tracking/{journey}?lang=en").get_json()
    validate_answer(doc, answer_schema(doc, path, "get", 200), found)
    for number, status in (("EE123456786IQ", 400), ("EE123456785IQ", 404)):
        res = client.get(f"/api/v1/tracking/{number}")
        assert res.status_code == status
        validate_answer(doc, answer_schema(doc, path, "get", status), res.get_json())
    app.config["TRACKING_LOOKUPS_PER_MINUTE"] = 1
    try:
        codes = [client.get(f"/api/v1/tracking/{journey}") for _ in range(2)]
    finally:
        app.config["TRACKING_LOOKUPS_PER_MINUTE"] = 60
    assert codes[1].status_code == 429
    validate_answer(doc, answer_schema(doc, path, "get", 429), codes[1].get_json())


def test_page_accepts_spaces_and_lowercase_and_redirects(client, journey):
    typed = " " + " ".join([journey[:2].lower(), journey[2:7], journey[7:]]) + " "
    res = client.get("/track", query_string={"number": typed})
    assert res.status_code == 303 and res.headers["Location"].endswith(f"/track/{journey}")
    res = client.get(f"/track/{journey.lower()}")
    assert res.status_code == 301 and res.headers["Location"].endswith(f"/track/{journey}")


def test_page_shows_the_journey_in_arabic_and_english(client, journey):
    page = client.get(f"/track/{journey}").get_data(as_text=True)
    assert 'dir="rtl"' in page and "خرجت مع موزع البريد للتسليم" in page and journey in page
    assert "فاطمة" not in page and "07801234567" not in page
    client.get("/lang/en")
    # The fixtures' app context is shared by the client's requests, and Flask-Babel keeps
    # the first request's locale in it; a browser's requests would each start afresh.
    refresh()
    page = client.get(f"/track/{journey}").get_data(as_text=True)
    assert 'dir="ltr"' in page and "Item out for physical delivery" in page
    assert "Basra" in page


def test_page_errors_are_clear(client, app_ctx):
    res = client.get("/track/EE123456786IQ")
    assert res.status_code == 400
    res = client.get("/track", query_string={"number": "x" * 500})
    assert res.status_code == 400
    res = client.get("/track/EE123456785IQ")
    assert res.status_code == 404


def test_lookups_are_rate_limited_per_client(client, journey, app):
    app.config["TRACKING_LOOKUPS_PER_MINUTE"] = 5
    try:
        codes = [client.get(f"/api/v1/tracking/{journey}").status_code for _ in range(7)]
    finally:
        app.config["TRACKING_LOOKUPS_PER_MINUTE"] = 60
    assert codes[:5] == [200] * 5 and codes[5:] == [429, 429]


def test_rate_limit_uses_redis_when_configured(client, journey, app, redis_url):
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    app.config.update(TRACKING_LOOKUPS_PER_MINUTE=3, REDIS_URL=redis_url)
    try:
        codes = [client.get(f"/api/v1/tracking/{journey}").status_code for _ in range(4)]
        keys = redis.Redis.from_url(redis_url).keys("barid:track:*")
    finally:
        app.config.update(TRACKING_LOOKUPS_PER_MINUTE=60, REDIS_URL=None)
    assert codes == [200, 200, 200, 429] and len(keys) == 1


def test_json_lookup_revalidates_and_a_new_event_shows(client, journey, offices, clerk):
    """A client holding the current version is told 304 with no body; once the parcel
    takes an event the version changes and the new event is in the answer."""
    res = client.get(f"/api/v1/tracking/{journey}?lang=en")
    etag = res.headers["ETag"]
    assert "max-age=" in res.headers["Cache-Control"] and "public" in res.headers[
        "Cache-Control"]
    again = client.get(f"/api/v1/tracking/{journey}?lang=en",
                       headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    other_language = client.get(f"/api/v1/tracking/{journey}?lang=ar",
                                headers={"If-None-Match": etag})
    assert other_language.status_code == 200
    ev.record_scan(number=journey, code="EMH", office_id=offices[1].id, actor_id=clerk.id,
                   reason_code="no_one_home", action_code="retry", occurred_at=at(3))
    fresh = client.get(f"/api/v1/tracking/{journey}?lang=en",
                       headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.headers["ETag"] != etag
    assert fresh.get_json()["events"][0]["code"] == "EMH"


def _visible(html: str) -> str:
    """What a person reads on the page: the text outside tags, scripts and styles."""
    import re

    html = re.sub(r"(?s)<(script|style|svg)\b.*?</\1>", " ", html)
    return re.sub(r"\s+", " ", re.sub(r"(?s)<[^>]+>", " ", html))


def test_page_says_every_event_in_words_with_no_codes_and_the_next_step(client, journey):
    """The shopper reads what happened in plain Arabic, where (in Arabic), and what comes
    next; no UPU code (EMA, EDD, EDG) and no status name (out_for_delivery) shows."""
    text = _visible(client.get(f"/track/{journey}").get_data(as_text=True))
    for raw in ("EMA", "EDD", "EDG", "out_for_delivery", "picked_up", "in_transit"):
        assert raw not in text, raw
    assert "قبول الإرسالية" in text and "دخول مركز الفرز" in text
    assert "خرجت مع موزع البريد للتسليم" in text and "البصرة" in text
    assert "الخطوة التالية: يوصله موزع البريد إلى العنوان اليوم." in text
    client.get("/lang/en")
    refresh()
    text = _visible(client.get(f"/track/{journey}").get_data(as_text=True))
    assert "EDG" not in text and "Next: the postman brings it to the address today." in text


def test_page_shows_the_parcels_qr_which_opens_only_public_tracking(client, journey):
    """The QR on the page carries the parcel's signed reference (not a row id); scanned
    by anyone who is not staff it leads back to this public page."""
    import re

    page = client.get(f"/track/{journey}").get_data(as_text=True)
    assert '<svg class="qr"' in page
    url = re.search(r'data-barcode="([^"]+)"', page).group(1)
    assert "/r/parcel." in url
    opened = client.get("/r/" + url.split("/r/", 1)[1])
    assert opened.status_code == 302 and opened.headers["Location"] == f"/track/{journey}"
    tampered = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")
    assert client.get("/r/" + tampered.split("/r/", 1)[1]).status_code == 404


def test_a_partners_place_name_is_our_governorate_in_arabic_where_known(app_ctx):
    """Partners write places in English capitals; ours read in Arabic, a foreign city
    stays as written."""
    from tracking.services.lookup import _city

    assert _city("BASRA", None, "ar") == "البصرة"
    assert _city(" erbil ", None, "ar") == "أربيل"
    assert _city("النجف", None, "en") == "Najaf"
    assert _city("SHENZHEN", None, "ar") == "SHENZHEN"
    assert _city("", None, "ar") == ""


def test_the_next_step_follows_the_status_and_customs(app_ctx):
    from tracking.services.lookup import STATUS_TEXT, next_step

    refresh()
    for status in STATUS_TEXT:
        assert next_step(status, closed=False), status
    assert next_step("delivered", closed=True) == ""
    assert "الكمركية" in next_step("in_transit", False, "released", duty_unpaid=True)
    assert "الكمارك" in next_step("on_hold", False, "held")
