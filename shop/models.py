"""Merchants, the catalog (categories and products) and carts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import PostOffice, User
from app.database import Base, utcnow
from shop.search import normalise

HOME_COUNTRY = "IQ"
HOME_CURRENCY = "IQD"
# Currencies a foreign merchant may price in (Barid holds exchange rates for these).
FOREIGN_CURRENCIES = ("USD", "EUR", "TRY", "AED", "CNY")


class MerchantStatus(enum.StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Merchant(Base):
    """A shop selling on Barid: local (in Iraq, prices in IQD) or foreign.

    A local merchant hands its parcels over at `post_office`; a foreign one ships to the
    office of exchange. Only an active merchant's products are shown.
    """

    __tablename__ = "merchants"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'active', 'suspended')", name="status"),
        CheckConstraint(
            "commission_bps >= 0 AND commission_bps <= 10000", name="commission_range"
        ),
        # Local means Iraq and dinars; a foreign shop never prices in dinars.
        CheckConstraint(
            "(country = 'IQ' AND currency = 'IQD') OR "
            "(country <> 'IQ' AND currency IN ('USD', 'EUR', 'TRY', 'AED', 'CNY'))",
            name="country_currency",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    country: Mapped[str] = mapped_column(String(2), default=HOME_COUNTRY)  # ISO 3166-1
    currency: Mapped[str] = mapped_column(String(3), default=HOME_CURRENCY)
    status: Mapped[str] = mapped_column(String(16), default=MerchantStatus.PENDING, index=True)
    # Barid's share of each sale, in basis points (1250 = 12.5 %).
    commission_bps: Mapped[int] = mapped_column(Integer, default=0)
    post_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    # Where a local shop is (ISO 3166-2, e.g. IQ-BG): delivery zones are counted from it.
    governorate: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    status_changed_at: Mapped[datetime | None]

    post_office: Mapped[PostOffice | None] = relationship()
    owner: Mapped[User] = relationship()

    @property
    def is_local(self) -> bool:
        return self.country == HOME_COUNTRY

    @property
    def is_active(self) -> bool:
        return self.status == MerchantStatus.ACTIVE

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en

    def governorate_name(self, locale: str) -> str:
        from app.geo import governorate

        place = governorate(self.governorate) if self.governorate else None
        return place.name(locale) if place else ""


class Category(Base):
    """A shelf of the catalog. Two levels at most: a top category and its children."""

    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("categories.id"), index=True)
    slug: Mapped[str] = mapped_column(String(80), unique=True)
    name_ar: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer, default=0)

    parent: Mapped[Category | None] = relationship(remote_side=[id], back_populates="children")
    children: Mapped[list[Category]] = relationship(
        back_populates="parent", order_by="Category.position"
    )

    def name(self, locale: str) -> str:
        return self.name_ar if locale == "ar" else self.name_en


class Product(Base):
    """An article a merchant sells. The price is in the merchant's currency, in minor
    units; weight, HS code and origin are what customs needs for foreign parcels."""

    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("weight_g > 0", name="weight_positive"),
        CheckConstraint("length(hs_code) = 6", name="hs_code_six_digits"),
        UniqueConstraint("merchant_id", "merchant_sku"),
        Index("ix_products_merchant_active", "merchant_id", "active"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    # The merchant's own reference, so a catalog sync can find the product again.
    merchant_sku: Mapped[str | None] = mapped_column(String(64))
    title_ar: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300))
    description_ar: Mapped[str] = mapped_column(Text, default="")
    description_en: Mapped[str] = mapped_column(Text, default="")
    price: Mapped[int]  # minor units of merchant.currency
    stock: Mapped[int] = mapped_column(Integer, default=0)
    weight_g: Mapped[int] = mapped_column(Integer)
    hs_code: Mapped[str] = mapped_column(String(6))
    origin_country: Mapped[str] = mapped_column(String(2))
    active: Mapped[bool] = mapped_column(default=True)
    image_url: Mapped[str] = mapped_column(String(500), default="")
    # Normalised (shop.search.normalise) titles, and titles plus descriptions: what
    # search matches against. Rewritten on every write of the product.
    search_title: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    merchant: Mapped[Merchant] = relationship(lazy="joined")
    category: Mapped[Category] = relationship()

    @property
    def currency(self) -> str:
        return self.merchant.currency

    @property
    def in_stock(self) -> bool:
        return self.stock > 0

    @property
    def purchasable(self) -> bool:
        return self.active and self.merchant.is_active

    def title(self, locale: str) -> str:
        return self.title_ar if locale == "ar" else self.title_en

    def description(self, locale: str) -> str:
        return self.description_ar if locale == "ar" else self.description_en

    def refresh_search(self) -> None:
        """Recompute the normalised search columns from the titles and descriptions."""
        self.search_title = search_title_for(self.title_ar, self.title_en)
        self.search_text = search_text_for(
            self.title_ar, self.title_en, self.description_ar, self.description_en
        )


def search_title_for(title_ar: str | None, title_en: str | None) -> str:
    return normalise(f"{title_ar or ''} {title_en or ''}")


def search_text_for(title_ar: str | None, title_en: str | None,
                    description_ar: str | None, description_en: str | None) -> str:
    return normalise(
        f"{title_ar or ''} {title_en or ''} {description_ar or ''} {description_en or ''}"
    )


# The trigram index needs pg_trgm; the extension is created before the table (the test
# database is created fresh, and migrations must do the same).
event.listen(
    Product.__table__,
    "before_create",
    DDL("CREATE EXTENSION IF NOT EXISTS pg_trgm").execute_if(dialect="postgresql"),
)
# fastupdate off: new and changed products go straight into the index instead of a
# pending list that every search scans until the next vacuum. The catalog is read far
# more than written, so searches stay fast right after a bulk catalog sync.
Index(
    "ix_products_search_text_trgm",
    Product.search_text,
    postgresql_using="gin",
    postgresql_ops={"search_text": "gin_trgm_ops"},
    postgresql_with={"fastupdate": "off"},
).ddl_if(dialect="postgresql")


@event.listens_for(Product, "before_insert")
@event.listens_for(Product, "before_update")
def _keep_search_current(_mapper: Any, _conn: Any, product: Product) -> None:
    # Every ORM write path (services, the seeder, the future merchant API) keeps the
    # search columns in step with the text, on SQLite as on PostgreSQL.
    product.refresh_search()


class Cart(Base):
    """A logged-in shopper's cart. Anonymous visitors keep theirs in the session until
    they log in (shop.services.cart merges it)."""

    __tablename__ = "carts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[CartLine]] = relationship(
        back_populates="cart", cascade="all, delete-orphan", order_by="CartLine.id"
    )


class CartLine(Base):
    """One product in a cart, with the price the shopper saw when putting it there, so
    checkout can say when the price (or the exchange rate) changed since."""

    __tablename__ = "cart_lines"
    __table_args__ = (
        UniqueConstraint("cart_id", "product_id"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    cart_id: Mapped[int] = mapped_column(ForeignKey("carts.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    seen_price: Mapped[int]  # minor units of seen_currency
    seen_currency: Mapped[str] = mapped_column(String(3))
    seen_price_iqd: Mapped[int]
    added_at: Mapped[datetime] = mapped_column(default=utcnow)

    cart: Mapped[Cart] = relationship(back_populates="lines")
    product: Mapped[Product] = relationship()
