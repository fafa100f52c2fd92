"""How people name themselves at login: an e-mail address or an Iraqi mobile number."""

from __future__ import annotations

import re

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from app.errors import ValidationFailed
from app.numbers import ascii_digits

# Iraqi mobile numbers are 07XX XXX XXXX at home, +964 7XX XXX XXXX abroad: a "7" and nine
# more digits after the country code. Stored as E.164, in ASCII digits: people type
# Arabic-Indic ones (٠٧٧٠...), which are turned into ASCII first.
_MOBILE = re.compile(r"^(?:\+964|00964|964|0)(7[0-9]{9})$")
_SEPARATORS = re.compile(r"[\s\-().]")
_PHONEISH = re.compile(r"^[+0-9\s\-().]+$")

BAD_PHONE = _l("Enter an Iraqi mobile number such as 0770 123 4567 or +964 770 123 4567.")
BAD_EMAIL = _l("Enter a valid e-mail address, such as name@example.com.")
BAD_IDENTIFIER = _l(
    "Enter your e-mail address or your Iraqi mobile number (0770 123 4567)."
)


def normalise_phone(raw: str, field: str = "phone") -> str:
    """"0770 123-4567", "+964 770 123 4567", "9647701234567" or "٠٧٧٠ ١٢٣ ٤٥٦٧" ->
    "+9647701234567".

    Raises ValidationFailed (on `field`) for anything that is not an Iraqi mobile number.
    """
    digits = _SEPARATORS.sub("", ascii_digits(raw or ""))
    m = _MOBILE.match(digits)
    if not m:
        raise ValidationFailed(BAD_PHONE, fields={field: BAD_PHONE})
    return "+964" + m.group(1)


def normalise_email(raw: str, field: str = "email") -> str:
    """A syntactically valid address, lower-cased. Raises ValidationFailed on `field`."""
    try:
        info = validate_email((raw or "").strip(), check_deliverability=False)
    except EmailNotValidError:
        raise ValidationFailed(BAD_EMAIL, fields={field: BAD_EMAIL}) from None
    return info.normalized.lower()


def parse_identifier(raw: str, field: str = "identifier") -> tuple[str, str]:
    """Tell an e-mail from a phone number: ("email", address) or ("phone", E.164).

    Raises ValidationFailed on `field` when it is neither.
    """
    raw = (raw or "").strip()
    if "@" in raw:
        return "email", normalise_email(raw, field)
    if raw and _PHONEISH.match(ascii_digits(raw)):
        return "phone", normalise_phone(raw, field)
    raise ValidationFailed(BAD_IDENTIFIER, fields={field: BAD_IDENTIFIER})


def format_phone(e164: str | None) -> str:
    """"+9647701234567" -> "+964 770 123 4567" for display."""
    if not e164 or not e164.startswith("+964") or len(e164) != 14:
        return e164 or ""
    n = e164[4:]
    return f"+964 {n[:3]} {n[3:6]} {n[6:]}"
