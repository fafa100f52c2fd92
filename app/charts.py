"""Charts drawn on the server as inline SVG: no script, no charting library, no network.

Two shapes, enough for the dashboard (app.dashboard.Figure):

- `day_columns`: one column per day (one per series, side by side), oldest to newest;
- `bars`: horizontal bars, one labelled row each.

Both use percentage x coordinates and pixel heights, so the text keeps its size on a
phone and on a desk (a scaled viewBox would shrink the labels to nothing at 390 px).
On a right-to-left page the charts are mirrored: days run from right (oldest) to left
(today) and bars grow from the right; numbers stay left-to-right.

Every string is escaped here; a chart is `role="img"` with a title and a description,
each column and bar links to the list behind it and carries its own title (a tooltip,
read aloud), and the page shows the same numbers in a table as well.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from markupsafe import Markup, escape

from app.dashboard import Bar, DaySeries, Figure
from app.i18n import format_number

COLOURS = ("#0b5a73", "#c98a00", "#1c7c44", "#a32020", "#6a4c93", "#5b6472")
GRID = "#d9dee5"
INK = "#1d2330"
MUTED = "#5b6472"

_ids = itertools.count(1)


def _pct(x: float) -> str:
    return f"{x:.3f}%"


def nice_ceiling(value: int) -> int:
    """The smallest of 1, 2, 2.5, 5 × 10^k that is at least `value` (the axis top)."""
    if value <= 0:
        return 1
    magnitude = 1
    while magnitude * 10 <= value:
        magnitude *= 10
    for step in (1, 2, 2.5, 5, 10):
        top = int(step * magnitude)
        if top >= value:
            return top
    return 10 * magnitude


def _text(x: str, y: float, content: str, *, rtl: bool, anchor: str = "start",
          fill: str = INK, size: int = 13, weight: str = "normal", halo: bool = False,
          number: bool = False) -> str:
    """A text element whose `anchor` start/end are in the page's reading direction.

    `number`: a figure ("225,000 IQD") keeps left-to-right order on an Arabic page too;
    it is then anchored by the same edge as the words around it.
    """
    direction = "rtl" if rtl and not number else "ltr"
    if number and rtl:
        anchor = {"start": "end", "end": "start"}.get(anchor, anchor)
    extra = ' stroke="#ffffff" stroke-width="3" paint-order="stroke"' if halo else ""
    return (f'<text x="{x}" y="{y:.1f}" direction="{direction}" text-anchor="{anchor}" '
            f'font-size="{size}" font-weight="{weight}" fill="{fill}"{extra}>'
            f'{escape(content)}</text>')


def _open(figure: Figure, height: int) -> tuple[str, str]:
    n = next(_ids)
    tid, did = f"chart-{figure.key}-{n}-t", f"chart-{figure.key}-{n}-d"
    head = (f'<svg class="chart chart-{escape(figure.kind)}" xmlns="http://www.w3.org/2000/svg" '
            f'width="100%" height="{height}" role="img" aria-labelledby="{tid} {did}">'
            f'<title id="{tid}">{escape(figure.title)}</title>'
            f'<desc id="{did}">{escape(figure.description)}</desc>')
    return head, "</svg>"


def day_columns(figure: Figure, *, rtl: bool, height: int = 200) -> Markup:
    """Columns per day for each series of `figure`, with the axis top and half marked
    and every seventh day (counting back from today) named under the axis."""
    days = len(figure.days)
    series: Sequence[DaySeries] = figure.series
    if not days or not series:
        return Markup("")
    top_pad, bottom_pad = 22.0, 26.0
    plot_h = height - top_pad - bottom_pad
    base = top_pad + plot_h
    peak = max((v for s in series for v in s.values), default=0)
    top = nice_ceiling(peak)
    slot = 100.0 / days
    group = slot * 0.8
    width = group / len(series)
    parts: list[str] = []
    head, tail = _open(figure, height)
    parts.append(head)
    # Grid: the axis, half and top, each labelled at the start side above its line
    # (the labels are drawn after the columns, with a white halo, so they stay legible).
    labels: list[str] = []
    for share in (0.0, 0.5, 1.0):
        y = base - share * plot_h
        parts.append(f'<line x1="0%" x2="100%" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}" '
                     f'stroke-width="1"/>')
        if share:
            value = int(top * share) if (top * share).is_integer() else top * share
            labels.append(_text("100%" if rtl else "0%", y - 4, _number(value), rtl=rtl,
                                fill=MUTED, size=11, halo=True, number=True))
    for i in range(days):
        # Oldest first; on a right-to-left page the oldest is on the right.
        slot_start = (days - 1 - i) * slot if rtl else i * slot
        for k, s in enumerate(series):
            value = s.values[i]
            h = plot_h * value / top if top else 0
            index = (len(series) - 1 - k) if rtl else k
            x = slot_start + (slot - group) / 2 + index * width
            tip = f"{s.label} · {figure.day_labels[i]}: {s.shown[i]}"
            rect = (f'<rect x="{_pct(x)}" y="{base - h:.1f}" width="{_pct(width)}" '
                    f'height="{max(h, 0):.1f}" fill="{COLOURS[k % len(COLOURS)]}">'
                    f'<title>{escape(tip)}</title></rect>')
            url = s.urls[i] if i < len(s.urls) else None
            if url and value:
                rect = f'<a href="{escape(url)}">{rect}</a>'
            parts.append(rect)
        if (days - 1 - i) % 7 == 0:
            centre = slot_start + slot / 2
            parts.append(f'<text x="{_pct(centre)}" y="{height - 8:.1f}" direction="ltr" '
                         f'text-anchor="middle" font-size="11" fill="{MUTED}">'
                         f'{escape(figure.day_labels[i])}</text>')
    parts.extend(labels)
    parts.append(tail)
    return Markup("".join(parts))  # noqa: S704 (every piece of text went through escape)


def bars(figure: Figure, *, rtl: bool, row: int = 44) -> Markup:
    """One row per bar: its label on a line of its own (long office names never run
    into the bar), then the bar and its number."""
    rows: Sequence[Bar] = figure.bars
    if not rows:
        return Markup("")
    height = row * len(rows) + 4
    peak = max(b.value for b in rows)
    # The longest bar leaves room for its number beside it.
    longest = 72.0
    parts: list[str] = []
    head, tail = _open(figure, height)
    parts.append(head)
    for n, b in enumerate(rows):
        y = n * row
        parts.append(_text("100%" if rtl else "0%", y + 15, b.label, rtl=rtl, size=13))
        length = longest * b.value / peak if peak else 0.0
        length = max(length, 0.4) if b.value else 0.0
        x = 100.0 - length if rtl else 0.0
        rect = (f'<rect x="{_pct(x)}" y="{y + 21}" width="{_pct(length)}" height="14" '
                f'rx="2" fill="{COLOURS[0]}"><title>{escape(b.label)}: {escape(b.shown)}'
                f'</title></rect>')
        if b.url and b.value:
            rect = f'<a href="{escape(b.url)}">{rect}</a>'
        parts.append(rect)
        end = (100.0 - length - 1.0) if rtl else (length + 1.0)
        parts.append(_text(_pct(end), y + 33, b.shown, rtl=rtl, size=12, weight="bold",
                           number=True))
    parts.append(tail)
    return Markup("".join(parts))  # noqa: S704 (every piece of text went through escape)


def draw(figure: Figure, *, rtl: bool) -> Markup:
    """The figure's chart (empty markup when it has nothing to draw)."""
    if figure.kind == "days":
        return day_columns(figure, rtl=rtl)
    return bars(figure, rtl=rtl)


def _number(value: float) -> str:
    return format_number(value)
