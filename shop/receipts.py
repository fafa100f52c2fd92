"""The order receipt as a PDF, in Arabic and English on one page, with a QR code to the
order. Returns bytes (ReportLab; Arabic shaped by app.pdf)."""

from __future__ import annotations

from datetime import timedelta

from reportlab.lib.units import mm

from app.i18n import BAGHDAD
from app.money import format_money
from app.pdf import draw_qr, draw_text
from payments.receipts import METHODS, Doc, M, W
from shop.models import Order

STATUSES = {
    "pending_payment": ("بانتظار الدفع", "Awaiting payment"),
    "paid": ("مدفوع", "Paid"),
    "processing": ("قيد التجهيز", "Being prepared"),
    "shipped": ("مع البريد", "With the post"),
    "delivered": ("تم التسليم", "Delivered"),
    "cancelled": ("ملغى", "Cancelled"),
    "expired": ("انتهت مهلة الدفع", "Expired unpaid"),
    "refunded": ("مسترد", "Refunded"),
    "partially_refunded": ("مسترد جزئياً", "Partly refunded"),
}
AMOUNTS = (
    ("items_total", "ثمن المنتجات", "Items"),
    ("delivery_fee", "التوصيل داخل العراق", "Delivery in Iraq"),
    ("shipping_fee", "الشحن الدولي", "International shipping"),
    ("duty_estimate", "الرسوم الكمركية التقديرية", "Estimated customs duty"),
    ("customs_fees", "رسوم الكمارك (الفحص والطوابع)", "Customs fees (inspection and stamp)"),
    ("handling_fee", "أجور التخليص", "Customs handling"),
    ("service_fee", "أجور خدمة اشترِ لي", "Buy-for-me service"),
)


def _iqd(amount: int) -> str:
    return format_money(amount, "IQD", "en")


def order_receipt(order: Order, link: str) -> bytes:
    """The receipt of one order: number, date, status, delivery, payment, each line, each
    fee and the total, and a QR code of `link` (the order's page)."""
    doc = Doc("إيصال طلب", "Order receipt")
    doc.row("رقم الطلب", "Order no.", order.number, bold=True)
    doc.row("التاريخ", "Date", order.placed_at.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M"))
    sar, sen = STATUSES.get(order.status, (order.status, order.status))
    doc.row("الحالة", "Status", f"{sar} / {sen}")
    if order.delivery_method == "pickup" and order.pickup_office is not None:
        office = order.pickup_office
        doc.row("الاستلام من", "Collect at", f"{office.name_ar} / {office.code}")
    else:
        place = order.governorate_name("ar")
        doc.row("التوصيل إلى", "Deliver to",
                f"{place} - {order.district} - {order.landmark}")
    doc.row("المستلم", "Recipient", order.recipient_name)
    # A phone number on its own line keeps its "+" where it belongs.
    doc.row("الهاتف", "Phone", order.phone)
    mar, men = METHODS.get(order.payment_method, (order.payment_method, order.payment_method))
    doc.row("طريقة الدفع", "Paid by", f"{mar} / {men}")

    doc.heading("المنتجات", "Items")
    rows = []
    for line in order.lines:
        title = line.title_ar if line.title_ar == line.title_en else \
            f"{line.title_ar} / {line.title_en}"
        if line.options:
            title = f"{title} ({line.options})"
        price = _iqd(line.unit_price_iqd)
        if line.currency != "IQD":
            price = f"{price}  ({format_money(line.unit_price, line.currency, 'en')})"
        rows.append([title[:60], str(line.quantity), price, _iqd(line.line_total_iqd)])
    doc.table([("المنتج", "Item"), ("العدد", "Qty"), ("السعر", "Unit price"),
               ("المجموع", "Total")], rows, [82 * mm, 16 * mm, 48 * mm, 28 * mm])

    doc.heading("المبالغ", "Amounts")
    for field, ar, en in AMOUNTS:
        amount = getattr(order, field)
        if amount or field in ("items_total", "delivery_fee"):
            doc.row(ar, en, _iqd(amount))
    doc.row("المجموع الكلي", "Total", _iqd(order.total), bold=True)
    if order.refunded_amount:
        doc.row("المبلغ المسترد", "Refunded", _iqd(order.refunded_amount))
    for currency, rate in sorted((order.rates or {}).items()):
        doc.row("سعر الصرف", "Exchange rate", f"1 {currency} = {rate['rate']} IQD")

    size = 32 * mm
    if doc.y - size < 22 * mm:
        doc.new_page()
    draw_qr(doc.c, link, M, doc.y - size - 2 * mm, size)
    draw_text(doc.c, W - M, doc.y - 8 * mm, "امسح الرمز لمتابعة طلبك", size=10)
    draw_text(doc.c, W - M, doc.y - 14 * mm, "Scan the code to follow your order", size=9,
              align="right")
    doc.footer("Barid - Iraqi Post · " + link)
    return doc.bytes()


def merchant_statement(merchant, st) -> bytes:
    """What the post owes a merchant (shop.services.settlement.Statement) as a PDF:
    opening balance, each sale, commission, refund and payout with the running
    balance, and the balance now; in Arabic and English."""
    from shop.services.settlement import KIND_LABELS

    doc = Doc("كشف حساب المتجر", "Shop statement")
    doc.row("المتجر", "Shop", merchant.name_ar)
    doc.row("", "", merchant.name_en)
    if st.since is None and st.until is None:
        doc.row("الفترة", "Period", "كل الحركات / All movements")
    else:
        # `until` is the start of the day after the last one shown.
        last = st.until - timedelta(days=1) if st.until else None
        doc.row("الفترة", "Period", " - ".join(
            d.astimezone(BAGHDAD).strftime("%Y-%m-%d") if d else "…"
            for d in (st.since, last)))
    doc.row("الرصيد الافتتاحي", "Opening balance", format_money(st.opening, st.currency, "en"))
    rows = []
    for r in st.rows:
        ar, en = KIND_LABELS.get(r.kind, (r.kind, r.kind))
        ref = r.order_number or r.reference or ""
        rows.append([r.when.astimezone(BAGHDAD).strftime("%Y-%m-%d %H:%M"), f"{ar} {en}", ref,
                     ("+" if r.amount > 0 else "") + format_money(r.amount, st.currency, "en"),
                     format_money(r.balance, st.currency, "en")])
    doc.heading("الحركات", "Movements")
    doc.table([("التاريخ", "Date"), ("العملية", "What"), ("المرجع", "Reference"),
               ("المبلغ", "Amount"), ("الرصيد", "Balance")], rows,
              [32 * mm, 50 * mm, 30 * mm, 30 * mm, W - 2 * M - 142 * mm])
    doc.gap()
    doc.row("المستحق لك الآن", "The post owes you", format_money(st.closing, st.currency, "en"),
            bold=True)
    doc.footer("البريد العراقي - بريد · Iraqi Post - Barid")
    return doc.bytes()
