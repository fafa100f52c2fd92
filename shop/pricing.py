"""Prices in dinars: a foreign product's price converted at the current stored rate.

The one place the shop asks payments for an exchange rate is `_current_rate`; every
page and the cart go through `price_in_iqd`, so the rate used is always the stored one
and the conversion is always app.money.convert (integers, half up, no floats).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from app.money import convert
from payments.errors import NoExchangeRate
from payments.rates import rate_at
from shop.models import HOME_CURRENCY, Product


@dataclass(frozen=True, slots=True)
class ShopPrice:
    """What a shopper is shown: dinars, and for a foreign product the original beside it.

    `iqd` is None when no exchange rate is stored for the currency: the product can be
    shown but not sold until payments holds a rate.
    """

    iqd: int | None
    original: int
    currency: str
    rate: Decimal | None = None
    rate_id: int | None = None  # the payments.ExchangeRate row used, for checkout to store

    @property
    def is_foreign(self) -> bool:
        return self.currency != HOME_CURRENCY

    @property
    def rate_text(self) -> str:
        """The rate for people: 1310.5 rather than 1310.50000000."""
        return "" if self.rate is None else f"{self.rate.normalize():f}"


@dataclass(frozen=True, slots=True)
class Rate:
    value: Decimal  # IQD per one unit of the currency
    id: int


def _current_rate(currency: str) -> Rate | None:
    """The stored rate of `currency` to IQD valid now (payments), or None if none is set."""
    try:
        row = rate_at(currency, HOME_CURRENCY)
    except NoExchangeRate:
        return None
    return Rate(Decimal(row.rate), row.id)


Rates = dict[str, Rate | None]


def rates_for(currencies: set[str] | list[str]) -> Rates:
    """The current rate of each foreign currency, looked up once per page."""
    return {c: _current_rate(c) for c in set(currencies) if c != HOME_CURRENCY}


def convert_to_iqd(amount: int, currency: str, rates: Rates | None = None) -> ShopPrice:
    """`amount` minor units of `currency` as a ShopPrice in dinars."""
    if currency == HOME_CURRENCY:
        return ShopPrice(iqd=amount, original=amount, currency=currency)
    rate = rates[currency] if rates is not None and currency in rates else _current_rate(currency)
    if rate is None:
        return ShopPrice(iqd=None, original=amount, currency=currency)
    return ShopPrice(
        iqd=convert(amount, currency, HOME_CURRENCY, rate.value), original=amount,
        currency=currency, rate=rate.value, rate_id=rate.id,
    )


def price_in_iqd(product: Product, rates: Rates | None = None) -> ShopPrice:
    """The product's unit price in dinars (converted at the current stored rate when the
    merchant is foreign), with the original price and currency."""
    return convert_to_iqd(product.price, product.currency, rates)
