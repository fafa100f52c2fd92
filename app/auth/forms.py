"""Forms for login, sign-up, password change and the user administration pages.

Forms only shape input; the rules (what a valid phone is, who may be a clerk) live in
app.auth.services, whose field errors `show_errors` puts next to the right field.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.validators import EqualTo, InputRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from app.auth.models import OfficeKind, Role, office_kind_label, role_label
from app.errors import DomainError
from app.i18n import current_locale
from app.numbers import DIGITS

REQUIRED = _l("This field is required.")


class LoginForm(FlaskForm):
    identifier = StringField(_l("E-mail or mobile number"),
                             validators=[InputRequired(REQUIRED), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(REQUIRED)])
    remember = BooleanField(_l("Keep me logged in on this device"))
    submit = SubmitField(_l("Log in"))


class RegisterForm(FlaskForm):
    full_name = StringField(_l("Full name"),
                            validators=[InputRequired(REQUIRED), Length(max=200)])
    identifier = StringField(_l("E-mail or mobile number"),
                             validators=[InputRequired(REQUIRED), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(REQUIRED)])
    password_confirm = PasswordField(
        _l("Repeat the password"),
        validators=[InputRequired(REQUIRED),
                    EqualTo("password", _l("The two passwords are not the same."))],
    )
    submit = SubmitField(_l("Create account"))


class RegistrationCodeForm(FlaskForm):
    """The code from the sign-up message; Arabic-Indic digits are read too (services)."""

    code = StringField(_l("Code"), validators=[InputRequired(REQUIRED), Length(max=20)],
                       filters=DIGITS)
    submit = SubmitField(_l("Open my account"))


class ForgotPasswordForm(FlaskForm):
    identifier = StringField(_l("E-mail or mobile number"),
                             validators=[InputRequired(REQUIRED), Length(max=254)])
    submit = SubmitField(_l("Send me a code"))


class ResetPasswordForm(FlaskForm):
    """The code from the reset message and the new password; Arabic-Indic digits are
    read in the code (services)."""

    code = StringField(_l("Code"), validators=[InputRequired(REQUIRED), Length(max=20)],
                       filters=DIGITS)
    password = PasswordField(_l("New password"), validators=[InputRequired(REQUIRED)])
    password_confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[InputRequired(REQUIRED),
                    EqualTo("password", _l("The two passwords are not the same."))],
    )
    submit = SubmitField(_l("Set the new password"))


class ChangePasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"),
                                     validators=[InputRequired(REQUIRED)])
    new_password = PasswordField(_l("New password"), validators=[InputRequired(REQUIRED)])
    new_password_confirm = PasswordField(
        _l("Repeat the new password"),
        validators=[InputRequired(REQUIRED),
                    EqualTo("new_password", _l("The two passwords are not the same."))],
    )
    submit = SubmitField(_l("Change password"))


NOTIFY_CHOICES = (("both", _l("E-mail and SMS")), ("email", _l("E-mail only")),
                  ("sms", _l("SMS only")), ("none", _l("Neither: tell me nothing")))


class NotificationChannelsForm(FlaskForm):
    """How a citizen wants to be told what happens to their orders and parcels."""

    channels = RadioField(_l("Tell me what happens to my orders and parcels by"),
                          choices=NOTIFY_CHOICES, validators=[InputRequired(REQUIRED)])
    save_channels = SubmitField(_l("Save"))


class LogoutForm(FlaskForm):
    """Only a CSRF token: logging out is a POST so another site cannot do it for you."""

    submit = SubmitField(_l("Log out"))


class _MultiCheckbox(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def role_choices() -> list[tuple[str, str]]:
    return [(r.value, role_label(r)) for r in Role]


def office_choices(offices: list[Any], *, blank: Any) -> list[tuple[str, Any]]:
    loc = current_locale()
    return [("", blank)] + [(o.code, f"{o.name(loc)} ({o.code})") for o in offices]


class StaffUserForm(FlaskForm):
    """A person's details, to open an account or change one. No password: the person
    is sent a one-time code to choose their own."""

    full_name = StringField(_l("Full name"),
                            validators=[InputRequired(REQUIRED), Length(max=200)])
    email = StringField(_l("E-mail"), validators=[Optional(), Length(max=254)])
    phone = StringField(_l("Mobile number"), validators=[Optional(), Length(max=32)],
                        filters=DIGITS)
    roles = _MultiCheckbox(_l("Roles"), choices=[], validate_choice=False)
    post_office = SelectField(_l("Post office"), choices=[], validate_choice=False)
    submit = SubmitField(_l("Create user"))


class PersonActionForm(FlaskForm):
    """Only a CSRF token: disable, enable, force a new login, send a reset code."""

    submit = SubmitField(_l("Confirm"))


class GrantRoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=[], validate_choice=False)
    post_office = SelectField(_l("Post office"), choices=[], validate_choice=False)
    submit = SubmitField(_l("Grant role"))


class RevokeRoleForm(FlaskForm):
    role = HiddenField(validators=[InputRequired(REQUIRED)])
    submit = SubmitField(_l("Remove"))


class PostOfficeForm(FlaskForm):
    code = StringField(_l("Code"), validators=[InputRequired(REQUIRED), Length(max=16)],
                       filters=DIGITS)
    name_ar = StringField(_l("Name in Arabic"),
                          validators=[InputRequired(REQUIRED), Length(max=200)])
    name_en = StringField(_l("Name in English"),
                          validators=[InputRequired(REQUIRED), Length(max=200)])
    governorate = SelectField(_l("Governorate"), choices=[], validate_choice=False)
    kind = SelectField(_l("Kind of office"), choices=[], validate_choice=False)
    address = StringField(_l("Address"), validators=[Optional(), Length(max=500)])
    opening_hours = StringField(_l("Opening hours"), validators=[Optional(), Length(max=300)])
    submit = SubmitField(_l("Add post office"))


def office_kind_choices() -> list[tuple[str, str]]:
    return [(k.value, office_kind_label(k)) for k in OfficeKind]


def show_errors(form: FlaskForm, exc: DomainError, rename: dict[str, str] | None = None) -> None:
    """Put a service's field errors next to the form's fields (or above the form)."""
    rename = rename or {}
    placed = False
    for name, message in exc.fields.items():
        field = getattr(form, rename.get(name, name), None)
        if field is not None and hasattr(field, "errors"):
            field.errors = [*field.errors, str(message)]
            placed = True
    if not placed:
        form.form_errors.append(str(exc.message))
