"""A finished report run as a file: CSV (safe to open in a spreadsheet) or PDF (Arabic
shaped and right to left, or English)."""

from __future__ import annotations

import csv
import io

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from app.auth.models import PostOffice
from app.database import db
from app.money import format_money
from app.pdf import FONT, FONT_BOLD, draw_text, register_fonts

from . import Figure, ReportRun, load_figures, totals

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

TEXT = {
    "title": ("تقرير البريد", "Postal report"),
    "daily": ("يومي", "Daily"),
    "monthly": ("شهري", "Monthly"),
    "whole": ("البريد كله", "Whole post"),
    "office": ("مكتب البريد", "Post office"),
    "range": ("المدة", "Period"),
    "totals": ("مجموع المدة", "Totals for the period"),
    "figure": ("البند", "Figure"),
    "value": ("القيمة", "Value"),
    "none": ("لا أرقام.", "No figures."),
}


def safe_cell(value: object) -> object:
    """A cell a spreadsheet shows as text: one that would start a formula gets a leading
    apostrophe. Numbers stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _scope(run: ReportRun, locale: str) -> str:
    i = 0 if locale == "ar" else 1
    if run.office_id is None:
        return TEXT["whole"][i]
    office = db.get(PostOffice, run.office_id)
    if office is None:
        return str(run.office_id)
    # Brackets are not mirrored when an Arabic line is reordered for drawing.
    return f"{office.name(locale)} - {office.code}"


def shown(f: Figure, locale: str) -> str:
    if f.unit == "count":
        return f"{f.value:,}"
    return format_money(f.value, f.unit, locale)


def render(run: ReportRun) -> tuple[bytes, str]:
    """(file bytes, file name) of a run whose periods are all computed."""
    name = f"barid-report-{run.kind}-{run.first_day.isoformat()}-{run.last_day.isoformat()}"
    if run.format == "csv":
        return render_csv(run), f"{name}.csv"
    return render_pdf(run), f"{name}.pdf"


def render_csv(run: ReportRun) -> bytes:
    """One line per period and figure; UTF-8 with a BOM so spreadsheets read Arabic."""
    locale = run.language
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["period_first", "period_last", "scope", "figure", "label", "value",
                  "unit"])
    scope = _scope(run, locale)
    for period in (run.rows or {}).get("periods", []):
        for f in load_figures(period["figures"]):
            out.writerow([safe_cell(c) for c in (period["first"], period["last"], scope,
                                                  f.key, f.label(locale), f.value, f.unit)])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


W, H = A4
M = 16 * mm


class _Pdf:
    def __init__(self, run: ReportRun) -> None:
        register_fonts()
        self.run = run
        self.ar = run.language == "ar"
        self.i = 0 if self.ar else 1
        self.buf = io.BytesIO()
        self.c = Canvas(self.buf, pagesize=A4)
        self.c.setTitle(f"{TEXT['title'][1]} {run.first_day} {run.last_day}")
        self.page = 0
        self.header()

    def t(self, key: str) -> str:
        return TEXT[key][self.i]

    def header(self) -> None:
        c = self.c
        self.page += 1
        c.setFillColorRGB(0.05, 0.32, 0.2)
        c.rect(0, H - 26 * mm, W, 26 * mm, fill=1, stroke=0)
        c.setFillColorRGB(1, 1, 1)
        brand = "البريد العراقي - بريد" if self.ar else "Iraqi Post - Barid"
        title = f"{self.t('title')} - {self.t(self.run.kind)}"
        self.text(H - 12 * mm, brand, bold=True, size=15)
        self.text(H - 21 * mm, title, size=11)
        c.setFillColorRGB(0, 0, 0)
        self.y = H - 36 * mm
        draw_text(c, W / 2, 10 * mm, str(self.page), size=8, align="center")

    def text(self, y: float, text: str, *, bold: bool = False, size: float = 10) -> None:
        """A line at the reading side: right for Arabic, left for English."""
        font = FONT_BOLD if bold else FONT
        if self.ar:
            draw_text(self.c, W - M, y, text, font=font, size=size, align="right")
        else:
            draw_text(self.c, M, y, text, font=font, size=size, align="left")

    def need(self, h: float) -> None:
        if self.y - h < 20 * mm:
            self.c.showPage()
            self.header()

    def row(self, label: str, value: str, *, bold: bool = False) -> None:
        self.need(8 * mm)
        font = FONT_BOLD if bold else FONT
        label_x, value_x = (W - M, M) if self.ar else (M, W - M)
        draw_text(self.c, label_x, self.y, label, font=font, size=10,
                  align="right" if self.ar else "left")
        # Amounts keep their left-to-right order; they sit at the other edge.
        draw_text(self.c, value_x, self.y, value, font=font, size=10,
                  align="left" if self.ar else "right")
        self.c.setStrokeColorRGB(0.88, 0.88, 0.88)
        self.c.line(M, self.y - 2.5 * mm, W - M, self.y - 2.5 * mm)
        self.y -= 7 * mm

    def heading(self, text: str) -> None:
        self.need(20 * mm)
        self.y -= 3 * mm
        self.text(self.y, text, bold=True, size=12)
        self.y -= 8 * mm

    def figures(self, figures: list[Figure]) -> None:
        if not figures:
            self.row(self.t("none"), "")
        locale = "ar" if self.ar else "en"
        for f in figures:
            self.row(f.label(locale), shown(f, locale))

    def bytes(self) -> bytes:
        self.c.showPage()
        self.c.save()
        return self.buf.getvalue()


def render_pdf(run: ReportRun) -> bytes:
    """The range's totals first, then each period's figures."""
    doc = _Pdf(run)
    locale = run.language
    doc.row(doc.t("office"), _scope(run, locale), bold=True)
    doc.row(doc.t("range"), f"{run.first_day.isoformat()} – {run.last_day.isoformat()}")
    doc.heading(doc.t("totals"))
    doc.figures(totals(run))
    for period in (run.rows or {}).get("periods", []):
        label = period["first"] if period["first"] == period["last"] else \
            f"{period['first']} – {period['last']}"
        doc.heading(label)
        doc.figures(load_figures(period["figures"]))
    return doc.bytes()
