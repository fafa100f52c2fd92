"""Parcel documents as PDF bytes: address labels, CN22/CN23 declarations, duty receipts.

Labels fit 4x6 inch and A6 thermal printers: Code 128 of the S10 number with the number
written under it, a QR code of the parcel's signed reference (app.barcodes: a counter opens
the parcel, anyone else public tracking), and the addresses in Arabic
(shaped and right to left through app.pdf). Headings are bilingual, Arabic first, because
the same label is read by Iraqi carriers and, abroad, by foreign posts.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable
from datetime import datetime

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from reportlab.graphics.barcode import code128
from reportlab.lib.pagesizes import A4, A6, inch
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.auth.models import PostOffice
from app.barcodes import barcode_url
from app.database import db, savepoint, utcnow
from app.geo import governorate
from app.i18n import BAGHDAD
from app.money import format_money
from app.pdf import FONT, FONT_BOLD, draw_qr, draw_text, font_files, has_arabic, register_fonts
from tracking.models import CustomsCase, Parcel, ParcelLabel
from tracking.services.customs import compute

# The kinds of signed reference the QR codes on tracking's papers carry (tracking.barcodes
# opens them): a parcel's label and declaration, and a customs duty receipt.
PARCEL_BARCODE = "parcel"
DUTY_BARCODE = "duty"

SIZES = {"4x6": (4 * inch, 6 * inch), "a6": A6}
SERVICE_LETTERS = {"ems": "EMS", "parcel": "P", "registered": "R", "ecommerce": "E"}
SERVICE_NAMES = {"ems": "EMS", "parcel": "Parcel", "registered": "Registered",
                 "ecommerce": "E-commerce parcel"}
# Words drawn through bi() from the tables below; listed so the catalog extractor finds
# them (bi translates at drawing time, in both languages).
_DOCUMENT_WORDS = (
    _l("Parcel"), _l("Registered"), _l("E-commerce parcel"), _l("Description"), _l("Qty"),
    _l("Net weight (kg)"), _l("Value"), _l("HS tariff number"), _l("Origin"), _l("kg"),
    _l("HS"), _l("Importer's reference"), _l("Invoice"), _l("Licence"), _l("Certificate"),
    _l("Gift"), _l("Documents"), _l("Commercial sample"), _l("Returned goods"),
    _l("Sale of goods"), _l("Other"), _l("Duty"), _l("Inspection fee"), _l("Stamp fee"),
    _l("Paid in advance with the order"),
    _l("Total paid"),
    _l("I certify that the particulars given in this declaration are correct and that this "
       "item does not contain any dangerous article prohibited by postal regulations."),
)


def bi(text: str, **kw: object) -> tuple[str, str]:
    """An English source string and its Arabic translation, for bilingual documents.

    Without arguments the pair is remembered per app: translations do not change while
    a process runs, and switching locale costs more than drawing the words.
    """
    if not kw:
        known = current_app.extensions.setdefault("barid.document_words", {})
        pair = known.get(text)
        if pair is None:
            pair = known[text] = _bi(text)
        return pair
    return _bi(text, **kw)


def _bi(text: str, **kw: object) -> tuple[str, str]:
    with force_locale("ar"):
        ar = _(text, **kw)
    with force_locale("en"):
        en = _(text, **kw)
    return ar, en


def grouped(number: str) -> str:
    """EE123456785IQ -> "EE 123 456 785 IQ", the way the number is read aloud."""
    return f"{number[:2]} {number[2:5]} {number[5:8]} {number[8:11]} {number[11:]}"


def tracking_url(number: str) -> str:
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + f"/track/{number}"


def draw_code128(c: Canvas, value: str, x: float, y: float, width: float,
                 height: float) -> float:
    """Code 128 of `value` scaled to `width`, bottom-left at (x, y); returns its width."""
    probe = code128.Code128(value, barHeight=height, barWidth=1, quiet=False)
    bar_width = min(width / probe.width, 2.2)
    bc = code128.Code128(value, barHeight=height, barWidth=bar_width, quiet=False)
    bc.drawOn(c, x + (width - bc.width) / 2, y)
    return bc.width


def _address_lines(parcel: Parcel, side: str, locale: str = "ar") -> list[str]:
    g = getattr(parcel, f"{side}_governorate")
    gov = governorate(g) if g else None
    lines = [getattr(parcel, f"{side}_name")]
    place = " - ".join(p for p in [
        gov.name(locale) if gov else "", getattr(parcel, f"{side}_district")] if p)
    if place:
        lines.append(place)
    if getattr(parcel, f"{side}_landmark"):
        lines.append(getattr(parcel, f"{side}_landmark"))
    if getattr(parcel, f"{side}_address"):
        lines.append(getattr(parcel, f"{side}_address"))
    country = getattr(parcel, f"{side}_country")
    if country and country != "IQ":
        lines.append(country)
    return lines


def _heading(c: Canvas, x: float, y: float, w: float, text: str, size: float = 8) -> None:
    ar, en = bi(text)
    c.setFont(FONT, size)
    c.drawString(x, y, en)
    draw_text(c, x, y, ar, size=size, width=w, align="right")


def _office(office_id: int | None) -> PostOffice | None:
    return db.get(PostOffice, office_id) if office_id else None


def _local(dt: datetime | None) -> str:
    return dt.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M") if dt else ""


def draw_label(c: Canvas, parcel: Parcel, size: str = "4x6",
               offices: dict[int, PostOffice | None] | None = None) -> None:
    """Draw one label on the current page of `c`. `offices` remembers the offices read
    for a batch (the session keeps only the rows something refers to)."""
    register_fonts()
    pw, ph = SIZES[size]
    m = 12
    w = pw - 2 * m
    y = ph - m
    # Header: the post, the service letter in a box.
    c.setLineWidth(1.2)
    ar, en = bi("Iraqi Post")
    c.setFont(FONT_BOLD, 12)
    c.drawString(m, y - 14, en)
    draw_text(c, m, y - 14, ar, font=FONT_BOLD, size=13, width=w - 60, align="right")
    service = SERVICE_LETTERS.get(parcel.service, parcel.service[:1].upper())
    c.rect(pw - m - 50, y - 24, 50, 26)
    c.setFont(FONT_BOLD, 16 if len(service) > 1 else 20)
    c.drawCentredString(pw - m - 25, y - 18, service)
    y -= 30
    c.line(m, y, pw - m, y)

    # Sender (small) then recipient (large): the carrier reads "to" first.
    y -= 11
    _heading(c, m, y, w, "From")
    y -= 2
    for line in _address_lines(parcel, "sender")[:3]:
        y = draw_text(c, m, y - 9, line, size=8.5, width=w) + 9
    if parcel.sender_phone:
        y = draw_text(c, m, y - 9, parcel.sender_phone, size=8.5, width=w, align="right") + 9
    y -= 8
    c.line(m, y, pw - m, y)
    y -= 12
    _heading(c, m, y, w, "To")
    y -= 4
    for i, line in enumerate(_address_lines(parcel, "recipient")[:4]):
        font = FONT_BOLD if i == 0 else FONT
        y = draw_text(c, m, y - 14, line, font=font, size=13 if i == 0 else 11, width=w) + 12
    if parcel.recipient_phone:
        y = draw_text(c, m, y - 14, parcel.recipient_phone, font=FONT_BOLD, size=12,
                      width=w, align="right") + 12
    y -= 10
    c.line(m, y, pw - m, y)

    # Barcode with the number under it.
    bar_h = 58
    y -= bar_h + 8
    draw_code128(c, parcel.tracking_number, m + 8, y, w - 16, bar_h)
    c.setFont(FONT_BOLD, 14)
    c.drawCentredString(pw / 2, y - 15, grouped(parcel.tracking_number))
    y -= 24
    c.line(m, y, pw - m, y)

    # Details beside the QR code.
    qr = min(96, y - m - 4)
    # The QR carries the signed reference: a counter opens the parcel, anyone else the
    # public tracking page. The human-readable tracking address is printed beside it.
    draw_qr(c, barcode_url(PARCEL_BARCODE, parcel.tracking_number), m, m + 2, qr)
    offices = {} if offices is None else offices
    office_id = parcel.origin_office_id or 0
    if office_id not in offices:
        offices[office_id] = _office(office_id)
    office = offices[office_id]
    accepted = parcel.created_at
    details = [
        (bi("Weight"), f"{parcel.weight_grams / 1000:.2f} kg"),
        (bi("Service"), bi(SERVICE_NAMES.get(parcel.service, "Parcel"))[0]),
        (bi("Office"), office.name_ar if office else ""),
        (bi("Date"), _local(accepted)),
    ]
    if parcel.postage_amount:
        details.append((bi("Postage"), format_money(parcel.postage_amount,
                                                    parcel.postage_currency, "ar")))
    dx = m + qr + 8
    dw = pw - m - dx
    dy = y - 12
    for (label_ar, _label_en), value in details:
        draw_text(c, dx, dy, label_ar, size=8, width=dw, align="right")
        draw_text(c, dx, dy, value, size=8.5, align="left")
        dy -= 13
    c.setFont(FONT, 6.5)
    c.drawString(dx, m + 4, tracking_url(parcel.tracking_number)[:60])


def render_labels(parcels: Iterable[Parcel], size: str = "4x6") -> bytes:
    """Labels for `parcels`, one per page, as one PDF (batch printing at the counter)."""
    register_fonts()
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=SIZES[size], pageCompression=1)
    c.setTitle("Barid labels")
    count = 0
    offices: dict[int, PostOffice | None] = {}
    for parcel in parcels:
        draw_label(c, parcel, size, offices)
        c.showPage()
        count += 1
    if count == 0:
        c.showPage()
    c.save()
    return buf.getvalue()


def render_label(parcel: Parcel, size: str = "4x6") -> bytes:
    """One label drawn now, as PDF bytes (label_for serves the stored one)."""
    return render_labels([parcel], size)


# ---- the label kept after its first print ----------------------------------------------

# Bump when draw_label changes what it draws: every stored label is then drawn again on
# its next print. (Words, fonts, addresses and the site's address are in the fingerprint.)
LABEL_VERSION = 1
# The words draw_label translates; their translations go into the fingerprint, so a new
# catalog (a reworded heading) redraws the labels printed before it.
_LABEL_WORDS = ("Iraqi Post", "From", "To", "Weight", "Service", "Office", "Date", "Postage",
                *SERVICE_NAMES.values())


def _label_words() -> list[tuple[str, str]]:
    return [bi(w) for w in _LABEL_WORDS]  # remembered per app by bi


def label_fingerprint(parcel: Parcel, size: str = "4x6",
                      office: PostOffice | None = None) -> str:
    """A hash of everything the label of `parcel` shows at `size`: its printed fields,
    the office's name, the QR's signed address, the site's address, the words'
    translations, the font and LABEL_VERSION. Changes nothing."""
    sides = ("name", "phone", "country", "governorate", "district", "landmark", "address")
    office = office or _office(parcel.origin_office_id)
    body = [
        LABEL_VERSION, size, font_files(), _label_words(),
        current_app.config["PUBLIC_BASE_URL"],
        barcode_url(PARCEL_BARCODE, parcel.tracking_number),
        parcel.tracking_number, parcel.service,
        [getattr(parcel, f"sender_{f}") for f in sides],
        [getattr(parcel, f"recipient_{f}") for f in sides],
        parcel.weight_grams, parcel.postage_amount, parcel.postage_currency,
        office.name_ar if office else None, _local(parcel.created_at),
    ]
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode()).hexdigest()


def label_for(parcel: Parcel, size: str = "4x6") -> bytes:
    """The label of `parcel` as PDF bytes: the one stored at its first print while what
    it shows is unchanged, else drawn now and stored (parcel_labels). Flushes (in a
    savepoint: when another print stores the same label at the same moment, its row
    stands and these bytes are served). Raises KeyError for an unknown size."""
    if size not in SIZES:
        raise KeyError(size)
    # Held while the label is drawn: the session's identity map keeps only what is
    # referenced, and draw_label asks for the office again.
    office = _office(parcel.origin_office_id)
    fingerprint = label_fingerprint(parcel, size, office)
    stored = db.scalar(select(ParcelLabel).where(ParcelLabel.parcel_id == parcel.id,
                                                 ParcelLabel.size == size))
    if stored is not None and stored.fingerprint == fingerprint:
        return stored.pdf
    pdf = render_label(parcel, size)
    try:
        with savepoint():
            if stored is None:
                db.add(ParcelLabel(parcel_id=parcel.id, size=size, fingerprint=fingerprint,
                                   pdf=pdf))
            else:
                stored.fingerprint, stored.pdf, stored.rendered_at = fingerprint, pdf, utcnow()
            db.flush()
    except IntegrityError:
        pass  # another print of the same label stored it first: both drew the same page
    return pdf


# ---- customs declarations -------------------------------------------------------------

CATEGORIES = [("gift", "Gift"), ("documents", "Documents"),
              ("commercial_sample", "Commercial sample"), ("returned_goods", "Returned goods"),
              ("sale_of_goods", "Sale of goods"), ("other", "Other")]


def declaration_form(parcel: Parcel, case: CustomsCase | None = None) -> str:
    """CN22 up to the configured SDR limit, CN23 above it (the case's choice if assessed)."""
    if case is not None and case.assessed_at is not None:
        return case.form
    return compute(parcel).form


def _money_minor(amount: int, currency: str) -> str:
    return format_money(amount, currency, "en")


def _cell(c: Canvas, x: float, y: float, w: float, text: str, size: float = 7.5,
          bold: bool = False) -> None:
    font = FONT_BOLD if bold else FONT
    if has_arabic(text):
        draw_text(c, x + 2, y, text, font=font, size=size, width=w - 4, align="right")
    else:
        c.setFont(font, size)
        shown = text
        while shown and stringWidth(shown, font, size) > w - 4:
            shown = shown[:-1]
        c.drawString(x + 2, y, shown)


def draw_declaration(c: Canvas, parcel: Parcel, form: str) -> None:
    """Draw a CN22 or CN23 for `parcel` on the current page (A6 for CN22, A4 for CN23)."""
    register_fonts()
    pw, ph = c._pagesize
    m = 20 if form == "CN23" else 12
    w = pw - 2 * m
    y = ph - m
    title_ar, title_en = bi("Customs declaration")
    c.setFont(FONT_BOLD, 13 if form == "CN23" else 10)
    c.drawString(m, y - 14, f"{form}  {title_en}")
    draw_text(c, m, y - 14, title_ar, font=FONT_BOLD, size=13 if form == "CN23" else 10,
              width=w, align="right")
    y -= 22
    c.setFont(FONT, 8)
    c.drawString(m, y - 8, bi("Iraqi Post")[1] + " / " + "Designated operator")
    bar_h = 34 if form == "CN23" else 26
    bar_w = 190 if form == "CN23" else 150
    draw_code128(c, parcel.tracking_number, pw - m - bar_w, y - bar_h - 4, bar_w, bar_h)
    c.setFont(FONT_BOLD, 9)
    c.drawCentredString(pw - m - bar_w / 2, y - bar_h - 14, grouped(parcel.tracking_number))
    y -= bar_h + 34

    # Sender and addressee side by side on CN23, stacked on the small CN22.
    def party(x: float, top: float, width: float, side: str, heading: str) -> float:
        _heading(c, x, top, width, heading, size=7.5)
        yy = top - 2
        for line in _address_lines(parcel, side, "en"):
            yy = draw_text(c, x, yy - 10, line, size=8.5, width=width) + 10
        phone = getattr(parcel, f"{side}_phone")
        if phone:
            c.setFont(FONT, 8.5)
            yy -= 10
            c.drawString(x, yy, phone)
        return yy - 6

    if form == "CN23":
        half = (w - 10) / 2
        y1 = party(m, y, half, "sender", "From")
        y2 = party(m + half + 10, y, half, "recipient", "To")
        c.rect(m - 3, min(y1, y2) - 2, half + 6, y - min(y1, y2) + 12)
        c.rect(m + half + 7, min(y1, y2) - 2, half + 6, y - min(y1, y2) + 12)
        y = min(y1, y2) - 14
        refs = [("Importer's reference", parcel.importer_reference),
                ("Invoice", parcel.invoice_number), ("Licence", parcel.licence_number),
                ("Certificate", parcel.certificate_number)]
        c.setFont(FONT, 8)
        x = m
        for label, value in refs:
            c.drawString(x, y, f"{bi(label)[1]}: {value or '-'}")
            x += w / 4
        y -= 14
    else:
        y = party(m, y, w, "sender", "From")
        y = party(m, y - 4, w, "recipient", "To")

    # Category boxes.
    y -= 8
    c.setFont(FONT, 7.5)
    x = m
    step = w / 3
    for i, (key, label) in enumerate(CATEGORIES):
        cx = m + (i % 3) * step
        cy = y - (i // 3) * 12
        c.rect(cx, cy - 1, 7, 7)
        if parcel.customs_category == key:
            c.setFont(FONT_BOLD, 8)
            c.drawString(cx + 1.2, cy, "X")
            c.setFont(FONT, 7.5)
        ar, en = bi(label)
        c.drawString(cx + 10, cy, en)
    y -= 30

    # Articles.
    cols = [("Description", 0.34), ("Qty", 0.07), ("Net weight (kg)", 0.13),
            ("Value", 0.16), ("HS tariff number", 0.16), ("Origin", 0.14)]
    if form == "CN22":
        cols = [("Description", 0.40), ("Qty", 0.08), ("kg", 0.12), ("Value", 0.22),
                ("HS", 0.18)]
    xs = [m]
    for _n, frac in cols:
        xs.append(xs[-1] + frac * w)
    row_h = 16 if form == "CN23" else 13
    c.setLineWidth(0.6)
    table_top = y + 9
    c.line(m, table_top, pw - m, table_top)
    for (name, _f), x in zip(cols, xs, strict=False):
        _cell(c, x, y, xs[1] - xs[0], bi(name)[1], size=7, bold=True)
    y -= 4
    c.line(m, y, pw - m, y)
    total_weight = 0
    currencies = {a.value_currency for a in parcel.articles}
    for art in parcel.articles[: (14 if form == "CN23" else 4)]:
        y -= row_h - 4
        values = [art.description, str(art.quantity), f"{art.net_weight_grams / 1000:.3f}",
                  _money_minor(art.value_amount, art.value_currency), art.hs_code or "",
                  art.origin_country or ""]
        for i, value in enumerate(values[: len(cols)]):
            _cell(c, xs[i], y, xs[i + 1] - xs[i], value, size=8)
        y -= 4
        c.line(m, y, pw - m, y)
        total_weight += art.net_weight_grams
    for x in xs:
        c.line(x, y, x, table_top)
    y -= 14
    c.setFont(FONT_BOLD, 8.5)
    total = parcel.declared_total
    total_text = _money_minor(*total) if total else " + ".join(sorted(currencies))
    c.drawString(m, y, f"{bi('Total gross weight')[1]}: {parcel.weight_grams / 1000:.3f} kg"
                 f"    {bi('Total value')[1]}: {total_text}")
    y -= 12
    if form == "CN23" and parcel.postage_amount:
        c.setFont(FONT, 8)
        c.drawString(m, y, f"{bi('Postal charges')[1]}: "
                     f"{_money_minor(parcel.postage_amount, parcel.postage_currency)}")
        y -= 12
    y -= 6
    c.setFont(FONT, 7)
    cert = ("I certify that the particulars given in this declaration are correct and that "
            "this item does not contain any dangerous article prohibited by postal "
            "regulations.")
    y = draw_text(c, m, y, bi(cert)[1], size=7, width=w, align="left")
    y = draw_text(c, m, y, bi(cert)[0], size=7.5, width=w, align="right")
    y -= 8
    c.setFont(FONT, 8)
    c.drawString(m, y, f"{bi('Date')[1]}: {_local(parcel.created_at)}")
    c.drawString(m + w / 2, y, f"{bi('Signature')[1]}: ____________________")
    if form == "CN23":
        qr = 70
        draw_qr(c, barcode_url(PARCEL_BARCODE, parcel.tracking_number), pw - m - qr, m, qr)


def render_declaration(parcel: Parcel, form: str | None = None) -> bytes:
    """A CN22 (A6) or CN23 (A4) declaration for an international parcel, as PDF bytes."""
    form = form or declaration_form(parcel)
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4 if form == "CN23" else A6, pageCompression=1)
    c.setTitle(f"{form} {parcel.tracking_number}")
    draw_declaration(c, parcel, form)
    c.showPage()
    c.save()
    return buf.getvalue()


def render_duty_receipt(case: CustomsCase) -> bytes:
    """The recipient's receipt for customs duty and fees paid, as PDF bytes (A6)."""
    register_fonts()
    parcel = case.parcel
    buf = io.BytesIO()
    pw, ph = A6
    c = Canvas(buf, pagesize=A6, pageCompression=1)
    c.setTitle(f"Duty receipt {parcel.tracking_number}")
    m = 14
    w = pw - 2 * m
    y = ph - m
    ar, en = bi("Customs duty receipt")
    c.setFont(FONT_BOLD, 11)
    c.drawString(m, y - 12, en)
    y = draw_text(c, m, y - 28, ar, font=FONT_BOLD, size=12, width=w, align="right")
    c.setFont(FONT_BOLD, 11)
    c.drawString(m, y - 6, grouped(parcel.tracking_number))
    y -= 24
    rows = [("Duty", case.duty_iqd), ("Inspection fee", case.inspection_fee_iqd),
            ("Stamp fee", case.stamp_fee_iqd)]
    if case.prepaid_iqd:
        rows.append(("Paid in advance with the order", -case.prepaid_iqd))
    rows.append(("Total paid", case.total_due_iqd))
    for label, amount in rows:
        la, le = bi(label)
        c.setFont(FONT_BOLD if label == "Total paid" else FONT, 9)
        c.drawString(m, y, f"{le}")
        draw_text(c, m, y, la, size=9, width=w - 90, align="right")
        c.drawRightString(pw - m, y, format_money(amount, "IQD", "en"))
        y -= 15
    y -= 6
    c.setFont(FONT, 8)
    c.drawString(m, y, f"{case.form} · {bi('Declared value')[1]}: "
                 f"{format_money(case.declared_value_iqd, 'IQD', 'en')}")
    y -= 12
    c.drawString(m, y, f"{bi('Paid')[1]}: {_local(case.paid_at)}   #{case.payment_id or ''}")
    # Scanned at the delivery counter, it opens the parcel, duty paid, ready to hand over.
    qr = min(80, y - m - 8)
    draw_qr(c, barcode_url(DUTY_BARCODE, case.id), pw - m - qr, m, qr)
    c.showPage()
    c.save()
    return buf.getvalue()
