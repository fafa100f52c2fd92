"""Back-office pages of notifications: the log of every message (admin, supervisor) and
the Arabic and English templates an admin edits, with a preview rendered from sample
data.

The routes hang on the `backoffice` blueprint (URLs under /backoffice/admin); importing
this module adds them, so app.auth_setup imports it before the blueprint is registered.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length

from app.auth.decorators import role_required
from app.auth.models import Role
from app.backoffice import bp, nav_item
from app.database import unit_of_work
from app.errors import DomainError, NotFound
from app.listing import Filter, Listing
from app.notify import (
    CHANNELS,
    LOCALES,
    MAX_TEMPLATE_CHARS,
    Notification,
    NotificationStatus,
    get_kind,
    message_kinds,
    preview,
    restore_template,
    save_template,
    template_texts,
)

LOG_PAGE_SIZE = 50
REQUIRED = _l("This field is required.")


class TemplateForm(FlaskForm):
    subject = StringField(_l("Subject (e-mail)"),
                          validators=[InputRequired(REQUIRED), Length(max=200)])
    email_body = TextAreaField(_l("E-mail text"), validators=[
        InputRequired(REQUIRED), Length(max=MAX_TEMPLATE_CHARS)])
    sms_body = TextAreaField(_l("SMS text"), validators=[
        InputRequired(REQUIRED), Length(max=MAX_TEMPLATE_CHARS)])
    preview = SubmitField(_l("Preview"))
    save = SubmitField(_l("Save"))


class RestoreForm(FlaskForm):
    restore = SubmitField(_l("Go back to the built-in text"))


def _kind_or_404(key: str, locale: str):
    if locale not in LOCALES:
        raise NotFound()
    try:
        return get_kind(key)
    except DomainError:
        raise NotFound() from None


STATUS_LABELS = {NotificationStatus.QUEUED: _l("Waiting"), NotificationStatus.SENT: _l("Sent"),
                 NotificationStatus.FAILED: _l("Failed")}
CHANNEL_LABELS = {"email": _l("E-mail"), "sms": _l("SMS")}

NOTIFICATION_LIST = Listing(
    "notifications", order=(Notification.created_at, Notification.id),
    page_size=LOG_PAGE_SIZE,
    filters=(
        Filter("kind", _l("Kind of message"), "choice", column=Notification.kind,
               choices=lambda: [(k.key, k.label) for k in message_kinds()]),
        Filter("channel", _l("Channel"), "choice", column=Notification.channel,
               choices=lambda: [(c, CHANNEL_LABELS.get(c, c)) for c in CHANNELS]),
        Filter("status", _l("Status"), "choice", column=Notification.status,
               choices=lambda: [(str(s), STATUS_LABELS.get(s, s))
                                for s in NotificationStatus]),
        Filter("to", _l("To"), column=Notification.recipient, dir="ltr",
               placeholder=_l("E-mail or mobile number")),
        Filter("since", _l("From (day)"), "date_from", column=Notification.created_at),
        Filter("until", _l("To (day)"), "date_to", column=Notification.created_at),
    ))


@bp.route("/admin/notifications")
@role_required(Role.ADMIN, Role.SUPERVISOR)
def admin_notifications():
    """The log of messages, newest first, a page at a time (app.listing)."""
    page = NOTIFICATION_LIST.page(select(Notification),
                                  NOTIFICATION_LIST.parse(request.args), request.args)
    return render_template("backoffice/admin_notifications.html", page=page, rows=page.rows,
                           status_labels=STATUS_LABELS)


@bp.route("/admin/notifications.csv")
@role_required(Role.ADMIN, Role.SUPERVISOR)
def admin_notifications_csv():
    """Every message the filters keep, as CSV."""
    columns = [
        (_("When (UTC)"), lambda n: n.created_at.isoformat(timespec="seconds")),
        (_("To"), lambda n: n.recipient),
        (_("Person number"), lambda n: n.user_id),
        (_("Channel"), lambda n: str(CHANNEL_LABELS.get(n.channel, n.channel))),
        (_("Kind of message"), lambda n: n.kind),
        (_("Language"), lambda n: n.locale),
        (_("Event"), lambda n: n.event_name or ""),
        (_("Status"), lambda n: str(STATUS_LABELS.get(n.status, n.status))),
        (_("Attempts"), lambda n: n.attempts),
        (_("Subject"), lambda n: n.subject),
        (_("Text"), lambda n: n.body),
        (_("Error"), lambda n: n.error or ""),
    ]
    return NOTIFICATION_LIST.csv(select(Notification),
                                 NOTIFICATION_LIST.parse(request.args), columns,
                                 "messages.csv")


@bp.route("/admin/notifications/templates")
@role_required(Role.ADMIN)
def admin_notification_templates():
    kinds = message_kinds()
    changed = {(k.key, loc): template_texts(k.key, loc)[1] for k in kinds for loc in LOCALES}
    return render_template("backoffice/admin_notification_templates.html", kinds=kinds,
                           changed=changed, locales=LOCALES)


@bp.route("/admin/notifications/templates/<kind>/<locale>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def admin_notification_template(kind: str, locale: str):
    """Edit one kind's text in one language: Preview renders the form's texts with the
    sample data; Save checks and stores them (the next message uses them)."""
    message_kind = _kind_or_404(kind, locale)
    form = TemplateForm()
    restore_form = RestoreForm()
    rendered = None
    status = 200
    texts, changed = template_texts(kind, locale)
    if request.method == "GET":
        form.subject.data = texts["subject"]
        form.email_body.data = texts["email_body"]
        form.sms_body.data = texts["sms_body"]
    elif form.validate_on_submit():
        given = {"subject": form.subject.data, "email_body": form.email_body.data,
                 "sms_body": form.sms_body.data}
        try:
            if form.save.data:
                with unit_of_work():
                    save_template(kind, locale, given, actor_id=current_user.id)
                flash(_("Saved. The next message of this kind uses the new text."),
                      "success")
                return redirect(url_for("backoffice.admin_notification_template",
                                        kind=kind, locale=locale))
            rendered = preview(kind, locale, given)
        except DomainError as exc:
            for name, message in exc.fields.items():
                getattr(form, name).errors = [*getattr(form, name).errors, str(message)]
            if not exc.fields:
                form.form_errors.append(str(exc.message))
            status = exc.http_status
    else:
        status = 422
    if rendered is None and status == 200:
        try:
            rendered = preview(kind, locale, {"subject": form.subject.data or "",
                                              "email_body": form.email_body.data or "",
                                              "sms_body": form.sms_body.data or ""})
        except DomainError:
            rendered = None
    return render_template("backoffice/admin_notification_template.html", kind=message_kind,
                           locale=locale, form=form, restore_form=restore_form,
                           rendered=rendered, changed=changed), status


@bp.route("/admin/notifications/templates/<kind>/<locale>/restore", methods=["POST"])
@role_required(Role.ADMIN)
def admin_notification_template_restore(kind: str, locale: str):
    _kind_or_404(kind, locale)
    if RestoreForm().validate_on_submit():
        with unit_of_work():
            if restore_template(kind, locale, actor_id=current_user.id):
                flash(_("The built-in text is in use again."), "success")
    return redirect(url_for("backoffice.admin_notification_template", kind=kind,
                            locale=locale))


def register_nav() -> None:
    nav_item("backoffice.admin_notifications", "Messages sent",
             (Role.ADMIN, Role.SUPERVISOR), section="admin", order=80)
    nav_item("backoffice.admin_notification_templates", "Message templates",
             (Role.ADMIN,), section="admin", order=85)
