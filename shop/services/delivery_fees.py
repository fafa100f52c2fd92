"""What delivery, international shipping, customs duty and handling cost, in dinars.

Every figure is a setting (app.config, overridable by environment as JSON) with the
defaults below, so an administrator changes a fee without a release. The Iraqi customs
figures are weak-sourced (reference/README.md): treat them as estimates the shopper sees
before paying, not as the assessment customs makes on arrival.

Zones are counted from where the consignment starts in Iraq (the merchant's governorate,
or the office of exchange for goods from abroad) to where it is delivered (the address's
governorate, or the pickup post office's):
- same_governorate: both in one governorate;
- kurdistan: the route crosses into or out of the Kurdistan Region;
- other_governorate: anything else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l

KURDISTAN_REGION = frozenset({"IQ-AR", "IQ-DA", "IQ-SU", "IQ-HA"})  # Erbil, Duhok,
# Sulaymaniyah, Halabja

ZONES = ("same_governorate", "other_governorate", "kurdistan")
ZONE_LABELS: dict[str, Any] = {
    "same_governorate": _l("Within the governorate"),
    "other_governorate": _l("To another governorate"),
    "kurdistan": _l("To or from the Kurdistan Region"),
}

DEFAULTS: dict[str, Any] = {
    # Domestic delivery: `base` covers the first kilogram, `per_kg` each further started kg.
    "SHOP_DELIVERY_FEES": {
        "same_governorate": {"base": 3000, "per_kg": 500},
        "other_governorate": {"base": 6000, "per_kg": 1000},
        "kurdistan": {"base": 8000, "per_kg": 1000},
    },
    # Added when the postman brings it to the door rather than the shopper collecting it.
    "SHOP_DOOR_FEE": 2000,
    # International shipping of a foreign consignment to the office of exchange.
    "SHOP_INTERNATIONAL_SHIPPING": {"base": 10000, "per_kg": 12000},
    "SHOP_EXCHANGE_GOVERNORATE": "IQ-BG",
    # Duty rate when tracking's tariff has no line for the HS code (basis points).
    "SHOP_DEFAULT_DUTY_BPS": 1000,
    # Barid's fee for clearing a foreign consignment through customs.
    "SHOP_HANDLING_FEE": 5000,
    # Buy for me: the post's fee, a share of the item price with a floor.
    "SHOP_BUY_FOR_ME_SERVICE_BPS": 500,
    "SHOP_BUY_FOR_ME_MIN_SERVICE_FEE": 5000,
    # Customs categories a shopper picks for a buy-for-me article: an HS prefix to look
    # up in tracking's tariff, and the rate used when the tariff has no line for it.
    "SHOP_CUSTOMS_CATEGORIES": {
        "clothing": {"hs": "62", "rate_bps": 2000, "en": "Clothing", "ar": "ملابس"},
        "shoes": {"hs": "64", "rate_bps": 1500, "en": "Shoes", "ar": "أحذية"},
        "phones": {"hs": "8517", "rate_bps": 500, "en": "Phones", "ar": "هواتف"},
        "computers": {"hs": "8471", "rate_bps": 500, "en": "Computers and parts",
                      "ar": "حاسبات وأجزاؤها"},
        "audio": {"hs": "8518", "rate_bps": 1000, "en": "Headphones and speakers",
                  "ar": "سماعات ومكبرات صوت"},
        "watches": {"hs": "9102", "rate_bps": 1000, "en": "Watches", "ar": "ساعات"},
        "books": {"hs": "4901", "rate_bps": 50, "en": "Books", "ar": "كتب"},
        "toys": {"hs": "9503", "rate_bps": 1000, "en": "Toys", "ar": "ألعاب أطفال"},
        "beauty": {"hs": "3304", "rate_bps": 3000, "en": "Beauty products",
                   "ar": "مستحضرات تجميل"},
        "other": {"hs": "", "rate_bps": 1000, "en": "Other goods", "ar": "بضائع أخرى"},
    },
    # How long an order may wait for its payment before its stock is released (minutes).
    "SHOP_ORDER_PAYMENT_MINUTES": 30,
    # How long a buy-for-me quote stays open for the shopper (hours).
    "SHOP_QUOTE_VALID_HOURS": 72,
    # True: a post-card payment is held at checkout and captured once the order is
    # confirmed; False: it is taken at once.
    "SHOP_POST_CARD_HOLD": True,
}


def setting(name: str) -> Any:
    """A shop setting: app.config, else the environment (JSON), else the default."""
    if name in current_app.config:
        return current_app.config[name]
    raw = os.environ.get(name)
    if raw is not None:
        return json.loads(raw)
    return DEFAULTS[name]


def zone_for(origin: str | None, destination: str) -> str:
    """The delivery zone between two governorate codes (see the module docstring)."""
    origin = origin or setting("SHOP_EXCHANGE_GOVERNORATE")
    if origin == destination:
        return "same_governorate"
    if (origin in KURDISTAN_REGION) != (destination in KURDISTAN_REGION):
        return "kurdistan"
    return "other_governorate"


def _started_kg(weight_g: int) -> int:
    return max(1, -(-weight_g // 1000))


def delivery_fee(zone: str, weight_g: int, *, door: bool) -> int:
    """Domestic delivery of one consignment of `weight_g` grams in `zone`, in dinars."""
    table = setting("SHOP_DELIVERY_FEES")[zone]
    fee = int(table["base"]) + int(table["per_kg"]) * (_started_kg(weight_g) - 1)
    return fee + (int(setting("SHOP_DOOR_FEE")) if door else 0)


def international_shipping(weight_g: int) -> int:
    """Shipping a foreign consignment of `weight_g` grams to Iraq, in dinars."""
    table = setting("SHOP_INTERNATIONAL_SHIPPING")
    return int(table["base"]) + int(table["per_kg"]) * _started_kg(weight_g)


def handling_fee() -> int:
    return int(setting("SHOP_HANDLING_FEE"))


def bps_of(amount: int, bps: int) -> int:
    """`bps` basis points of a dinar amount, rounded half up (integers only)."""
    share = Decimal(amount) * bps / 10000
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def duty_rate_bps(hs_code: str | None) -> int:
    """The duty rate for an HS code from tracking's tariff (longest matching prefix), or
    the shop's default rate when the tariff has no line for it."""
    from tracking.services.customs import tariff_line_for

    line = tariff_line_for(hs_code) if hs_code else None
    return int(line.rate_bp) if line is not None else int(setting("SHOP_DEFAULT_DUTY_BPS"))


@dataclass(frozen=True)
class CustomsCategory:
    key: str
    hs: str
    rate_bps: int
    name_en: str
    name_ar: str

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en


def customs_categories() -> list[CustomsCategory]:
    return [CustomsCategory(k, v.get("hs", ""), int(v["rate_bps"]), v["en"], v["ar"])
            for k, v in setting("SHOP_CUSTOMS_CATEGORIES").items()]


def customs_category(key: str) -> CustomsCategory | None:
    return next((c for c in customs_categories() if c.key == key), None)


def category_duty_bps(category: CustomsCategory) -> int:
    """A buy-for-me category's duty rate: tracking's tariff for its HS prefix if it has a
    line, else the category's own configured rate."""
    from tracking.services.customs import tariff_line_for

    line = tariff_line_for(category.hs) if category.hs else None
    return int(line.rate_bp) if line is not None else category.rate_bps


def service_fee(items_iqd: int) -> int:
    """The post's buy-for-me fee on an item price in dinars."""
    return max(int(setting("SHOP_BUY_FOR_ME_MIN_SERVICE_FEE")),
               bps_of(items_iqd, int(setting("SHOP_BUY_FOR_ME_SERVICE_BPS"))))
