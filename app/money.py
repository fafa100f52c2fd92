"""Money is an integer in the currency's minor unit and an ISO 4217 code. No floats.

IQD is kept in whole dinars (fils are not in circulation), the others in cents or their
equivalent. Conversions go through `convert`, with a rate given as a Decimal string
that the caller stores on whatever the conversion priced.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from babel.numbers import format_currency

# Minor-unit exponents. IQD is 3 on paper (ISO 4217) but whole dinars in practice.
EXPONENT: dict[str, int] = {
    "IQD": 0,
    "USD": 2,
    "EUR": 2,
    "TRY": 2,
    "AED": 2,
    "CNY": 2,
    "GBP": 2,
    "SAR": 2,
    "JOD": 3,
    "KWD": 3,
}


class MoneyError(ValueError):
    """An amount or currency that money code refuses (unknown currency, mixed currencies)."""


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise MoneyError("money amounts are integers in minor units")
        if self.currency not in EXPONENT:
            raise MoneyError(f"unknown currency {self.currency!r}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(f"cannot combine {self.currency} and {other.currency}")

    def to_decimal(self) -> Decimal:
        return Decimal(self.amount).scaleb(-EXPONENT[self.currency])

    def format(self, locale: str = "ar") -> str:
        return format_money(self.amount, self.currency, locale)


def to_minor(value: Decimal | str | int, currency: str) -> int:
    """Turn a major-unit amount ("12.50" USD) into minor units (1250), rounding half up."""
    exp = EXPONENT[currency]
    q = (Decimal(str(value)).scaleb(exp)).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(q)


def convert(amount: int, from_currency: str, to_currency: str, rate: Decimal | str) -> int:
    """Convert minor units with `rate` = units of `to_currency` per one `from_currency`.

    Rounds half up to the target's minor unit.
    """
    major = Decimal(amount).scaleb(-EXPONENT[from_currency]) * Decimal(str(rate))
    return to_minor(major, to_currency)


def format_money(amount: int, currency: str, locale: str = "ar") -> str:
    """Format minor units for people, e.g. 25000 IQD -> "25,000 IQD" in English.

    Arabic uses Latin digits (as Iraqi prices and receipts commonly do) with the
    currency code, so amounts read the same in both languages.
    """
    exp = EXPONENT[currency]
    value = Decimal(amount).scaleb(-exp)
    fmt = "#,##0" if exp == 0 else "#,##0." + "0" * exp
    loc = "en" if locale.startswith("ar") else locale
    text = format_currency(value, currency, format=fmt + " ¤¤", locale=loc, currency_digits=False)
    return text.replace("\xa0", " ")
