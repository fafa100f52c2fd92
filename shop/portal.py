"""The merchant portal (/merchant): the overview, API keys and webhook endpoints with
their delivery log. The shop's products, orders and money are in portal_catalog,
portal_orders and portal_money, on the same blueprint.

Pages for a logged-in merchant about their own shop only. Each view parses a form,
calls one service (app.api.keys, app.webhooks.services) with the shop's id as owner,
and renders or redirects. A new key is shown once, on the answer to the POST that made
it, and never stored in a session or a flash message.

A POST that changes something runs its service in one unit of work, and a DomainError
is caught outside it, so whatever the service flushed before failing is rolled back.
GET pages only read.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, Flask, abort, flash, redirect, render_template, url_for
from flask_babel import LazyString
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from werkzeug.wrappers import Response
from wtforms import DateTimeLocalField, SelectMultipleField, StringField, SubmitField
from wtforms.validators import InputRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from app.api import keys
from app.api.models import ALL_SCOPES
from app.auth.decorators import role_required
from app.auth.models import Role
from app.database import db, unit_of_work
from app.errors import DomainError
from app.i18n import BAGHDAD
from app.webhooks import services as hooks
from app.webhooks.models import WebhookAttempt
from payments.payouts import payable_balance
from shop.models import HOME_CURRENCY, ConsignmentStatus, Merchant
from shop.services.merchant_api import consignments_query, merchant_of_user

bp = Blueprint("merchant_portal", __name__, url_prefix="/merchant")

SCOPE_LABELS: dict[str, LazyString] = {
    "catalog": _l("Catalog and stock"),
    "orders": _l("Orders and consignments"),
    "parcels": _l("Parcels and labels"),
    "webhooks": _l("Webhook endpoints"),
}


class _Checkboxes(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class KeyForm(FlaskForm):
    name = StringField(_l("Name"), validators=[InputRequired(_l("Give the key a name.")),
                                               Length(max=100)],
                       description=_l("Where the key is used, e.g. \"Warehouse system\"."))
    scopes = _Checkboxes(_l("Permissions"), choices=[])
    submit = SubmitField(_l("Create key"))

    def validate_scopes(self, field: SelectMultipleField) -> None:
        if not field.data:
            raise ValidationError(_l("Choose at least one permission."))


class EndpointForm(FlaskForm):
    url = StringField(_l("Address (URL)"), validators=[InputRequired(_l("Enter the address.")),
                                                       Length(max=2000)],
                      description=_l("Your server's address that receives events, "
                                     "starting with https://."))
    description = StringField(_l("Description"), validators=[Optional(), Length(max=200)])
    event_types = _Checkboxes(_l("Events to receive (none ticked: all)"), choices=[])
    submit = SubmitField(_l("Add endpoint"))


class ReplaySinceForm(FlaskForm):
    since = DateTimeLocalField(_l("Failed since (Baghdad time)"),
                               validators=[InputRequired(_l("Choose a time."))])
    submit = SubmitField(_l("Send failed messages again"))


class ActionForm(FlaskForm):
    """Only a CSRF token: for the buttons that change something."""


def _merchant() -> Merchant:
    merchant = merchant_of_user(current_user.id)
    if merchant is None:
        abort(404, _("You do not run a shop on Barid yet."))
    return merchant


def _key_form() -> KeyForm:
    form = KeyForm()
    form.scopes.choices = [(s, str(SCOPE_LABELS[s])) for s in ALL_SCOPES]
    return form


def _endpoint_form() -> EndpointForm:
    form = EndpointForm()
    form.event_types.choices = [(t, t) for t in sorted(hooks.EVENT_TYPES) if t != hooks.TEST_EVENT]
    return form


def _no_store(html: str) -> Response:
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("")
@role_required(Role.MERCHANT)
def index() -> str:
    merchant = _merchant()
    waiting = db.scalar(select(func.count()).select_from(
        consignments_query(merchant.id, status=ConsignmentStatus.OPEN).subquery()))
    return render_template("shop/portal/index.html", merchant=merchant,
                           waiting=waiting or 0,
                           owed=payable_balance(merchant.id, HOME_CURRENCY),
                           keys=keys.list_keys(merchant.id),
                           endpoints=hooks.list_endpoints(merchant.id))


@bp.route("/keys", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def api_keys() -> str | Response:
    merchant = _merchant()
    form = _key_form()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                key, secret = keys.create_key(merchant.id, form.name.data, form.scopes.data,
                                              actor_id=current_user.id)
        except DomainError as exc:
            form.name.errors = [*form.name.errors, str(exc.message)]
        else:
            return _no_store(render_template("shop/portal/key_created.html", key=key,
                                             secret=secret, merchant=merchant,
                                             scope_labels=SCOPE_LABELS))
    return render_template("shop/portal/keys.html", merchant=merchant, form=form,
                           keys=keys.list_keys(merchant.id), action=ActionForm(),
                           scope_labels=SCOPE_LABELS, now=datetime.now(UTC))


@bp.post("/keys/<int:key_id>/revoke")
@role_required(Role.MERCHANT)
def revoke_key(key_id: int) -> Response:
    merchant = _merchant()
    if ActionForm().validate_on_submit():
        with unit_of_work():
            key = keys.revoke_key(merchant.id, key_id, actor_id=current_user.id)
        flash(_("Key %(prefix)s no longer works.", prefix=key.display), "success")
    return redirect(url_for(".api_keys"))


@bp.post("/keys/<int:key_id>/rotate")
@role_required(Role.MERCHANT)
def rotate_key(key_id: int) -> Response:
    merchant = _merchant()
    if not ActionForm().validate_on_submit():
        return redirect(url_for(".api_keys"))
    with unit_of_work():
        key, secret = keys.rotate_key(merchant.id, key_id, actor_id=current_user.id)
    return _no_store(render_template("shop/portal/key_created.html", key=key, secret=secret,
                                     merchant=merchant, rotated=True,
                                     scope_labels=SCOPE_LABELS))


@bp.route("/webhooks", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def webhooks() -> str | Response:
    merchant = _merchant()
    form = _endpoint_form()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                endpoint = hooks.create_endpoint(merchant.id, form.url.data,
                                                 event_types=form.event_types.data,
                                                 description=form.description.data or "",
                                                 actor_id=current_user.id)
        except DomainError as exc:
            form.url.errors = [*form.url.errors, str(exc.message)]
        else:
            flash(_("Endpoint added. Verify each message with its signing secret."),
                  "success")
            return redirect(url_for(".webhook", endpoint_id=endpoint.id))
    return render_template("shop/portal/webhooks.html", merchant=merchant, form=form,
                           endpoints=hooks.list_endpoints(merchant.id))


@bp.get("/webhooks/<int:endpoint_id>")
@role_required(Role.MERCHANT)
def webhook(endpoint_id: int) -> Response:
    merchant = _merchant()
    endpoint = hooks.get_endpoint(merchant.id, endpoint_id)
    deliveries = hooks.deliveries_of(merchant.id, endpoint.id, limit=50)
    attempts = hooks.recent_attempts(merchant.id, endpoint.id, limit=100)
    by_delivery: dict[int, list[WebhookAttempt]] = {}
    for a in attempts:
        by_delivery.setdefault(a.delivery_id, []).append(a)
    replay_form = ReplaySinceForm()
    if replay_form.since.data is None:
        replay_form.since.data = datetime.now(BAGHDAD).replace(
            hour=0, minute=0, second=0, microsecond=0, tzinfo=None)
    return _no_store(render_template(
        "shop/portal/webhook.html", merchant=merchant, endpoint=endpoint,
        deliveries=deliveries, attempts_by_delivery=by_delivery, action=ActionForm(),
        replay_form=replay_form, secrets=hooks.signing_secrets(endpoint)))


def _act(endpoint_id: int) -> tuple[Merchant, bool]:
    merchant = _merchant()
    hooks.get_endpoint(merchant.id, endpoint_id)
    return merchant, ActionForm().validate_on_submit()


@bp.post("/webhooks/<int:endpoint_id>/test")
@role_required(Role.MERCHANT)
def webhook_test(endpoint_id: int) -> Response:
    merchant, ok = _act(endpoint_id)
    if ok:
        with unit_of_work():
            hooks.send_test_event(merchant.id, endpoint_id, actor_id=current_user.id)
        flash(_("A test message is on its way. Reload to see the attempt."), "success")
    return redirect(url_for(".webhook", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/replay/<message_id>")
@role_required(Role.MERCHANT)
def webhook_replay(endpoint_id: int, message_id: str) -> Response:
    merchant, ok = _act(endpoint_id)
    if ok:
        with unit_of_work():
            hooks.replay_message(merchant.id, message_id, endpoint_id=endpoint_id,
                                 actor_id=current_user.id)
        flash(_("The message is being sent again."), "success")
    return redirect(url_for(".webhook", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/replay-failed")
@role_required(Role.MERCHANT)
def webhook_replay_failed(endpoint_id: int) -> Response:
    merchant = _merchant()
    form = ReplaySinceForm()
    if form.validate_on_submit():
        since = form.since.data.replace(tzinfo=BAGHDAD).astimezone(UTC)
        with unit_of_work():
            n = hooks.replay_failed_since(merchant.id, endpoint_id, since,
                                          actor_id=current_user.id)
        flash(_("%(n)s failed messages are being sent again.", n=n), "success")
    else:
        flash(_("Choose a time."), "error")
    return redirect(url_for(".webhook", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/rotate")
@role_required(Role.MERCHANT)
def webhook_rotate(endpoint_id: int) -> Response:
    merchant, ok = _act(endpoint_id)
    if ok:
        with unit_of_work():
            hooks.rotate_secret(merchant.id, endpoint_id, actor_id=current_user.id)
        flash(_("New secret made. The old one also signs for 24 hours."), "success")
    return redirect(url_for(".webhook", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/toggle")
@role_required(Role.MERCHANT)
def webhook_toggle(endpoint_id: int) -> Response:
    merchant, ok = _act(endpoint_id)
    if ok:
        with unit_of_work():
            endpoint = hooks.get_endpoint(merchant.id, endpoint_id)
            hooks.update_endpoint(merchant.id, endpoint_id,
                                  {"enabled": not endpoint.enabled}, actor_id=current_user.id)
    return redirect(url_for(".webhook", endpoint_id=endpoint_id))


@bp.post("/webhooks/<int:endpoint_id>/delete")
@role_required(Role.MERCHANT)
def webhook_delete(endpoint_id: int) -> Response:
    merchant, ok = _act(endpoint_id)
    if ok:
        with unit_of_work():
            hooks.delete_endpoint(merchant.id, endpoint_id, actor_id=current_user.id)
        flash(_("Endpoint deleted."), "success")
    return redirect(url_for(".webhooks"))


def init_app(app: Flask) -> None:
    # The shop's own pages (catalog, orders, money) add their routes to this blueprint
    # when imported, so they must be imported before it is registered.
    from shop import portal_catalog, portal_money, portal_orders  # noqa: F401

    app.register_blueprint(bp)
