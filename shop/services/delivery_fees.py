"""What delivery, international shipping, customs duty and handling cost, in dinars.

Every figure is a setting declared in shop.settings (read at start from the
environment, else its default); an administrator changes the fees in the back office
(app.overrides), so this module reads them with `current(...)`. Zones are tracking's
(tracking.services.postage), the same the counter prices postage by. The Iraqi customs
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

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from flask import current_app

from app.overrides import current
from tracking.services.customs import tariff_line_for
from tracking.services.postage import ZONE_LABELS as _ALL_ZONE_LABELS
from tracking.services.postage import ZONES, zone_between

ZONE_LABELS: dict[str, Any] = {z: _ALL_ZONE_LABELS[z] for z in ZONES}


def zone_for(origin: str | None, destination: str) -> str:
    """The delivery zone between two governorate codes (see the module docstring)."""
    return zone_between(origin or current_app.config["SHOP_EXCHANGE_GOVERNORATE"],
                        destination)


def _started_kg(weight_g: int) -> int:
    return max(1, -(-weight_g // 1000))


def delivery_fee(zone: str, weight_g: int, *, door: bool) -> int:
    """Domestic delivery of one consignment of `weight_g` grams in `zone`, in dinars."""
    table = current("SHOP_DELIVERY_FEES")[zone]
    fee = int(table["base"]) + int(table["per_kg"]) * (_started_kg(weight_g) - 1)
    return fee + (int(current("SHOP_DOOR_FEE")) if door else 0)


def international_shipping(weight_g: int) -> int:
    """Shipping a foreign consignment of `weight_g` grams to Iraq, in dinars."""
    table = current("SHOP_INTERNATIONAL_SHIPPING")
    return int(table["base"]) + int(table["per_kg"]) * _started_kg(weight_g)


def handling_fee() -> int:
    return int(current("SHOP_HANDLING_FEE"))


def bps_of(amount: int, bps: int) -> int:
    """`bps` basis points of a dinar amount, rounded half up (integers only)."""
    share = Decimal(amount) * bps / 10000
    return int(share.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def duty_rate_bps(hs_code: str | None) -> int:
    """The duty rate for an HS code from tracking's tariff (longest matching prefix), or
    the shop's default rate when the tariff has no line for it."""
    line = tariff_line_for(hs_code) if hs_code else None
    if line is not None:
        return int(line.rate_bp)
    return int(current_app.config["SHOP_DEFAULT_DUTY_BPS"])


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
            for k, v in current_app.config["SHOP_CUSTOMS_CATEGORIES"].items()]


def customs_category(key: str) -> CustomsCategory | None:
    return next((c for c in customs_categories() if c.key == key), None)


def category_duty_bps(category: CustomsCategory) -> int:
    """A buy-for-me category's duty rate: tracking's tariff for its HS prefix if it has a
    line, else the category's own configured rate."""
    line = tariff_line_for(category.hs) if category.hs else None
    return int(line.rate_bp) if line is not None else category.rate_bps


def service_fee(items_iqd: int) -> int:
    """The post's buy-for-me fee on an item price in dinars."""
    return max(int(current_app.config["SHOP_BUY_FOR_ME_MIN_SERVICE_FEE"]),
               bps_of(items_iqd, int(current_app.config["SHOP_BUY_FOR_ME_SERVICE_BPS"])))
