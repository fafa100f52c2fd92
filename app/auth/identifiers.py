"""How people name themselves at login: an e-mail address or an Iraqi mobile number."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from app.errors import ValidationFailed
from app.numbers import ascii_digits

# One rule for every phone number Barid takes, from Google's libphonenumber metadata (the
# `phonenumbers` package) rather than patterns of our own, which go stale as operators get
# new ranges. People type 0770..., +964 770..., 00964..., with spaces, dashes or
# Arabic-Indic digits (٠٧٧٠...); the digits are turned into ASCII first and the number is
# stored as E.164. Accounts, post cards and one-time codes need an Iraqi mobile (the SMS
# gateway reaches Iraqi networks); a parcel's sender or addressee may have any country's
# number.
_SEPARATORS = re.compile(r"[\s\-().]")
_PHONEISH = re.compile(r"^[+0-9\s\-().]+$")
_MOBILE_TYPES = (phonenumbers.PhoneNumberType.MOBILE,
                 phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)

BAD_PHONE = _l("Enter an Iraqi mobile number such as 0770 123 4567 or +964 770 123 4567.")
BAD_ANY_PHONE = _l("Enter a phone number such as 0770 123 4567, or with its country code "
                   "such as +44 20 7946 0018.")
BAD_EMAIL = _l("Enter a valid e-mail address, such as name@example.com.")
BAD_IDENTIFIER = _l(
    "Enter your e-mail address or your Iraqi mobile number (0770 123 4567)."
)


def parse_phone(raw: str | None, *, iraqi_mobile: bool = True, region: str = "IQ") -> str | None:
    """The E.164 form ("+9647701234567") of a phone number as people type it, or None when
    it is not a valid number (or, with `iraqi_mobile`, not an Iraqi mobile number). A
    number without its country code is read as one of `region` (ISO 3166 alpha-2)."""
    text = _SEPARATORS.sub("", ascii_digits(raw or ""))
    if not text or not _PHONEISH.match(text) or len(text) > 20:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    elif text.startswith("964") and len(text) == 13:
        text = "+" + text  # "9647701234567": the country code without its plus
    try:
        number = phonenumbers.parse(text, region if not iraqi_mobile else "IQ")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    if iraqi_mobile and (number.country_code != 964
                         or phonenumbers.number_type(number) not in _MOBILE_TYPES):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_phone(raw: str, field: str = "phone", *, iraqi_mobile: bool = True,
                    region: str = "IQ") -> str:
    """"0770 123-4567", "+964 770 123 4567", "9647701234567" or "٠٧٧٠ ١٢٣ ٤٥٦٧" ->
    "+9647701234567". With `iraqi_mobile=False` any country's valid number is taken
    ("+44 20 7946 0018" -> "+442079460018"; a number without a country code is read as
    one of `region`).

    Raises ValidationFailed (on `field`) for anything else.
    """
    e164 = parse_phone(raw, iraqi_mobile=iraqi_mobile, region=region)
    if e164 is None:
        message = BAD_PHONE if iraqi_mobile else BAD_ANY_PHONE
        raise ValidationFailed(message, fields={field: message})
    return e164


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
    """"+9647701234567" -> "+964 770 123 4567": the one way Barid shows a phone number
    (international format, so it reads the same in Arabic and English pages inside
    <bdi>). Anything that does not parse is shown as stored."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
