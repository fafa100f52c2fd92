"""Customs for inbound parcels: tariff, assessment on arrival, the officer's decisions, duty.

Assessment runs as a job when an inbound parcel arrives at the office of exchange (EMD).
Clear cases are released (EDC) with their duty due; the rest are held (EME) for an
officer, who may revalue or reclassify articles, release, or refuse. Duty is paid through
payments (an opaque reference "customs_duty", case id); the parcel is not handed over
until it is.

Every change of a case's state goes through tracking.services.customs_state, which
records it and publishes `customs.<state>`. These services flush; the view, job or
command that calls them owns the unit of work.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from app.audit import record_audit
from app.database import db, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.events import publish
from app.money import EXPONENT, convert
from payments import services as pay
from payments.errors import NoExchangeRate
from payments.models import PaymentStatus
from payments.payables import Payable
from payments.rates import rate_at
from tracking.models import (
    CustomsCase,
    CustomsState,
    Parcel,
    ParcelArticle,
    ParcelEvent,
    TariffLine,
)
from tracking.services.customs_state import apply_transition, case_payload
from tracking.services.events import EventReport, ingest_for_parcel
from tracking.services.figures import whereabouts
from tracking.services.parcels import get_parcel

PROHIBITED_CSV = Path(__file__).resolve().parent.parent / "data" / "prohibited-goods.csv"
SAMPLE_TARIFF_CSV = PROHIBITED_CSV.with_name("sample-tariff.csv")
TARIFF_COLUMNS = ("hs_prefix", "rate_percent", "description_en", "description_ar")
DUTY_REFERENCE_KIND = "customs_duty"
DUTY_PURPOSE = "customs_duty"

HOLD_REASONS: dict[str, Any] = {
    "missing_declaration": _l("Contents not declared"),
    "missing_hs_code": _l("An article has no HS tariff number"),
    "missing_value": _l("An article has no value"),
    "unknown_currency": _l("Declared in a currency without an exchange rate"),
    "no_tariff": _l("No tariff line for an article's HS number"),
    "prohibited": _l("Prohibited goods"),
    "restricted": _l("Restricted goods: licence needed"),
    "high_value": _l("High declared value: officer review"),
}


@dataclass(frozen=True)
class GoodsRule:
    hs_prefix: str
    keyword_en: str
    keyword_ar: str
    kind: str  # prohibited, restricted
    reason_en: str
    reason_ar: str


@lru_cache(maxsize=1)
def goods_rules() -> tuple[GoodsRule, ...]:
    with PROHIBITED_CSV.open(encoding="utf-8", newline="") as fh:
        return tuple(GoodsRule(**{k: (v or "").strip() for k, v in row.items()})
                     for row in csv.DictReader(fh))


def goods_rule_for(article: ParcelArticle) -> GoodsRule | None:
    """The prohibited/restricted rule an article falls under, by HS prefix or keyword."""
    text = (article.description or "").lower()
    for rule in goods_rules():
        if rule.hs_prefix and (article.hs_code or "").startswith(rule.hs_prefix):
            return rule
        if rule.keyword_en and rule.keyword_en in text:
            return rule
        if rule.keyword_ar and rule.keyword_ar in text:
            return rule
    return None


def tariff_line_for(hs_code: str | None, lines: list[TariffLine] | None = None
                    ) -> TariffLine | None:
    """The tariff line with the longest prefix of `hs_code`, or None."""
    if not hs_code:
        return None
    prefixes = [hs_code[:n] for n in range(len(hs_code), 0, -1)]
    if lines is None:
        lines = list(db.scalars(select(TariffLine).where(TariffLine.hs_prefix.in_(prefixes))))
    by_prefix = {t.hs_prefix: t for t in lines}
    return next((by_prefix[p] for p in prefixes if p in by_prefix), None)


def to_iqd(amount: int, currency: str) -> int | None:
    """`amount` of `currency` in dinars at the administrators' rate in force now
    (payments.rates, the table bank-card payments use); None when it has none."""
    if currency == "IQD":
        return amount
    if currency not in EXPONENT:
        return None
    try:
        row = rate_at(currency, "IQD")
    except NoExchangeRate:
        return None
    return convert(amount, currency, "IQD", row.rate)


@dataclass
class Assessment:
    form: str
    declared_value_iqd: int
    duty_iqd: int
    inspection_fee_iqd: int
    stamp_fee_iqd: int
    lines: list[dict[str, Any]]
    hold_code: str | None = None
    hold_detail: str = ""
    sdr_rate: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def total_due_iqd(self) -> int:
        return self.duty_iqd + self.inspection_fee_iqd + self.stamp_fee_iqd


def compute(parcel: Parcel) -> Assessment:
    """Assess a parcel's declaration: form, value in IQD, duty, fees and any hold reason.

    Reads the tariff table; changes nothing.
    """
    sdr_rate = Decimal(str(current_app.config["CUSTOMS_SDR_RATE_IQD"]))
    lines: list[dict[str, Any]] = []
    hold: tuple[str, str] | None = None

    def hold_for(code: str, detail: str = "") -> None:
        nonlocal hold
        if hold is None:
            hold = (code, detail)

    if not parcel.articles:
        hold_for("missing_declaration")
    total_iqd = 0
    duty = Decimal(0)
    for art in parcel.articles:
        line: dict[str, Any] = {"article_id": art.id, "description": art.description,
                                "hs_code": art.hs_code, "value_amount": art.value_amount,
                                "value_currency": art.value_currency, "rate_bp": None,
                                "value_iqd": None, "duty_iqd": 0}
        lines.append(line)
        rule = goods_rule_for(art)
        if rule is not None:
            hold_for(rule.kind, f"{art.description}: {rule.reason_en}")
        if not art.hs_code:
            hold_for("missing_hs_code", art.description)
        if art.value_amount <= 0:
            hold_for("missing_value", art.description)
            continue
        value_iqd = to_iqd(art.value_amount, art.value_currency)
        if value_iqd is None:
            hold_for("unknown_currency", art.value_currency)
            continue
        line["value_iqd"] = value_iqd
        total_iqd += value_iqd
        tariff = tariff_line_for(art.hs_code)
        if tariff is None:
            if art.hs_code:
                hold_for("no_tariff", art.hs_code)
            continue
        line["rate_bp"] = tariff.rate_bp
        article_duty = (Decimal(value_iqd) * tariff.rate_bp / 10000).quantize(
            Decimal(1), rounding=ROUND_HALF_UP)
        line["duty_iqd"] = int(article_duty)
        duty += article_duty
    sdr_value = Decimal(total_iqd) / sdr_rate if sdr_rate else Decimal(0)
    cn22_limit = Decimal(current_app.config["CUSTOMS_CN22_LIMIT_SDR"])
    form = "CN22" if sdr_value <= cn22_limit else "CN23"
    if total_iqd > int(current_app.config["CUSTOMS_AUTO_RELEASE_LIMIT_IQD"]):
        hold_for("high_value")
    a = Assessment(
        form=form, declared_value_iqd=total_iqd, duty_iqd=int(duty),
        inspection_fee_iqd=int(current_app.config["CUSTOMS_INSPECTION_FEE_IQD"]),
        stamp_fee_iqd=int(current_app.config["CUSTOMS_STAMP_FEE_IQD"]), lines=lines,
        sdr_rate=str(sdr_rate),
    )
    if hold:
        a.hold_code, a.hold_detail = hold
    return a


def _store(case: CustomsCase, a: Assessment) -> None:
    case.form = a.form
    case.sdr_rate = a.sdr_rate
    case.declared_value_iqd = a.declared_value_iqd
    case.duty_iqd = a.duty_iqd
    case.inspection_fee_iqd = a.inspection_fee_iqd
    case.stamp_fee_iqd = a.stamp_fee_iqd
    # Duty and fees paid before arrival (a buy-for-me quote) are credited: only the
    # difference is due; what was paid beyond the assessment is owed back
    # (CustomsCase.prepaid_excess_iqd), which the payer's side refunds on release.
    parcel = case.parcel
    case.prepaid_iqd = parcel.customs_prepaid_duty_iqd + parcel.customs_prepaid_fees_iqd
    case.total_due_iqd = max(0, a.total_due_iqd - case.prepaid_iqd)
    case.lines = a.lines
    case.assessed_at = utcnow()


def hold_reason_text(code: str | None, detail: str = "") -> str:
    base = str(HOLD_REASONS.get(code or "", code or ""))
    return f"{base}: {detail}" if detail else base


def _lock_case(case_id: int) -> CustomsCase:
    case = db.scalar(select(CustomsCase).where(CustomsCase.id == case_id).with_for_update())
    if case is None:
        raise NotFound(_l("No such customs case."))
    return case


def _release(case: CustomsCase, *, actor_id: int | None, source: str, note: str = "") -> None:
    apply_transition(case, CustomsState.RELEASED, actor_id=actor_id, reason=note)
    case.hold_reason_code = None
    case.hold_reason = None
    out = ingest_for_parcel(case.parcel, EventReport(
        code="EDC", source=source, actor_id=actor_id, note=note,
        office_id=_exchange_office_of(case.parcel),
    ))
    if not out.ok:
        raise Conflict(out.reason)


def _exchange_office_of(parcel: Parcel) -> int | None:
    return db.scalar(select(ParcelEvent.office_id).where(
        ParcelEvent.parcel_id == parcel.id, ParcelEvent.code == "EMD"
    ).limit(1))


def assess(parcel_id: int) -> CustomsCase | None:
    """Assess the customs case of an inbound parcel. Flushes; the caller (the
    assess_customs job, or the demo seeder) owns the unit of work.

    Computes form, value, duty and fees; releases a clear case (EDC, recipient told of the
    duty due) or holds it (EME with a retention reason) for an officer, each through the
    case's state machine. A case already assessed is left alone, so running this twice
    changes nothing. Raises Conflict if the parcel refuses the customs event.
    """
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel_id)
                     .with_for_update())
    if case is None or case.state != CustomsState.ASSESSING:
        return case
    db.scalar(select(Parcel).where(Parcel.id == parcel_id).with_for_update())
    a = compute(case.parcel)
    _store(case, a)
    if a.hold_code:
        case.hold_reason_code = a.hold_code
        case.hold_reason = hold_reason_text(a.hold_code, a.hold_detail)[:300]
        apply_transition(case, CustomsState.HELD, reason=case.hold_reason)
        out = ingest_for_parcel(case.parcel, EventReport(
            code="EME", source="customs", retention_reason=case.hold_reason,
            office_id=_exchange_office_of(case.parcel),
        ))
        if not out.ok:
            raise Conflict(out.reason)
    else:
        _release(case, actor_id=None, source="customs", note="released automatically")
    record_audit("customs.assessed", object_type="customs_case", object_id=case.id,
                 details={"state": case.state, "form": case.form,
                          "assessed_iqd": case.assessed_total_iqd,
                          "prepaid_iqd": case.prepaid_iqd,
                          "total_due_iqd": case.total_due_iqd,
                          "hold": case.hold_reason_code})
    return case


def _open_for_officer(case: CustomsCase) -> None:
    if case.state != CustomsState.HELD:
        raise Conflict(_l("This parcel is not waiting for a customs decision."))


def _article(case: CustomsCase, article_id: int) -> ParcelArticle:
    art = next((a for a in case.parcel.articles if a.id == article_id), None)
    if art is None:
        raise NotFound(_l("This article is not on the parcel's declaration."))
    return art


def revalue(case_id: int, article_id: int, *, value_amount: int, value_currency: str,
            officer_id: int, note: str = "") -> CustomsCase:
    """An officer sets an article's value (e.g. from the invoice) and the duty is recomputed.

    Audited; flushes. Raises Conflict unless the case is held, ValidationFailed for a
    non-positive value or a currency without a rate.
    """
    case = _lock_case(case_id)
    _open_for_officer(case)
    if not isinstance(value_amount, int) or value_amount <= 0:
        raise ValidationFailed(_l("Enter a value above zero."),
                               fields={"value_amount": _l("Enter a value above zero.")})
    if to_iqd(1, value_currency) is None:
        raise ValidationFailed(_l("There is no exchange rate for this currency."),
                               fields={"value_currency": _l("Unknown currency.")})
    art = _article(case, article_id)
    before = {"value_amount": art.value_amount, "value_currency": art.value_currency}
    art.value_amount = value_amount
    art.value_currency = value_currency
    db.flush()
    _store(case, compute(case.parcel))
    record_audit("customs.revalued", object_type="customs_case", object_id=case.id,
                 actor_id=officer_id,
                 details={"article_id": art.id, "before": before,
                          "after": {"value_amount": value_amount,
                                    "value_currency": value_currency}, "note": note})
    return case


def reclassify(case_id: int, article_id: int, *, hs_code: str, officer_id: int,
               note: str = "") -> CustomsCase:
    """An officer sets an article's HS tariff number and the duty is recomputed.

    Audited; flushes. Raises Conflict unless the case is held, ValidationFailed for an
    HS number that is not 6 to 10 digits.
    """
    case = _lock_case(case_id)
    _open_for_officer(case)
    hs_code = (hs_code or "").strip()
    if not (hs_code.isdigit() and 6 <= len(hs_code) <= 10):
        raise ValidationFailed(_l("Enter the 6-digit HS tariff number."),
                               fields={"hs_code": _l("Enter the 6-digit HS tariff number.")})
    art = _article(case, article_id)
    before = art.hs_code
    art.hs_code = hs_code
    db.flush()
    _store(case, compute(case.parcel))
    record_audit("customs.reclassified", object_type="customs_case", object_id=case.id,
                 actor_id=officer_id,
                 details={"article_id": art.id, "before": before, "after": hs_code,
                          "note": note})
    return case


def release(case_id: int, *, officer_id: int, note: str = "") -> CustomsCase:
    """An officer releases a held parcel (EDC) with the duty as now computed; the recipient
    is told what is due. Audited; flushes. Raises Conflict unless the case is held."""
    case = _lock_case(case_id)
    _open_for_officer(case)
    db.scalar(select(Parcel).where(Parcel.id == case.parcel_id).with_for_update())
    _store(case, compute(case.parcel))
    case.decided_by_id = officer_id
    case.decided_at = utcnow()
    case.decision_note = note
    _release(case, actor_id=officer_id, source="customs", note=note)
    record_audit("customs.released", object_type="customs_case", object_id=case.id,
                 actor_id=officer_id,
                 details={"assessed_iqd": case.assessed_total_iqd,
                          "prepaid_iqd": case.prepaid_iqd,
                          "total_due_iqd": case.total_due_iqd, "note": note})
    return case


REFUSAL_OUTCOMES = ("return", "destroy")


def refuse(case_id: int, *, officer_id: int, outcome: str, note: str = "") -> CustomsCase:
    """An officer refuses import: the parcel is returned to its sender or destroyed (EDX,
    final). Audited; flushes. Raises Conflict unless held, ValidationFailed without a
    reason or with an unknown outcome."""
    if outcome not in REFUSAL_OUTCOMES:
        raise ValidationFailed(_l("Choose return or destroy."),
                               fields={"outcome": _l("Choose return or destroy.")})
    if not (note or "").strip():
        raise ValidationFailed(_l("Write why the parcel is refused."),
                               fields={"note": _l("Write why the parcel is refused.")})
    case = _lock_case(case_id)
    _open_for_officer(case)
    db.scalar(select(Parcel).where(Parcel.id == case.parcel_id).with_for_update())
    apply_transition(case, CustomsState.REFUSED, actor_id=officer_id,
                     reason=f"{outcome}: {note}")
    case.decided_by_id = officer_id
    case.decided_at = utcnow()
    case.decision_note = note
    # Nothing is owed on a parcel that will not be delivered.
    case.total_due_iqd = 0
    out = ingest_for_parcel(case.parcel, EventReport(
        code="EDX", source="customs", actor_id=officer_id,
        office_id=_exchange_office_of(case.parcel),
        note=f"refused by customs ({outcome}): {note}"[:500],
    ))
    if not out.ok:
        raise Conflict(out.reason)
    record_audit("customs.refused", object_type="customs_case", object_id=case.id,
                 actor_id=officer_id, details={"outcome": outcome, "note": note})
    return case


def case_for_number(number: str) -> CustomsCase:
    """The customs case of parcel `number`; raises ValidationFailed or NotFound."""
    parcel = get_parcel(number)
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
    if case is None:
        raise NotFound(_l("This parcel has no customs case."))
    return case


def mark_duty_paid(case: CustomsCase, payment_id: str) -> bool:
    """Record that the case's duty is paid (flushes). False if it was already paid."""
    if case.paid_at is not None:
        return False
    case.paid_at = utcnow()
    case.payment_id = payment_id
    record_audit("customs.duty_paid", object_type="customs_case", object_id=case.id,
                 details={"payment_id": payment_id, "amount_iqd": case.total_due_iqd})
    db.flush()
    publish("customs.duty_paid", case_payload(case, payment_id=payment_id))
    return True


def customs_fees_iqd() -> int:
    """The fees customs charges on every assessed parcel (inspection and stamp), in
    dinars, as an estimate before arrival. Reads settings only."""
    return int(current_app.config["CUSTOMS_INSPECTION_FEE_IQD"]) \
        + int(current_app.config["CUSTOMS_STAMP_FEE_IQD"])


def record_prepaid_customs(parcel_id: int, *, duty_iqd: int, fees_iqd: int,
                           actor_id: int | None, reference: str) -> Parcel:
    """Record that the recipient already paid `duty_iqd` of duty and `fees_iqd` of
    customs fees for an inbound parcel (a buy-for-me quote, `reference` saying which):
    the assessment on arrival credits them, so only a difference is due, and an excess
    is announced on release (CustomsCase.prepaid_excess_iqd, in `customs.released`).

    Audited when it changes something; the same figures again change nothing. Flushes.
    Raises NotFound, ValidationFailed (a negative amount), Conflict (customs already
    assessed the parcel: the credit would come too late).
    """
    if not (isinstance(duty_iqd, int) and isinstance(fees_iqd, int)) \
            or duty_iqd < 0 or fees_iqd < 0:
        raise ValidationFailed(_l("Prepaid duty and fees cannot be negative."))
    parcel = db.scalar(select(Parcel).where(Parcel.id == parcel_id).with_for_update())
    if parcel is None:
        raise NotFound(_l("No parcel has this number."))
    if (parcel.customs_prepaid_duty_iqd, parcel.customs_prepaid_fees_iqd) \
            == (duty_iqd, fees_iqd):
        return parcel
    case = db.scalar(select(CustomsCase).where(CustomsCase.parcel_id == parcel.id))
    if case is not None and case.state != CustomsState.ASSESSING:
        raise Conflict(_l("Customs has already assessed this parcel."))
    before = {"duty_iqd": parcel.customs_prepaid_duty_iqd,
              "fees_iqd": parcel.customs_prepaid_fees_iqd}
    parcel.customs_prepaid_duty_iqd, parcel.customs_prepaid_fees_iqd = duty_iqd, fees_iqd
    record_audit("customs.prepaid_recorded", object_type="parcel", object_id=parcel.id,
                 actor_id=actor_id, details={"before": before, "duty_iqd": duty_iqd,
                                             "fees_iqd": fees_iqd, "reference": reference})
    db.flush()
    return parcel


def _payable_case(case_id: int) -> CustomsCase:
    case = _lock_case(case_id)
    if case.state != CustomsState.RELEASED:
        raise Conflict(_l("Customs has not released this parcel yet."))
    if not case.duty_outstanding:
        raise Conflict(_l("The duty on this parcel is already paid."))
    return case


def pay_duty_in_cash(case_id: int, *, clerk_id: int, office_id: int) -> CustomsCase:
    """The recipient pays the duty in cash at the counter; the clerk's drawer takes it.

    Flushes. Raises Conflict (not released / already paid) and payments' errors.
    """
    case = _payable_case(case_id)
    payment = pay.receive_cash(
        office_id=office_id, clerk_id=clerk_id, amount=case.total_due_iqd, currency="IQD",
        reference_kind=DUTY_REFERENCE_KIND, reference_id=str(case.id), purpose=DUTY_PURPOSE,
        idempotency_key=f"duty:{case.id}",
    )
    mark_duty_paid(case, str(payment.id))
    return case


def pay_duty_with_post_card(case_id: int, *, card_number: str, pin: str,
                            actor_id: int | None, one_time_code: str = "",
                            at_counter: bool = False) -> CustomsCase:
    """The recipient pays the duty with a post card (online, or at the counter when
    `at_counter`: a clerk).

    Flushes. Raises Conflict (not released / already paid) and payments' errors (wrong
    PIN, not enough balance, card blocked, OneTimeCodeSent when a code went to the
    holder, WrongOneTimeCode); payments keeps a wrong PIN's count on its own.
    """
    case = _payable_case(case_id)
    payment = pay.pay_with_post_card(
        card_number=card_number, pin=pin, amount=case.total_due_iqd, currency="IQD",
        reference_kind=DUTY_REFERENCE_KIND, reference_id=str(case.id), purpose=DUTY_PURPOSE,
        idempotency_key=f"duty:{case.id}", actor_id=actor_id, one_time_code=one_time_code,
        at_counter=at_counter,
    )
    mark_duty_paid(case, str(payment.id))
    return case


# ---- tariff administration -------------------------------------------------------------


@dataclass
class TariffImport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def parse_tariff_csv(data: bytes) -> tuple[list[tuple[str, int, str, str]], list[str]]:
    """Rows (prefix, basis points, English, Arabic) and per-row errors of a tariff CSV."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [_("The file is not UTF-8 text. Save it as \"CSV UTF-8\" and try again.")]
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in TARIFF_COLUMNS[:2] if c not in (reader.fieldnames or [])]
    if missing:
        return [], [_("Missing column(s): %(cols)s", cols=", ".join(missing))]
    rows: list[tuple[str, int, str, str]] = []
    errors: list[str] = []
    for n, row in enumerate(reader, start=2):
        prefix = (row.get("hs_prefix") or "").strip()
        if not (prefix.isdigit() and 2 <= len(prefix) <= 10):
            errors.append(_("Line %(n)s: the HS prefix must be 2 to 10 digits.", n=n))
            continue
        try:
            percent = Decimal((row.get("rate_percent") or "").strip())
        except InvalidOperation:
            errors.append(_("Line %(n)s: the rate is not a number.", n=n))
            continue
        bp = percent * 100
        if not (0 <= percent <= 100) or bp != bp.to_integral_value():
            errors.append(_("Line %(n)s: the rate must be 0 to 100 with at most two "
                            "decimals.", n=n))
            continue
        rows.append((prefix, int(bp), (row.get("description_en") or "").strip()[:200],
                     (row.get("description_ar") or "").strip()[:200]))
    return rows, errors


def import_tariff(data: bytes, *, actor_id: int | None) -> TariffImport:
    """An administrator loads tariff lines from CSV (hs_prefix, rate_percent,
    description_en, description_ar); existing prefixes are updated.

    All or nothing: any bad line and nothing is changed (the errors say which). Audited;
    flushes.
    """
    rows, errors = parse_tariff_csv(data)
    result = TariffImport(errors=errors)
    if errors or not rows:
        if not rows and not errors:
            result.errors.append(_("The file has no tariff lines."))
        return result
    existing = {t.hs_prefix: t for t in db.scalars(select(TariffLine))}
    for prefix, bp, en, ar in rows:
        line = existing.get(prefix)
        if line is None:
            line = TariffLine(hs_prefix=prefix, rate_bp=bp, description_en=en,
                              description_ar=ar)
            db.add(line)
            existing[prefix] = line
            result.created += 1
        else:
            line.rate_bp, line.description_en, line.description_ar = bp, en, ar
            line.updated_at = utcnow()
            result.updated += 1
    record_audit("customs.tariff_imported", object_type="customs_tariff", actor_id=actor_id,
                 details={"created": result.created, "updated": result.updated})
    return result


def held_cases(*, office_id: int | None = None) -> list[CustomsCase]:
    """The officer's queue: held parcels, oldest first; with `office_id`, only parcels
    whose latest event was at that office."""
    query = select(CustomsCase).where(CustomsCase.state == CustomsState.HELD)
    if office_id is not None:
        query = query.join(Parcel, Parcel.id == CustomsCase.parcel_id).where(
            whereabouts() == office_id)
    return list(db.scalars(query.order_by(CustomsCase.created_at)))


def duty_payable(reference_id: str, user: Any) -> Payable | None:
    """Payments' resolver for the "pay for a reference" page: the duty due on a released
    case (IQD, computed here), or None when customs has not released it, nothing is due or
    it is already paid, so the page refuses. Anyone may pay a parcel's duty, as on the
    public duty page, so the visitor is not checked. Reads only."""
    # Only the id as payments writes it ("12", not "012" or Arabic digits), so every
    # payment for a case carries the same reference the subscriber reads back.
    if not (reference_id.isascii() and reference_id.isdigit()) \
            or str(int(reference_id)) != reference_id:
        return None
    case = db.get(CustomsCase, int(reference_id))
    if case is None or case.state != CustomsState.RELEASED or not case.duty_outstanding:
        return None
    return Payable(amount=case.total_due_iqd, currency="IQD", purpose=DUTY_PURPOSE,
                   description=_("Customs duty for parcel %(number)s",
                                 number=case.parcel.tracking_number))


def on_payment_succeeded(event: Any) -> None:
    """Subscriber: a payment of a case's duty marks it paid (once; the same news twice
    changes nothing).

    A bank-card payment started on one page can still succeed after the duty was paid
    another way (an old tab, a late 3-D Secure), and its key differs from the post card's
    and the counter's, so nothing stops it: a payment that is not the one that settled the
    duty, or that does not match what is due, is refunded in full. Flushes; the job's
    unit of work commits. Raises payments' refund errors (the job is retried).
    """
    payload = event.payload or {}
    if payload.get("reference_kind") != DUTY_REFERENCE_KIND:
        return
    try:
        case_id = int(payload.get("reference_id") or "")
    except (TypeError, ValueError):
        return
    case = db.scalar(select(CustomsCase).where(CustomsCase.id == case_id).with_for_update())
    if case is None:
        return
    payment_id = str(payload.get("payment_id") or payload.get("id") or "")
    if case.payment_id == payment_id:
        return
    settles = (payload.get("purpose") == DUTY_PURPOSE and payload.get("currency") == "IQD"
               and payload.get("amount") == case.total_due_iqd)
    if case.state == CustomsState.RELEASED and case.duty_outstanding and settles:
        mark_duty_paid(case, payment_id)
        return
    _refund_unneeded_payment(case, payment_id)


def _refund_unneeded_payment(case: CustomsCase, payment_id: str) -> None:
    try:
        p = pay.get_payment(int(payment_id))
    except (ValueError, NotFound):
        return
    if p.status not in (PaymentStatus.SUCCEEDED, PaymentStatus.PARTIALLY_REFUNDED) \
            or not p.refundable:
        return
    amount = p.refundable
    # The key names the payment, so a repeat of the event refunds nothing more.
    pay.refund(p.id, amount, "customs duty already paid or not due", None,
               f"duty:{case.id}:unneeded:{p.id}")
    record_audit("customs.duty_payment_refunded", object_type="customs_case",
                 object_id=case.id, details={"payment_id": p.id, "amount": amount,
                                             "currency": p.currency,
                                             "paid_by": case.payment_id})
