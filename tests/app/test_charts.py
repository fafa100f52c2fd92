"""The SVG charts: escaped, mirrored on a right-to-left page, numbers left-to-right,
every mark titled and linked, and nothing drawn for nothing."""

from __future__ import annotations

import re
from datetime import date, timedelta
from xml.etree import ElementTree

from app import charts
from app.dashboard import Bar, DaySeries, Figure

SVG = "{http://www.w3.org/2000/svg}"


def _bars(label: str = "مكتب بريد البصرة") -> Figure:
    return Figure(key="k", title='Cash <b>"&', description="d</desc><script>", kind="bars",
                  bars=[Bar(label, 30, "30,000 IQD", "/backoffice/payments/drawer?office=1&x=<"),
                        Bar("two", 10, "10,000 IQD", None), Bar("none", 0, "0 IQD", "/z")])


def _days(n: int = 30) -> Figure:
    days = [date(2026, 3, 1) + timedelta(days=i) for i in range(n)]
    return Figure(key="d", title="t", description="d", kind="days", days=days,
                  day_labels=[f"{d.day}/{d.month}" for d in days],
                  series=[DaySeries("in", list(range(n)), [str(i) for i in range(n)],
                                    [f"/l?d={i}" for i in range(n)])])


def _parse(markup) -> ElementTree.Element:
    return ElementTree.fromstring(str(markup))


def test_text_and_links_are_escaped_and_the_chart_is_well_formed():
    svg = charts.draw(_bars("<script>alert(1)</script>"), rtl=True)
    assert "<script" not in svg and "&lt;script&gt;" in svg
    root = _parse(svg)  # well-formed XML: nothing broke out of an attribute or element
    assert root.get("role") == "img"
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == 'Cash <b>"&'
    assert root.find(f"{SVG}desc").text == "d</desc><script>"
    links = [a.get("href") for a in root.iter(f"{SVG}a")]
    # Bars without a list or without a number are not links.
    assert links == ["/backoffice/payments/drawer?office=1&x=<"]


def test_bars_grow_from_the_reading_side_and_numbers_stay_left_to_right():
    rtl, ltr = _parse(charts.bars(_bars(), rtl=True)), _parse(charts.bars(_bars(), rtl=False))
    first_rtl = next(rtl.iter(f"{SVG}rect"))
    first_ltr = next(ltr.iter(f"{SVG}rect"))
    assert first_ltr.get("x") == "0.000%" and first_rtl.get("x") == "28.000%"
    assert first_rtl.get("width") == first_ltr.get("width") == "72.000%"
    texts = {t.text: t for t in rtl.iter(f"{SVG}text")}
    assert texts["مكتب بريد البصرة"].get("direction") == "rtl"
    assert texts["30,000 IQD"].get("direction") == "ltr"
    # The number sits just beyond the bar's end, on the side it grows towards.
    assert texts["30,000 IQD"].get("x") == "27.000%"
    assert texts["30,000 IQD"].get("text-anchor") == "end"


def test_days_run_from_the_reading_side_with_every_seventh_day_named():
    fig = _days()
    ltr = _parse(charts.day_columns(fig, rtl=False))
    rtl = _parse(charts.day_columns(fig, rtl=True))

    def rect_x(root, title_start):
        for r in root.iter(f"{SVG}rect"):
            if r.find(f"{SVG}title").text.startswith(title_start):
                return float(r.get("x").rstrip("%"))
        raise AssertionError(title_start)

    # The oldest day is at the left in English, at the right in Arabic; today opposite.
    assert rect_x(ltr, "in · 1/3") < rect_x(ltr, "in · 30/3")
    assert rect_x(rtl, "in · 1/3") > rect_x(rtl, "in · 30/3")
    named = [t.text for t in ltr.iter(f"{SVG}text") if re.fullmatch(r"\d+/\d+", t.text or "")]
    assert named == ["2/3", "9/3", "16/3", "23/3", "30/3"]
    # A day with nothing is not a link (there is no list to open); the others are.
    assert len(list(ltr.iter(f"{SVG}a"))) == 29


def test_axis_top_is_a_round_number_at_or_above_the_peak():
    assert [charts.nice_ceiling(v) for v in (0, 1, 3, 7, 19, 20, 21, 240, 1_000_001)] == [
        1, 1, 5, 10, 20, 20, 25, 250, 2_000_000]


def test_nothing_to_draw_draws_nothing():
    assert charts.draw(Figure(key="e", title="t", description="d", kind="bars"), rtl=True) == ""
    assert charts.draw(Figure(key="e", title="t", description="d", kind="days"), rtl=True) == ""
