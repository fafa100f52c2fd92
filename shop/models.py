"""Merchants, the catalog (categories and products) and carts."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    DDL,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.auth.models import PostOffice, User
from app.database import Base, append_only, utcnow
from app.geo import governorate
from shop.search import TEXT_VECTOR_SQL, TITLE_VECTOR_SQL, PostgresOnly, search_form

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
    # The search form (shop.search.search_form) of the titles, and of titles plus
    # descriptions: what search matches against. Rewritten on every write of the product.
    search_title: Mapped[str] = mapped_column(Text, default="")
    search_text: Mapped[str] = mapped_column(Text, default="")
    # Full-text vectors of those, generated by PostgreSQL from them (NULL on SQLite) and
    # never loaded with the product: only search reads them, in SQL.
    search_title_vector: Mapped[str | None] = mapped_column(
        TSVECTOR().with_variant(Text(), "sqlite"),
        Computed(PostgresOnly(TITLE_VECTOR_SQL), persisted=True), deferred=True)
    search_vector: Mapped[str | None] = mapped_column(
        TSVECTOR().with_variant(Text(), "sqlite"),
        Computed(PostgresOnly(TEXT_VECTOR_SQL), persisted=True), deferred=True)
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
    return search_form(f"{title_ar or ''} {title_en or ''}")


def search_text_for(title_ar: str | None, title_en: str | None,
                    description_ar: str | None, description_en: str | None) -> str:
    return search_form(
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
# Full-text lookups; fastupdate off for the same reason as above.
Index("ix_products_search_vector", Product.search_vector, postgresql_using="gin",
      postgresql_with={"fastupdate": "off"}).ddl_if(dialect="postgresql")
Index("ix_products_search_title_vector", Product.search_title_vector, postgresql_using="gin",
      postgresql_with={"fastupdate": "off"}).ddl_if(dialect="postgresql")


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


# -- addresses, orders, consignments -----------------------------------------------------

class DeliveryMethod(enum.StrEnum):
    DOOR = "door"  # a postman brings it to the address
    PICKUP = "pickup"  # the shopper collects it at a chosen post office


class Address(Base):
    """An entry of a shopper's address book, written the way Iraqi addresses work: a
    governorate, a district, and the nearest landmark a postman can ask for."""

    __tablename__ = "shop_addresses"
    __table_args__ = (
        CheckConstraint("postal_code IS NULL OR length(postal_code) = 5", name="postal_code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    recipient_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(16))  # E.164, +9647XXXXXXXXX
    governorate: Mapped[str] = mapped_column(String(8))  # ISO 3166-2 (IQ-HA for Halabja)
    district: Mapped[str] = mapped_column(String(120))
    landmark: Mapped[str] = mapped_column(String(200))
    postal_code: Mapped[str | None] = mapped_column(String(5))
    # Removed from the book; orders keep their own copy of the address anyway.
    archived: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def governorate_name(self, locale: str) -> str:
        place = governorate(self.governorate)
        return place.name(locale) if place else self.governorate


class OrderStatus(enum.StrEnum):
    PENDING_PAYMENT = "pending_payment"
    PAID = "paid"
    PROCESSING = "processing"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class ConsignmentStatus(enum.StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    OPEN = "open"  # paid: the merchant prepares it
    READY = "ready"  # handed over (or about to be): a parcel exists
    SHIPPED = "shipped"  # the post has it
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class OrderKind(enum.StrEnum):
    CATALOG = "catalog"  # products of shops listed on Barid
    BUY_FOR_ME = "buy_for_me"  # the post buys from a foreign web shop for the shopper


class Order(Base):
    """What a shopper bought in one checkout, priced in dinars on the server.

    Every amount is whole dinars; the exchange rates used are kept in `rates` and on each
    line. Stock is taken when the order is placed and given back if it expires or is
    cancelled. `status` is written only by shop.services.orders.apply_transition.
    """

    __tablename__ = "shop_orders"
    __table_args__ = (
        CheckConstraint("total >= 0 AND refunded_amount >= 0 AND refunded_amount <= total",
                        name="amounts"),
        CheckConstraint("delivery_method IN ('door', 'pickup')", name="delivery_method"),
        Index("ix_shop_orders_status_expires", "status", "expires_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16), default=OrderKind.CATALOG)
    status: Mapped[str] = mapped_column(String(24), default=OrderStatus.PENDING_PAYMENT,
                                        index=True)
    currency: Mapped[str] = mapped_column(String(3), default=HOME_CURRENCY)
    # The checkout form's one-time key: a double click places one order.
    checkout_key: Mapped[str | None] = mapped_column(String(80), unique=True)

    delivery_method: Mapped[str] = mapped_column(String(8))
    pickup_office_id: Mapped[int | None] = mapped_column(ForeignKey("post_offices.id"))
    # A copy of the address at the time of the order (the book may change later).
    recipient_name: Mapped[str] = mapped_column(String(200))
    phone: Mapped[str] = mapped_column(String(16))
    governorate: Mapped[str] = mapped_column(String(8))
    district: Mapped[str] = mapped_column(String(120), default="")
    landmark: Mapped[str] = mapped_column(String(200), default="")
    postal_code: Mapped[str | None] = mapped_column(String(5))

    items_total: Mapped[int] = mapped_column(default=0)
    delivery_fee: Mapped[int] = mapped_column(default=0)
    shipping_fee: Mapped[int] = mapped_column(default=0)  # international
    duty_estimate: Mapped[int] = mapped_column(default=0)
    # Customs' inspection and stamp fees paid ahead (buy for me), credited on arrival.
    customs_fees: Mapped[int] = mapped_column(default=0)
    handling_fee: Mapped[int] = mapped_column(default=0)
    service_fee: Mapped[int] = mapped_column(default=0)  # buy for me
    total: Mapped[int] = mapped_column(default=0)
    refunded_amount: Mapped[int] = mapped_column(default=0)
    # {"USD": {"rate": "1310", "id": 4}}: the stored rates this order was priced with.
    rates: Mapped[dict[str, Any]] = mapped_column(default=dict)

    payment_method: Mapped[str] = mapped_column(String(16))  # post_card, stripe
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"))
    placed_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    expires_at: Mapped[datetime | None]
    paid_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]  # cancelled, expired or refunded
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()
    pickup_office: Mapped[PostOffice | None] = relationship()
    consignments: Mapped[list[Consignment]] = relationship(
        back_populates="order", order_by="Consignment.id", cascade="all, delete-orphan")
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan")
    history: Mapped[list[OrderEvent]] = relationship(
        order_by="(OrderEvent.occurred_at, OrderEvent.id)", viewonly=True)

    @property
    def fees_total(self) -> int:
        return (self.delivery_fee + self.shipping_fee + self.duty_estimate
                + self.customs_fees + self.handling_fee + self.service_fee)

    def governorate_name(self, locale: str) -> str:
        place = governorate(self.governorate)
        return place.name(locale) if place else self.governorate


class Consignment(Base):
    """The part of an order one merchant fulfils (a buy-for-me order has one, with no
    merchant: the post buys it). It becomes a parcel when it is ready for handover."""

    __tablename__ = "shop_consignments"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id", ondelete="CASCADE"),
                                          index=True)
    merchant_id: Mapped[int | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    status: Mapped[str] = mapped_column(String(24), default=ConsignmentStatus.AWAITING_PAYMENT,
                                        index=True)
    zone: Mapped[str] = mapped_column(String(24))  # same_governorate, other_governorate, ...
    international: Mapped[bool] = mapped_column(default=False)
    weight_g: Mapped[int] = mapped_column(Integer, default=0)
    items_total: Mapped[int] = mapped_column(default=0)
    delivery_fee: Mapped[int] = mapped_column(default=0)
    shipping_fee: Mapped[int] = mapped_column(default=0)
    duty_estimate: Mapped[int] = mapped_column(default=0)
    customs_fees: Mapped[int] = mapped_column(default=0)
    handling_fee: Mapped[int] = mapped_column(default=0)
    service_fee: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    # Set when the consignment is handed to the post (the merchant API creates the parcel).
    parcel_id: Mapped[int | None] = mapped_column(ForeignKey("parcels.id"))
    tracking_number: Mapped[str | None] = mapped_column(String(13), index=True)
    acknowledged_at: Mapped[datetime | None]
    ready_at: Mapped[datetime | None]
    shipped_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    order: Mapped[Order] = relationship(back_populates="consignments")
    merchant: Mapped[Merchant | None] = relationship()
    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="consignment", order_by="OrderLine.id", viewonly=True)


class OrderLine(Base):
    """One article of an order: what the shopper was charged for it and how it was priced."""

    __tablename__ = "shop_order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id", ondelete="CASCADE"),
                                          index=True)
    consignment_id: Mapped[int] = mapped_column(ForeignKey("shop_consignments.id"), index=True)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    title_ar: Mapped[str] = mapped_column(String(300))
    title_en: Mapped[str] = mapped_column(String(300))
    options: Mapped[str] = mapped_column(String(200), default="")
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int]  # minor units of `currency`
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[str | None] = mapped_column(String(24))  # IQD per unit, as stored
    rate_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_rates.id"))
    unit_price_iqd: Mapped[int]
    line_total_iqd: Mapped[int]
    weight_g: Mapped[int] = mapped_column(Integer)  # per unit
    hs_code: Mapped[str | None] = mapped_column(String(6))
    duty_rate_bps: Mapped[int] = mapped_column(Integer, default=0)
    duty_estimate: Mapped[int] = mapped_column(default=0)

    order: Mapped[Order] = relationship(back_populates="lines")
    consignment: Mapped[Consignment] = relationship(back_populates="lines")
    product: Mapped[Product | None] = relationship()

    def title(self, locale: str) -> str:
        return self.title_ar if locale == "ar" else self.title_en


class OrderEvent(Base):
    """One step of an order's or a consignment's life: from, to, who, when, why."""

    __tablename__ = "shop_order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[int] = mapped_column(ForeignKey("shop_orders.id", ondelete="CASCADE"),
                                          index=True)
    consignment_id: Mapped[int | None] = mapped_column(ForeignKey("shop_consignments.id"))
    from_status: Mapped[str | None] = mapped_column(String(24))
    to_status: Mapped[str] = mapped_column(String(24))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


append_only(OrderEvent.__table__)


# -- buy for me ---------------------------------------------------------------------------

class BuyRequestStatus(enum.StrEnum):
    SUBMITTED = "submitted"  # waiting for procurement
    QUOTED = "quoted"  # procurement approved with a final quote
    REJECTED = "rejected"
    ACCEPTED = "accepted"  # the shopper accepted: an order awaits payment
    PAID = "paid"
    PURCHASED = "purchased"  # the post bought it abroad
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the shopper withdrew it before it was priced


class BuyRequest(Base):
    """A shopper's request that the post buy an article from a foreign web shop.

    The estimate is computed when the request is made; procurement's final quote may
    change price, weight and shipping. Amounts are dinars except `unit_price`, which is in
    the foreign shop's currency (minor units). `status` is written only by
    shop.services.buy_request_states.move_request, which records each step in
    BuyRequestEvent.
    """

    __tablename__ = "shop_buy_requests"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price > 0", name="price_positive"),
        CheckConstraint("weight_g > 0", name="weight_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(16), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=BuyRequestStatus.SUBMITTED,
                                        index=True)
    url: Mapped[str] = mapped_column(String(1000))
    title: Mapped[str] = mapped_column(String(300))
    options: Mapped[str] = mapped_column(String(200), default="")  # size, colour
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[int]  # minor units of `currency`, per item
    currency: Mapped[str] = mapped_column(String(3))
    weight_g: Mapped[int] = mapped_column(Integer)  # per item
    customs_category: Mapped[str] = mapped_column(String(32))
    # The landed cost in dinars as last computed (the estimate, then the quote).
    rate: Mapped[str] = mapped_column(String(24))
    rate_id: Mapped[int | None] = mapped_column(ForeignKey("exchange_rates.id"))
    items_iqd: Mapped[int] = mapped_column(default=0)
    shipping_fee: Mapped[int] = mapped_column(default=0)
    duty_estimate: Mapped[int] = mapped_column(default=0)
    customs_fees: Mapped[int] = mapped_column(default=0)  # inspection and stamp
    service_fee: Mapped[int] = mapped_column(default=0)
    total: Mapped[int] = mapped_column(default=0)
    estimate_total: Mapped[int] = mapped_column(default=0)  # what the shopper first saw

    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reviewed_at: Mapped[datetime | None]
    reject_reason: Mapped[str] = mapped_column(String(500), default="")
    quote_note: Mapped[str] = mapped_column(String(500), default="")
    quote_expires_at: Mapped[datetime | None]
    order_id: Mapped[int | None] = mapped_column(ForeignKey("shop_orders.id"))
    foreign_order_number: Mapped[str] = mapped_column(String(80), default="")
    foreign_tracking_number: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    status_changed_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship(foreign_keys=[user_id])
    reviewer: Mapped[User | None] = relationship(foreign_keys=[reviewer_id])
    order: Mapped[Order | None] = relationship()
    history: Mapped[list[BuyRequestEvent]] = relationship(
        order_by="(BuyRequestEvent.occurred_at, BuyRequestEvent.id)", viewonly=True)


class BuyRequestEvent(Base):
    """One step of a buy-for-me request's life: from, to, who, when, why.

    Written only by shop.services.buy_request_states (as OrderEvent is by the order
    state machine); never changed afterwards.
    """

    __tablename__ = "shop_buy_request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("shop_buy_requests.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)


append_only(BuyRequestEvent.__table__)
