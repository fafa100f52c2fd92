"""Receipts, statements and the end-of-day drawer report as PDF, in Arabic and English.

Every label is printed in both languages (Arabic on the right, English on the left),
so one paper serves the clerk and the customer. Returns bytes.
"""

from __future__ import annotations

import io
from datetime import datetime

from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas

from app.barcodes import barcode_url
from app.i18n import BAGHDAD
from app.money import format_money
from app.pdf import FONT, FONT_BOLD, draw_qr, draw_text, register_fonts
from payments.providers import PROVIDERS, provider_for

W, H = A4
M = 18 * mm

# The kind of signed reference a payment receipt's QR code carries (payments.barcodes).
RECEIPT_BARCODE = "receipt"
# A post card's own QR code, shown on the holder's phone (payments.barcodes).
CARD_BARCODE = "card"

PURPOSES = {
    "card_topup": ("شحن بطاقة البريد", "Post card top-up"),
    "postage": ("أجور البريد", "Postage"),
    "customs_duty": ("الرسوم الكمركية", "Customs duty"),
    "shop_order": ("طلب من متجر", "Shop order"),
}
# How each payment method is printed, from its provider (shop's receipts use it too).
METHODS: dict[str, tuple[str, str]] = {name: provider.label
                                       for name, provider in PROVIDERS.items()}
STATUSES = {
    "created": ("أنشئ", "Created"), "pending": ("قيد الانتظار", "Pending"),
    "succeeded": ("مدفوع", "Paid"), "failed": ("فشل", "Failed"),
    "cancelled": ("ألغي", "Cancelled"), "refunded": ("مسترد بالكامل", "Refunded"),
    "partially_refunded": ("مسترد جزئياً", "Partly refunded"),
    "disputed": ("معترض عليه", "Disputed"),
}


def _when(value: datetime) -> str:
    return value.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M")


class Doc:
    """A page with a bilingual heading and label/value rows."""

    def __init__(self, title_ar: str, title_en: str) -> None:
        register_fonts()
        self.buf = io.BytesIO()
        self.c = Canvas(self.buf, pagesize=A4)
        self.c.setTitle(title_en)
        self.title = (title_ar, title_en)
        self._header()

    def _header(self) -> None:
        c = self.c
        c.setFillColorRGB(0.05, 0.32, 0.2)
        c.rect(0, H - 28 * mm, W, 28 * mm, fill=1, stroke=0)
        c.setFillColorRGB(1, 1, 1)
        draw_text(c, W - M, H - 13 * mm, "البريد العراقي - بريد", font=FONT_BOLD, size=16)
        draw_text(c, M, H - 13 * mm, "Iraqi Post - Barid", font=FONT_BOLD, size=14)
        draw_text(c, W - M, H - 22 * mm, self.title[0], size=12)
        draw_text(c, M, H - 22 * mm, self.title[1], size=11)
        c.setFillColorRGB(0, 0, 0)
        self.y = H - 40 * mm

    def row(self, ar: str, en: str, value: str, *, bold: bool = False) -> None:
        c = self.c
        if self.y < 30 * mm:
            self.new_page()
        draw_text(c, W - M, self.y, ar, size=10.5)
        draw_text(c, M, self.y, en, size=10)
        font = FONT_BOLD if bold else FONT
        draw_text(c, W / 2, self.y, value, font=font, size=11, align="center")
        c.setStrokeColorRGB(0.85, 0.85, 0.85)
        c.line(M, self.y - 3 * mm, W - M, self.y - 3 * mm)
        self.y -= 9 * mm

    def gap(self, h: float = 4 * mm) -> None:
        self.y -= h

    def heading(self, ar: str, en: str) -> None:
        if self.y < 40 * mm:
            self.new_page()
        self.gap()
        draw_text(self.c, W - M, self.y, ar, font=FONT_BOLD, size=12)
        draw_text(self.c, M, self.y, en, font=FONT_BOLD, size=11)
        self.y -= 8 * mm

    def table(self, headers: list[tuple[str, str]], rows: list[list[str]],
              widths: list[float]) -> None:
        """Columns laid out right to left (Arabic reading order), values kept LTR."""
        c = self.c
        xs, right = [], W - M
        for w in widths:
            xs.append((right - w, right))
            right -= w
        if self.y < 40 * mm:
            self.new_page()
        for (_x0, x1), (ar, en) in zip(xs, headers, strict=True):
            draw_text(c, x1 - 1 * mm, self.y, ar, font=FONT_BOLD, size=9)
            draw_text(c, x1 - 1 * mm, self.y - 4.5 * mm, en, size=8, align="right")
        self.y -= 9 * mm
        for r in rows:
            if self.y < 25 * mm:
                self.new_page()
            for (_x0, x1), cell in zip(xs, r, strict=True):
                draw_text(c, x1 - 1 * mm, self.y, cell, size=9, align="right",
                          width=None)
            c.setStrokeColorRGB(0.9, 0.9, 0.9)
            c.line(M, self.y - 2 * mm, W - M, self.y - 2 * mm)
            self.y -= 6.5 * mm

    def signature(self) -> None:
        self.gap(10 * mm)
        c = self.c
        for x, ar, en in ((W - M - 60 * mm, "توقيع الموظف", "Clerk's signature"),
                          (M, "توقيع المشرف", "Supervisor's signature")):
            c.line(x, self.y, x + 60 * mm, self.y)
            draw_text(c, x + 60 * mm, self.y - 5 * mm, ar, size=9)
            draw_text(c, x, self.y - 10 * mm, en, size=9)
        self.y -= 14 * mm

    def new_page(self) -> None:
        self.c.showPage()
        self._header()

    def footer(self, text: str) -> None:
        draw_text(self.c, W / 2, 12 * mm, text, size=8, align="center")

    def bytes(self) -> bytes:
        self.c.showPage()
        self.c.save()
        return self.buf.getvalue()


def payment_receipt(payment, *, office_name: str | None = None,
                    clerk_name: str | None = None, card_balance: int | None = None) -> bytes:
    """The receipt handed over (or downloaded) for one payment and its refunds."""
    ar, en = PURPOSES.get(payment.purpose, (payment.purpose, payment.purpose))
    doc = Doc("إيصال دفع", "Payment receipt")
    doc.row("رقم الإيصال", "Receipt no.", f"P-{payment.id:08d}", bold=True)
    doc.row("التاريخ", "Date", _when(payment.created_at))
    doc.row("الغرض", "For", f"{ar} / {en}" if ar != en else en)
    doc.row("المرجع", "Reference", f"{payment.reference_kind} {payment.reference_id}")
    mar, men = provider_for(payment).label
    doc.row("طريقة الدفع", "Paid by", f"{mar} / {men}")
    if payment.card is not None:
        doc.row("البطاقة", "Card", payment.card.masked.replace("•", "*"))
    doc.row("المبلغ", "Amount", format_money(payment.amount, payment.currency, "en"), bold=True)
    if payment.charged_currency and payment.charged_currency != payment.currency:
        doc.row("المبلغ المستوفى", "Charged", format_money(payment.charged_amount,
                                                              payment.charged_currency, "en"))
        doc.row("سعر الصرف", "Exchange rate",
                f"1 {payment.charged_currency} = {payment.exchange_rate:,.2f} {payment.currency}")
    sar, sen = STATUSES.get(payment.status, (payment.status, payment.status))
    doc.row("الحالة", "Status", f"{sar} / {sen}")
    if office_name:
        doc.row("مكتب البريد", "Post office", office_name)
    if clerk_name:
        doc.row("الموظف", "Clerk", clerk_name)
    if card_balance is not None and payment.card is not None:
        doc.row("رصيد البطاقة بعد العملية", "Card balance after",
                format_money(card_balance, payment.currency, "en"))
    if payment.refunds:
        doc.heading("المبالغ المستردة", "Refunds")
        doc.table([("التاريخ", "Date"), ("المبلغ", "Amount"), ("السبب", "Reason")],
                  [[_when(r.created_at), format_money(r.amount, r.currency, "en"),
                    (r.reason or "")[:40]] for r in payment.refunds],
                  [45 * mm, 45 * mm, W - 2 * M - 90 * mm])
    # Scanned at any counter, the signed reference opens this payment (refund, receipt).
    size = 32 * mm
    if doc.y - 6 * mm < 20 * mm + size:
        doc.new_page()
    draw_qr(doc.c, barcode_url(RECEIPT_BARCODE, payment.id), W - M - size, 20 * mm, size)
    doc.footer("شكراً لتعاملكم مع البريد العراقي - Thank you for using Iraqi Post")
    return doc.bytes()


def card_statement(card, opening: int, lines, *, balance: int) -> bytes:
    """A post card's statement: opening balance, each movement, closing balance."""
    doc = Doc("كشف حساب بطاقة البريد", "Post card statement")
    doc.row("حامل البطاقة", "Holder", card.holder_name)
    doc.row("البطاقة", "Card", card.grouped)
    doc.row("الرصيد الافتتاحي", "Opening balance", format_money(opening, card.currency, "en"))
    kinds = {"cash_in": ("شحن نقدي", "Cash top-up"), "card_payment": ("دفع", "Payment"),
             "bank_topup": ("شحن ببطاقة مصرفية", "Bank card top-up"),
             "refund": ("استرداد", "Refund"), "hold": ("حجز", "Hold"),
             "capture": ("تحصيل", "Capture"), "void": ("إلغاء حجز", "Hold released")}
    rows = []
    for entry, amount, running in lines:
        ar, en = kinds.get(entry.kind, (entry.kind, entry.kind))
        rows.append([_when(entry.created_at), f"{ar} {en}",
                     ("+" if amount > 0 else "") + format_money(amount, card.currency, "en"),
                     format_money(running, card.currency, "en")])
    doc.heading("الحركات", "Movements")
    doc.table([("التاريخ", "Date"), ("العملية", "What"), ("المبلغ", "Amount"),
               ("الرصيد", "Balance")], rows, [38 * mm, 60 * mm, 38 * mm, W - 2 * M - 136 * mm])
    doc.gap()
    doc.row("الرصيد الحالي", "Balance now", format_money(balance, card.currency, "en"),
            bold=True)
    return doc.bytes()


def _kind_label(labels: dict, kind: str) -> str:
    ar, _en = labels.get(kind) or PURPOSES.get(kind, (kind, kind))
    return ar


def drawer_report(report, *, office_name: str, printed_by: str, closed=None,
                  closed_by: str | None = None) -> bytes:
    """The end-of-day cash drawer report to print and sign; with the closed DrawerDay,
    the counted cash, the difference and who closed the day."""
    doc = Doc("تقرير الصندوق اليومي", "End-of-day cash drawer report")
    doc.row("مكتب البريد", "Post office", office_name)
    doc.row("اليوم", "Day", report.day.isoformat())
    doc.row("الرصيد الافتتاحي", "Opening balance", format_money(report.opening, "IQD", "en"))
    labels = {"topup": ("شحن بطاقات", "Card top-ups"), "refund": ("مبالغ مستردة نقداً",
                                                                    "Refunds paid in cash")}
    for kind, total in sorted(report.totals.items()):
        ar, en = labels.get(kind) or PURPOSES.get(kind, (kind, kind))
        doc.row(ar, en, format_money(total, "IQD", "en"))
    doc.row("النقد المتوقع", "Expected cash", format_money(report.closing, "IQD", "en"),
            bold=True)
    if closed is not None:
        doc.row("النقد المعدود", "Cash counted", format_money(closed.counted, "IQD", "en"),
                bold=True)
        doc.row("الفرق", "Difference", format_money(closed.difference, "IQD", "en"), bold=True)
        doc.row("أغلق اليوم", "Day closed by", f"{closed_by or '-'}  {_when(closed.closed_at)}")
        doc.row("التوقيع الرقمي", "Digital signature", closed.signature[:32])
    doc.heading("الحركات", "Movements")
    doc.table([("الوقت", "Time"), ("العملية", "What"), ("الموظف", "Clerk"), ("المبلغ", "Amount")],
              [[_when(li["entry"].created_at)[11:], _kind_label(labels, li["kind"]), li["clerk"],
                format_money(li["amount"], "IQD", "en")] for li in report.lines],
              [25 * mm, 45 * mm, 55 * mm, W - 2 * M - 125 * mm])
    doc.row("طبع بواسطة", "Printed by", printed_by)
    doc.signature()
    return doc.bytes()
