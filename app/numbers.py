"""Numbers people type: whole amounts, quantities, weights and ids, and their bounds.

Every number a form or a URL takes is read here, so a clerk who types "١٢٣" on an
Arabic keyboard gets 123, and "abc", "-5", "1e9999" or a hundred digits get a plain
field error instead of reaching the database (a bind beyond BIGINT is a 500 on
PostgreSQL).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import StringField
from wtforms.validators import ValidationError
from wtforms.widgets import HiddenInput

# The largest value a BIGINT column (ids, money) holds on PostgreSQL.
MAX_BIGINT = 2**63 - 1
# A 32-bit INTEGER column (quantities, grams, centimetres).
MAX_INT = 2**31 - 1

# Business maxima, well below the columns: anything above is a typing mistake.
MAX_PRICE = 1_000_000_000        # a product's price, minor units of its currency
MAX_STOCK = 1_000_000            # items of one product in stock
MAX_LINE_QUANTITY = 1_000        # items on one order line or declared article
MAX_AMOUNT = 1_000_000_000_000   # any single payment or refund, in minor units
MAX_GRAMS = 1_000_000            # one tonne: above any parcel or article
MAX_CM = 1_000                   # ten metres: above any parcel's side
MAX_PAGE = 100_000               # a page number of a listing

# Digits people type besides ASCII: Arabic-Indic (٠-٩), Extended Arabic-Indic as on
# Persian/Urdu keyboards (۰-۹); and the Arabic thousands separator (٬).
_DIGITS = {**{0x0660 + d: str(d) for d in range(10)},
           **{0x06F0 + d: str(d) for d in range(10)},
           0x066C: ",", 0x066B: "."}
_WHOLE = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+")
_DECIMAL = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
# Far more digits than any bound needs; int() of longer strings is only slow.
_MAX_DIGITS = 30


def ascii_digits(raw: str) -> str:
    """`raw` with Arabic-Indic digits and separators turned into ASCII ones, trimmed."""
    return raw.translate(_DIGITS).strip()


def typed_digits(raw: str | None) -> str | None:
    """A form filter for fields made of digits (PINs, card numbers, codes, ID and phone
    numbers): Arabic-Indic digits become ASCII, so they are checked and stored as ASCII.
    Letters are left alone for the field's own validator to refuse."""
    return ascii_digits(raw) if isinstance(raw, str) else raw


# `filters=DIGITS` on a WTForms field that takes digits.
DIGITS = (typed_digits,)


def parse_whole(raw: str | None) -> int | None:
    """A whole, non-negative number as people write it ("75,000", "١٢٣"), or None when it
    is not one (letters, a sign, a fraction, an exponent, too many digits)."""
    text = ascii_digits(raw or "")
    if not _WHOLE.fullmatch(text) or len(text) > _MAX_DIGITS:
        return None
    return int(text.replace(",", ""))


def parse_decimal(raw: str | None) -> Decimal | None:
    """A non-negative decimal as people write it ("49.99", "1,250.5", "٤٩٫٩٩"), or None
    (no exponent, NaN or infinity: only digits, thousands commas and one point)."""
    text = ascii_digits(raw or "")
    if not _DECIMAL.fullmatch(text) or len(text) > _MAX_DIGITS:
        return None
    try:
        return Decimal(text.replace(",", ""))
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid numbers
        return None


class DecimalAmountField(StringField):
    """An amount in major units as people write it ("49.99", "٤٩٫٩٩", "1,250"), from above
    zero up to `max`. `data` stays text, written back in ASCII digits without separators
    ("1250") so the view's money parser reads it; anything else is this field's error."""

    def __init__(self, label: Any = None, validators: Any = None, *,
                 max: int = MAX_PRICE, **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.max = max
        self.raw_text = ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.raw_text = str(valuelist[0]) if valuelist else ""
        number = parse_decimal(self.raw_text)
        self.data = f"{number:f}" if number is not None else self.raw_text

    def _value(self) -> str:
        return self.raw_text if self.raw_data else (self.data or "")

    def pre_validate(self, form: Any) -> None:
        if not self.raw_text.strip():
            return  # InputRequired/Optional decide about an empty field
        number = parse_decimal(self.raw_text)
        if number is None:
            raise ValidationError(str(_l("Enter the amount in digits, such as 49.99.")))
        if not 0 < number <= self.max:
            raise ValidationError(str(_l("Enter an amount above zero and at most %(max)s.",
                                         max=f"{self.max:,}")))


class WholeNumberField(StringField):
    """A whole number between `min` and `max` (`max` may be a function, read when the
    form is validated, e.g. a setting). `data` is the int, or None when left empty;
    anything else is this field's error, in the visitor's language.

    `invalid` is said of what is not a whole number, `too_small` and `too_large` of one
    outside the bounds (each defaults to one sentence naming both); any may use %(min)s
    and %(max)s, written by `show` (a money formatter for amounts)."""

    def __init__(self, label: Any = None, validators: Any = None, *, min: int = 1,
                 max: int | Callable[[], int] = MAX_BIGINT, invalid: Any = None,
                 too_small: Any = None, too_large: Any = None,
                 show: Callable[[int], str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(label, validators, **kwargs)
        self.min = min
        self.max = max
        self.invalid = invalid
        self.too_small = too_small
        self.too_large = too_large
        self.show = show or (lambda n: f"{n:,}")
        self.raw_text = ""

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.raw_text = str(valuelist[0]) if valuelist else ""
        self.data = parse_whole(self.raw_text) if self.raw_text.strip() else None

    def _value(self) -> str:
        # Show what was typed when it was wrong, so the clerk sees the mistake.
        if self.raw_data:
            return self.raw_text
        return "" if self.data is None else str(self.data)

    def pre_validate(self, form: Any) -> None:
        if not self.raw_text.strip():
            return  # InputRequired/Optional decide about an empty field
        top = self.max() if callable(self.max) else self.max
        bounds = {"min": self.show(self.min), "max": self.show(top)}
        if self.data is None:
            message = self.invalid or _l("Enter a whole number, in digits only.")
        elif self.data < self.min:
            message = self.too_small or _l("Enter a number from %(min)s to %(max)s.")
        elif self.data > top:
            message = self.too_large or _l("Enter a number from %(min)s to %(max)s.")
        else:
            return
        self.data = None
        text = str(message)
        raise ValidationError(text % bounds if "%(" in text else text)


class HiddenIdField(WholeNumberField):
    """A row id a page sends back in a hidden input: 1 to MAX_BIGINT, else a field error
    (a tampered "abc" or 2**70 never reaches the database)."""

    widget = HiddenInput()

    def __init__(self, label: Any = None, validators: Any = None, **kwargs: Any) -> None:
        kwargs.setdefault("invalid", _l("This item is not available."))
        kwargs.setdefault("too_small", kwargs["invalid"])
        kwargs.setdefault("too_large", kwargs["invalid"])
        super().__init__(label, validators, min=1, max=MAX_BIGINT, **kwargs)
