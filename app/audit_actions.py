"""Readable names for the action codes of the audit log, in the reader's language.

The log keeps the stable code (`parcel.accepted`); people read the label. A code missing
here is shown as it is, so a new action is never hidden, only untranslated: add it here
when you add a `record_audit(...)` call (tests/app/test_audit_log_list.py checks that
every code used in the code base has a label).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

ACTION_LABELS: dict[str, Any] = {
    # people, sign-in and roles
    "auth.login": _l("Signed in"),
    "auth.login_failed": _l("Sign-in failed"),
    "auth.logout": _l("Signed out"),
    "auth.forbidden": _l("Refused: no permission"),
    "auth.force_relogin": _l("Made to sign in again"),
    "auth.notification_channels": _l("Message channels changed"),
    "auth.password_change": _l("Password changed"),
    "auth.password_reset": _l("Password reset"),
    "auth.password_reset_requested": _l("Password reset asked for"),
    "auth.password_reset_sent": _l("Password reset code sent"),
    "auth.register": _l("Account created"),
    "auth.register_existing": _l("Sign-up with an existing account"),
    "auth.register_requested": _l("Sign-up asked for"),
    "auth.role_grant": _l("Role given"),
    "auth.role_revoke": _l("Role taken away"),
    "auth.user_create": _l("Staff member added"),
    "auth.user_disable": _l("Person disabled"),
    "auth.user_enable": _l("Person enabled again"),
    "auth.user_update": _l("Person's details changed"),
    "auth.post_office_create": _l("Post office added"),
    "auth.post_office_update": _l("Post office changed"),
    "auth.post_office_close": _l("Post office closed"),
    "auth.post_office_reopen": _l("Post office opened again"),
    # merchants' keys and webhooks
    "api_key.created": _l("API key created"),
    "api_key.revoked": _l("API key revoked"),
    "api_key.rotated": _l("API key replaced"),
    "webhook_endpoint.created": _l("Webhook address added"),
    "webhook_endpoint.updated": _l("Webhook address changed"),
    "webhook_endpoint.deleted": _l("Webhook address removed"),
    "webhook_endpoint.disabled": _l("Webhook address switched off"),
    "webhook_endpoint.secret_rotated": _l("Webhook secret replaced"),
    "webhook_endpoint.replayed_failed": _l("Failed webhook messages sent again"),
    "webhook_message.replayed": _l("Webhook message sent again"),
    "notification_template.changed": _l("Message template changed"),
    "notification_template.restored": _l("Message template restored"),
    # post cards and payments
    "post_card.issued": _l("Post card issued"),
    "post_card.frozen": _l("Post card frozen"),
    "post_card.unfrozen": _l("Post card unfrozen"),
    "post_card.unlocked": _l("Post card unlocked"),
    "post_card.pin_changed": _l("Post card PIN changed"),
    "post_card.pin_ok": _l("Post card PIN accepted"),
    "post_card.pin_failed": _l("Wrong post card PIN"),
    "post_card.pin_refused": _l("Post card PIN refused (card locked)"),
    "post_card.code_sent": _l("Post card code sent"),
    "post_card.code_used": _l("Post card code used"),
    "post_card.code_failed": _l("Wrong post card code"),
    "payment.cash_received": _l("Cash received"),
    "payment.post_card": _l("Paid with a post card"),
    "payment.refunded": _l("Payment refunded"),
    "payment.refunded_at_counter": _l("Refunded at the counter"),
    "payment.refund_requested": _l("Refund asked for"),
    "payment.refund_approved": _l("Refund approved"),
    "payment.refund_declined": _l("Refund declined"),
    "payment.disputed": _l("Payment disputed"),
    "payment.dispute_updated": _l("Dispute changed"),
    "payment.stripe_mismatch": _l("Card payment does not match Stripe"),
    "exchange_rate.set": _l("Exchange rate set"),
    "exchange_rate.proposed": _l("Exchange rate proposed"),
    "exchange_rate.confirmed": _l("Exchange rate confirmed"),
    "exchange_rate.declined": _l("Exchange rate declined"),
    "drawer.day_closed": _l("Cash drawer day closed"),
    "postage.bands_replaced": _l("Postage weight bands changed"),
    "settings.changed": _l("Fee or limit changed"),
    "drawer.forbidden": _l("Refused: another office's cash drawer"),
    "report.requested": _l("Report asked for"),
    # parcels and customs
    "parcel.accepted": _l("Parcel accepted at the counter"),
    "parcel.event": _l("Parcel scanned"),
    "parcel.handover": _l("Parcel handed over"),
    "parcel.handover_override": _l("Parcel handed over by override"),
    "tracking.batch_submitted": _l("Tracking events sent in"),
    "tracking.partner_created": _l("Tracking partner added"),
    "customs.assessed": _l("Customs duty assessed"),
    "customs.duty_paid": _l("Customs duty paid"),
    "customs.duty_payment_refunded": _l("Customs duty refunded"),
    "customs.prepaid_recorded": _l("Prepaid customs duty recorded"),
    "customs.reclassified": _l("Customs category changed"),
    "customs.revalued": _l("Customs value changed"),
    "customs.released": _l("Released by customs"),
    "customs.refused": _l("Refused by customs"),
    "customs.tariff_imported": _l("Customs tariff loaded"),
    # shop
    "merchant.registered": _l("Merchant signed up"),
    "merchant.approved": _l("Merchant approved"),
    "merchant.suspended": _l("Merchant suspended"),
    "merchant.commission_changed": _l("Merchant commission changed"),
    "merchant.post_office_changed": _l("Merchant post office changed"),
    "merchant.payout_recorded": _l("Payment to a merchant recorded"),
    "order.cancelled": _l("Order cancelled"),
    "order.customs_excess_refunded": _l("Extra customs payment refunded"),
    "order.late_payment_refunded": _l("Late payment refunded"),
    "buy_request.quoted": _l("Buy-for-me request priced"),
    "buy_request.edited": _l("Buy-for-me request changed by the shopper"),
    "buy_request.accepted": _l("Buy-for-me price accepted"),
    "buy_request.purchased": _l("Buy-for-me item bought"),
    "buy_request.rejected": _l("Buy-for-me request refused"),
}

OBJECT_LABELS: dict[str, Any] = {
    "api_key": _l("API key"),
    "buy_request": _l("Buy-for-me request"),
    "customs_case": _l("Customs case"),
    "customs_tariff": _l("Customs tariff"),
    "drawer_day": _l("Cash drawer day"),
    "report_run": _l("Report"),
    "exchange_rate": _l("Exchange rate"),
    "ingest_batch": _l("Tracking events batch"),
    "merchant": _l("Merchant"),
    "notification_template": _l("Message template"),
    "order": _l("Order"),
    "parcel": _l("Parcel"),
    "payment": _l("Payment"),
    "pending_registration": _l("Sign-up"),
    "post_card": _l("Post card"),
    "post_office": _l("Post office"),
    "rate_proposal": _l("Exchange rate proposal"),
    "refund_request": _l("Refund request"),
    "route": _l("Page"),
    "tracking_partner": _l("Tracking partner"),
    "user": _l("Person"),
    "webhook_endpoint": _l("Webhook address"),
    "webhook_message": _l("Webhook message"),
}


def action_label(code: str) -> str:
    """The readable name of `code` in the current language, or the code itself."""
    label = ACTION_LABELS.get(code)
    return str(label) if label is not None else code


def object_label(kind: str | None) -> str:
    """The readable name of an object kind, or the kind itself."""
    if not kind:
        return ""
    label = OBJECT_LABELS.get(kind)
    return str(label) if label is not None else kind
