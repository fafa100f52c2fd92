"""Shop: merchants, catalog, cart, checkout, orders, buy-for-me, the merchant API."""

from __future__ import annotations

from decimal import Decimal

from babel import Locale
from babel.numbers import get_currency_name
from flask import Flask

from app.backoffice import register_search
from app.barcodes import register_barcode
from app.i18n import current_locale
from app.settings import load_settings
from shop import api as merchant_api  # the merchant API, portal and webhooks
from shop import backoffice, barcodes, jobs, order_views, seed, settings, views  # noqa: F401
from shop.models import Product
from shop.pricing import Rates, ShopPrice, price_in_iqd

# Modules that define tables (see app.models_registry).
MODEL_MODULES: tuple[str, ...] = ("shop.models",)


def country_name(code: str) -> str:
    """A country's name in the visitor's language ("TR" -> "تركيا" / "Türkiye")."""
    try:
        return Locale.parse(current_locale()).territories.get(code, code)
    except (ValueError, TypeError):
        return code


def currency_name(code: str) -> str:
    """A currency's name in the visitor's language ("TRY" -> "ليرة تركية")."""
    return get_currency_name(code, locale=current_locale())


def bps_percent(bps: int) -> str:
    """Basis points as a percentage for people: 1250 -> "12.5 %"."""
    value = (Decimal(bps) / 100).normalize()
    return f"{value:f} %"


def init_app(app: Flask) -> None:
    """Register this domain's settings, blueprints, subscribers and commands.

    Importing seed registers its seeders, and jobs its subscribers and periodic jobs.
    """
    load_settings(app, "shop", settings.SETTINGS)
    views.init_app(app)
    order_views.init_app(app)
    backoffice.init_app(app)
    merchant_api.init_app(app)
    # An order's QR opens it at any counter; the search box finds orders and merchants.
    register_barcode(barcodes.ORDER_BARCODE, barcodes.open_order)
    register_search(barcodes.find_orders)
    register_search(barcodes.find_merchants)

    def shop_price(product: Product, rates: Rates | None = None) -> ShopPrice:
        return price_in_iqd(product, rates)

    app.add_template_global(shop_price, "shop_price")
    app.add_template_global(country_name, "country_name")
    app.add_template_global(bps_percent, "bps_percent")
    app.add_template_global(currency_name, "currency_name")
