"""Shopper-facing pages: sign up, log in, log out, the account and the password."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required, login_user, logout_user
from werkzeug.wrappers import Response

from app.auth import recovery, services
from app.auth.forms import (
    ChangePasswordForm,
    ForgotPasswordForm,
    LoginForm,
    LogoutForm,
    NotificationChannelsForm,
    RegisterForm,
    RegistrationCodeForm,
    ResetPasswordForm,
    show_errors,
)
from app.auth.identifiers import format_phone
from app.auth.models import Role
from app.database import unit_of_work
from app.errors import DomainError, RateLimited
from app.i18n import current_locale

bp = Blueprint("auth", __name__, static_folder="static", static_url_path="/auth/static")


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: `?next=https://evil.example` must not send people away."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else None


def _after_login_url(user) -> str:
    nxt = _safe_next(request.args.get("next"))
    if nxt:
        return nxt
    if user.is_staff:
        return url_for("backoffice.index")
    # A merchant starts at their shop's portal (when the shop domain is installed).
    if user.has_role(Role.MERCHANT) and "merchant_portal.index" in current_app.view_functions:
        return url_for("merchant_portal.index")
    return "/"


def rate_limited_response(exc: RateLimited) -> Response:
    """The 429 page with Retry-After, so browsers and scripts both know when to retry."""
    minutes = max(1, (exc.retry_after + 59) // 60)
    resp = make_response(
        render_template("auth/rate_limited.html", message=str(exc.message), minutes=minutes),
        429,
    )
    resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(_after_login_url(current_user))
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                outcome = services.attempt_login(form.identifier.data, form.password.data,
                                                 client_address=request.remote_addr)
            # Raised only now: the unit of work has committed the failure's audit record.
            if isinstance(outcome, DomainError):
                raise outcome
            user = outcome
        except RateLimited as exc:
            return rate_limited_response(exc)
        except DomainError as exc:
            form.form_errors.append(str(exc.message))
            status = exc.http_status
        else:
            login_user(user, remember=bool(form.remember.data))
            flash(_("Welcome, %(name)s.", name=user.full_name), "success")
            return redirect(_after_login_url(user))
    elif form.is_submitted():
        status = 422
    return render_template("auth/login.html", form=form,
                           next=_safe_next(request.args.get("next"))), status


# The browser's session remembers its pending sign-up between the two steps.
_PENDING, _PENDING_TO, _PENDING_NEXT = "registration", "registration_to", "registration_next"


@bp.route("/register", methods=["GET", "POST"])
def register():
    """Step one of sign-up. Every well-formed sign-up gets the same answer (on to the
    code page), whether or not the address already has an account: the message sent to
    the address is what differs, and only its owner reads it."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.account"))
    form = RegisterForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                pending = services.request_registration(
                    form.full_name.data, form.identifier.data, form.password.data,
                    client_address=request.remote_addr, locale=current_locale())
        except RateLimited as exc:
            return rate_limited_response(exc)
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            session[_PENDING] = pending.token
            session[_PENDING_TO] = pending.email or format_phone(pending.phone)
            session[_PENDING_NEXT] = _safe_next(request.args.get("next"))
            return redirect(url_for("auth.confirm_registration"))
    elif form.is_submitted():
        status = 422
    return render_template("auth/register.html", form=form), status


@bp.route("/register/confirm", methods=["GET", "POST"])
def confirm_registration():
    """Step two: the code from the message opens the account and logs it in."""
    if current_user.is_authenticated:
        return redirect(url_for("auth.account"))
    if not session.get(_PENDING):
        return redirect(url_for("auth.register"))
    form = RegistrationCodeForm()
    status = 200
    if form.validate_on_submit():
        with unit_of_work():
            outcome = services.confirm_registration(session.get(_PENDING), form.code.data)
        # Shown only now: the unit of work has committed the counted attempt.
        if isinstance(outcome, DomainError):
            show_errors(form, outcome)
            status = outcome.http_status
        else:
            nxt = session.get(_PENDING_NEXT)
            for key in (_PENDING, _PENDING_TO, _PENDING_NEXT):
                session.pop(key, None)
            login_user(outcome)
            flash(_("Your account is ready. Welcome to Barid, %(name)s.",
                    name=outcome.full_name), "success")
            return redirect(_safe_next(nxt) or "/")
    elif form.is_submitted():
        status = 422
    return render_template("auth/confirm_registration.html", form=form,
                           to=session.get(_PENDING_TO, "")), status


# The browser's session remembers the reset it is finishing (set by the form or the link).
_RESET = "password_reset"


@bp.route("/password/forgot", methods=["GET", "POST"])
def forgot_password():
    """Ask for a reset code. Every well-formed request gets the same answer (on to the
    code page), whether or not an account has that e-mail or mobile: only its holder
    gets a message."""
    form = ForgotPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                token = recovery.request_password_reset(form.identifier.data,
                                                        client_address=request.remote_addr)
        except RateLimited as exc:
            return rate_limited_response(exc)
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            session[_RESET] = token
            return redirect(url_for("auth.reset_password"))
    elif form.is_submitted():
        status = 422
    return render_template("auth/forgot_password.html", form=form), status


@bp.route("/password/reset/<token>")
def reset_link(token: str):
    """The link in the message: remember its reset, then show the code page without the
    token in the address (it would otherwise leak in history and Referer headers)."""
    session[_RESET] = token[:64]
    return redirect(url_for("auth.reset_password"))


@bp.route("/password/reset", methods=["GET", "POST"])
def reset_password():
    """The code from the message and a new password. Success ends every session of
    the account, and the person logs in with the new password."""
    if not session.get(_RESET):
        return redirect(url_for("auth.forgot_password"))
    form = ResetPasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                outcome = recovery.reset_password(session.get(_RESET), form.code.data,
                                                  form.password.data)
        except DomainError as exc:  # a weak password: no try was spent
            show_errors(form, exc)
            status = exc.http_status
        else:
            # Shown only now: the unit of work has committed the counted try.
            if isinstance(outcome, DomainError):
                show_errors(form, outcome)
                status = outcome.http_status
            else:
                session.pop(_RESET, None)
                if current_user.is_authenticated:
                    logout_user()
                flash(_("Your password has been changed and every session of your account "
                        "has been logged out. Log in with your new password."), "success")
                return redirect(url_for("auth.login"))
    elif form.is_submitted():
        status = 422
    return render_template("auth/reset_password.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    form = LogoutForm()
    if current_user.is_authenticated and form.validate_on_submit():
        with unit_of_work():
            # Rotates the session token: this session and any copy of its cookies end.
            services.log_out(current_user.id)
        logout_user()
        flash(_("You are logged out."), "info")
    return redirect("/")


@bp.route("/account", methods=["GET", "POST"])
@login_required
def account():
    form = NotificationChannelsForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                services.set_notification_channels(current_user.id, form.channels.data)
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            flash(_("Your choice is saved."), "success")
            return redirect(url_for("auth.account"))
    elif form.is_submitted():
        status = 422
    else:
        form.channels.data = services.notification_channels(current_user)
    return render_template("auth/account.html", logout_form=LogoutForm(),
                           channels_form=form), status


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    status = 200
    if form.validate_on_submit():
        try:
            with unit_of_work():
                user = services.change_password(current_user.id, form.current_password.data,
                                                form.new_password.data)
        except DomainError as exc:
            show_errors(form, exc)
            status = exc.http_status
        else:
            # The token changed, so this session must be re-issued to survive; keep its
            # remember-me cookie if it had one.
            cookie = current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
            login_user(user, remember=cookie in request.cookies)
            flash(_("Your password was changed. Every other session has been logged out."),
                  "success")
            return redirect(url_for("auth.account"))
    elif form.is_submitted():
        status = 422
    return render_template("auth/change_password.html", form=form), status
