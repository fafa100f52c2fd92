"""The merchant portal's money page (/merchant/money): what the post owes the shop, as a
statement with a running balance read from the ledger's payable account (sales,
commission, refunds and payouts), and the same statement as PDF and CSV.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from flask import Response, render_template, request

from app.auth.decorators import role_required
from app.auth.models import Role
from app.i18n import BAGHDAD
from shop.models import HOME_CURRENCY
from shop.portal import _merchant, bp
from shop.receipts import merchant_statement
from shop.services import settlement


def _day(name: str) -> date | None:
    raw = (request.args.get(name) or "").strip()
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _period() -> tuple[datetime | None, datetime | None, date | None, date | None]:
    """From the start of `from` to the end of `to` (Baghdad days), either open."""
    first, last = _day("from"), _day("to")
    since = datetime.combine(first, time(), BAGHDAD) if first else None
    until = datetime.combine(last + timedelta(days=1), time(), BAGHDAD) if last else None
    return since, until, first, last


def _statement() -> tuple[settlement.Statement, date | None, date | None]:
    merchant = _merchant()
    since, until, first, last = _period()
    return (settlement.statement(merchant.id, since=since, until=until,
                                 currency=HOME_CURRENCY), first, last)


@bp.get("/money")
@role_required(Role.MERCHANT)
def money() -> str:
    merchant = _merchant()
    st, first, last = _statement()
    return render_template("shop/portal/money.html", merchant=merchant, st=st,
                           first=first, last=last, kinds=settlement.KIND_LABELS,
                           query=request.query_string.decode())


@bp.get("/money/statement.pdf")
@role_required(Role.MERCHANT)
def money_pdf() -> Response:
    merchant = _merchant()
    st, _first, _last = _statement()
    return Response(merchant_statement(merchant, st), mimetype="application/pdf", headers={
        "Content-Disposition": f'inline; filename="statement-{merchant.slug}.pdf"',
        "Cache-Control": "no-store"})


@bp.get("/money/statement.csv")
@role_required(Role.MERCHANT)
def money_csv() -> Response:
    merchant = _merchant()
    st, _first, _last = _statement()
    body = settlement.statement_csv(st, shop_name=merchant.name_en)
    return Response(body.encode("utf-8"), mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="statement-{merchant.slug}.csv"',
        "Cache-Control": "no-store"})
