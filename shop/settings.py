"""Shop's settings: what delivery, shipping, customs and handling cost, and how long an
order and a buy-for-me quote wait. Each is read once at start (app.settings) and used
from `current_app.config`.

The Iraqi customs figures are weak-sourced (reference/README.md): estimates the shopper
sees before paying, not the assessment customs makes on arrival. A table-shaped setting
is given in its environment variable as JSON.
"""

from __future__ import annotations

from app.settings import Setting, parse_bool, parse_json

SETTINGS: tuple[Setting, ...] = (
    Setting("SHOP_DELIVERY_FEES", parse=parse_json, default={
        "same_governorate": {"base": 3000, "per_kg": 500},
        "other_governorate": {"base": 6000, "per_kg": 1000},
        "kurdistan": {"base": 8000, "per_kg": 1000},
    }, doc="domestic delivery by zone, IQD: `base` covers the first kilogram, `per_kg` "
           "each further started kilogram (JSON)"),
    Setting("SHOP_DOOR_FEE", parse=int, default=2000,
            doc="IQD added when the postman brings it to the door"),
    Setting("SHOP_INTERNATIONAL_SHIPPING", parse=parse_json,
            default={"base": 10000, "per_kg": 12000},
            doc="shipping a foreign consignment to the office of exchange, IQD (JSON)"),
    Setting("SHOP_EXCHANGE_GOVERNORATE", default="IQ-BG",
            doc="where goods from abroad enter Iraq (the office of exchange)"),
    Setting("SHOP_DEFAULT_DUTY_BPS", parse=int, default=1000,
            doc="duty rate (basis points) when tracking's tariff has no line"),
    Setting("SHOP_HANDLING_FEE", parse=int, default=5000,
            doc="IQD for clearing a foreign consignment through customs"),
    Setting("SHOP_BUY_FOR_ME_SERVICE_BPS", parse=int, default=500,
            doc="buy for me: the post's fee, basis points of the item price"),
    Setting("SHOP_BUY_FOR_ME_MIN_SERVICE_FEE", parse=int, default=5000,
            doc="buy for me: the smallest service fee, IQD"),
    Setting("SHOP_CUSTOMS_CATEGORIES", parse=parse_json, default={
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
    }, doc="buy-for-me customs categories: an HS prefix to look up in tracking's tariff "
           "and the rate (basis points) when it has no line (JSON)"),
    Setting("SHOP_ORDER_PAYMENT_MINUTES", parse=int, default=30,
            doc="minutes an order waits for its payment before its stock is released"),
    Setting("SHOP_QUOTE_VALID_HOURS", parse=int, default=72,
            doc="hours a buy-for-me quote stays open for the shopper"),
    Setting("SHOP_QUOTE_ANSWER_HOURS", parse=int, default=48,
            doc="hours within which procurement answers a buy-for-me request (the "
                "shopper is told to expect the price by then)"),
    Setting("SHOP_POST_CARD_HOLD", parse=parse_bool, default=True,
            doc="hold a post-card payment at checkout and capture it once the order is "
                "confirmed (off: take it at once)"),
)
