"""Payments' figures on the supervisor's dashboard (registered with app.dashboard):
payments by method, post-card top-ups and spending per day, and the cash each drawer
should hold. Each links to the list behind it."""

from __future__ import annotations

from flask import url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.auth.models import PostOffice
from app.dashboard import Bar, Figure, Scope, day_label, per_day
from app.database import db
from app.i18n import current_locale, format_number
from app.money import format_money
from payments import figures
from payments.models import TOPUP, PaymentMethod

METHODS = {PaymentMethod.CASH: _l("Cash"), PaymentMethod.POST_CARD: _l("Post card"),
           PaymentMethod.STRIPE: _l("Bank card")}


def payment_figures(scope: Scope) -> list[Figure]:
    """The payments figures for `scope` (three aggregate queries). Reads only."""
    office = scope.link_args()
    locale = current_locale()

    def money(amount: int, currency: str = "IQD") -> str:
        return format_money(amount, currency, locale)

    out: list[Figure] = []
    methods = figures.by_method(scope)
    out.append(Figure(
        key="payments-method", kind="bars", order=50, title=_("Payments by method"),
        description=_("Money received in the last %(n)s days, by how it was paid.",
                      n=scope.days),
        bars=[Bar(f"{METHODS.get(m, m)}" + (f" ({cur})" if cur != "IQD" else "")
                  + " · " + _("%(n)s payments", n=format_number(n)),
                  total, money(total, cur),
                  url_for("payments_bo.payments", method=m, **office))
              for m, cur, n, total in methods],
        headline=[(_("Payments"), format_number(sum(r[2] for r in methods)))],
        url=url_for("payments_bo.payments", **office), empty_text=_("No payments.")))

    card = figures.card_money_per_day(scope)
    topups = per_day(scope, card[figures.TOPUPS], _("Top-ups"), money,
                     lambda d: url_for("payments_bo.payments", purpose=TOPUP,
                                       date=d.isoformat(), **office))
    spending = per_day(scope, card[figures.CARD_SPENDING], _("Spending"), money,
                       lambda d: url_for("payments_bo.payments", method="post_card",
                                         date=d.isoformat(), **office))
    out.append(Figure(
        key="card-money", kind="days", order=60, title=_("Post card top-ups and spending"),
        description=_("Topped up: %(t)s, spent: %(s)s in the last %(n)s days.",
                      t=money(sum(topups.values)), s=money(sum(spending.values)),
                      n=scope.days),
        days=scope.day_list, day_labels=[day_label(d) for d in scope.day_list],
        series=[topups, spending],
        headline=[(_("Topped up today"), topups.shown[-1]),
                  (_("Spent today"), spending.shown[-1])],
        url=url_for("payments_bo.payments", purpose=TOPUP, **office)))

    drawers = figures.drawers(scope)
    ids = sorted({o for o, _c, _b in drawers})
    names = {o.id: o for o in db.scalars(select(PostOffice).where(PostOffice.id.in_(ids)))
             } if ids else {}
    out.append(Figure(
        key="drawers", kind="bars", order=70, title=_("Cash expected per drawer"),
        description=_("What each office's cash drawer should hold now, from the ledger."),
        bars=[Bar((f"{names[o].name(locale)} ({names[o].code})" if o in names else str(o))
                  + (f" · {cur}" if cur != "IQD" else ""), max(balance, 0),
                  money(balance, cur), url_for("payments_bo.drawer", office=o))
              for o, cur, balance in drawers],
        headline=[(_("Cash in the drawers"), money(sum(b for _o, c, b in drawers
                                                       if c == "IQD")))],
        url=url_for("payments_bo.drawer", **office), empty_text=_("No cash has moved yet.")))
    return out
