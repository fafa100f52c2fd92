"""Tracking's figures on the supervisor's dashboard (registered with app.dashboard):
parcels accepted and delivered per day, parcels by status, the customs backlog and how
long it has waited, and delayed parcels by office. Each links to the list behind it."""

from __future__ import annotations

from collections.abc import Iterable

from flask import url_for
from flask_babel import gettext as _
from sqlalchemy import select

from app.auth.models import PostOffice
from app.dashboard import Bar, Figure, Scope, day_label, per_day
from app.database import db
from app.i18n import current_locale, format_number
from tracking.services import figures
from tracking.services.lookup import status_text

# Statuses in the order of a parcel's journey (the chart reads like the network).
STATUS_ORDER = ("pending", "picked_up", "in_transit", "on_hold", "out_for_delivery",
                "ready_for_pickup", "delivery_failed", "delivery_delayed", "delivered",
                "return_to_sender", "cancelled")


def _offices(ids: Iterable[int | None]) -> dict[int, PostOffice]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return {o.id: o for o in db.scalars(select(PostOffice).where(PostOffice.id.in_(wanted)))}


def office_label(office: PostOffice | None, locale: str) -> str:
    return f"{office.name(locale)} ({office.code})" if office else _("Office not known")


def parcel_figures(scope: Scope) -> list[Figure]:
    """The tracking figures for `scope` (four aggregate queries). Reads only."""
    office = scope.link_args()
    locale = current_locale()
    out: list[Figure] = []

    flows = figures.accepted_and_delivered(scope)
    accepted = per_day(scope, flows[figures.ACCEPTED], _("Accepted parcels"), format_number,
                       lambda d: url_for("tracking_bo.parcels", accepted=d.isoformat(),
                                         **office))
    delivered = per_day(scope, flows[figures.DELIVERED], _("Delivered parcels"), format_number,
                        lambda d: url_for("tracking_bo.parcels", delivered=d.isoformat(),
                                          **office))
    out.append(Figure(
        key="parcel-flow", kind="days", order=10,
        title=_("Parcels accepted and delivered per day"),
        description=_("Accepted: %(a)s, delivered: %(d)s in the last %(n)s days.",
                      a=format_number(sum(accepted.values)),
                      d=format_number(sum(delivered.values)), n=scope.days),
        days=scope.day_list, day_labels=[day_label(d) for d in scope.day_list],
        series=[accepted, delivered],
        headline=[(_("Accepted today"), accepted.shown[-1]),
                  (_("Delivered today"), delivered.shown[-1])],
        url=url_for("tracking_bo.parcels", accepted=scope.today.isoformat(), **office)))

    statuses = figures.by_status(scope)
    ordered = [s for s in STATUS_ORDER if s in statuses] + sorted(
        s for s in statuses if s not in STATUS_ORDER)
    out.append(Figure(
        key="parcel-status", kind="bars", order=20, title=_("Parcels by status"),
        description=_("Open parcels, and those closed in the last %(n)s days, by status.",
                      n=scope.days),
        bars=[Bar(status_text(s), statuses[s], format_number(statuses[s]),
                  url_for("tracking_bo.parcels", status=s, **office)) for s in ordered],
        headline=[(_("Parcels"), format_number(sum(statuses.values())))],
        url=url_for("tracking_bo.parcels", **office), empty_text=_("No parcels.")))

    backlog = figures.customs_backlog(scope)
    queue = url_for("customs_bo.queue", **office)
    ages = [_("Under a day"), _("1 to 3 days"), _("3 to 7 days"), _("Over a week")]
    average = (_("%(n)s days", n=format_number(backlog.average_hours / 24, 1))
               if backlog.average_hours is not None else "—")
    out.append(Figure(
        key="customs-backlog", kind="bars", order=30,
        title=_("Customs backlog and time held"),
        description=_("%(n)s parcels wait for a customs decision; on average for %(t)s.",
                      n=format_number(backlog.total), t=average),
        bars=[Bar(label, n, format_number(n), queue) for label, n in zip(ages, backlog.by_age,
                                                                          strict=True)],
        headline=[(_("Held by customs"), format_number(backlog.total)),
                  (_("Average time held"), average)],
        url=queue, empty_text=_("No parcel is waiting for a decision.")))

    stale = figures.stale_by_office(scope)
    names = _offices(stale)
    rows = sorted(stale.items(), key=lambda kv: -kv[1])
    out.append(Figure(
        key="stale-parcels", kind="bars", order=40, title=_("Delayed parcels by office"),
        description=_("Open parcels with no event for longer than their status allows, "
                      "by the office where they went silent."),
        bars=[Bar(office_label(names.get(o) if o else None, locale), n, format_number(n),
                  url_for("tracking_bo.delayed", **({"office": o} if o else {})))
              for o, n in rows],
        headline=[(_("Delayed parcels"), format_number(sum(stale.values())))],
        url=url_for("tracking_bo.delayed", **office), empty_text=_("No delayed parcels.")))
    return out
