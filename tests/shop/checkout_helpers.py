"""Builders and fixtures for the checkout, order and buy-for-me tests.

Test modules import the fixtures they use from here (and the post card and
localstripe fixtures from tests.payments.conftest).
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest

from app.auth.models import PostOffice, Role, User
from app.database import db, unit_of_work
from shop.models import Address, Cart, CartLine, Merchant, Order, Product
from tests.shop.helpers import make_category, make_merchant, make_product

PASSWORD = "correct horse battery"
_seq = itertools.count(1)


def make_shopper(name: str = "Zainab Ali", *roles: Role) -> User:
    from app.auth.services import create_user

    n = next(_seq)
    user = create_user(f"{name} {n}", email=f"shopper{n}@example.iq", password=PASSWORD,
                       roles=roles or (Role.SHOPPER,))
    return db.get(User, user.id)


def login(client, user: User) -> None:
    res = client.post("/login", data={"identifier": user.email, "password": PASSWORD})
    assert res.status_code in (302, 303), res.status_code


def make_address(user: User, governorate: str = "IQ-BG", **kw) -> Address:
    values = dict(recipient_name="زينب علي", phone="+9647701234567",
                  governorate=governorate, district="الكرادة",
                  landmark="قرب جامع الرحمن", postal_code=None)
    values.update(kw)
    a = Address(user_id=user.id, **values)
    db.add(a)
    db.commit()
    return a


def put_in_cart(user: User, product: Product | int, quantity: int = 1) -> None:
    """What add_to_cart stores, written directly: the price seen is today's."""
    from shop.pricing import price_in_iqd

    if isinstance(product, int):
        product = db.get(Product, product)
    cart = db.query(Cart).filter_by(user_id=user.id).one_or_none()
    if cart is None:
        cart = Cart(user_id=user.id)
        db.add(cart)
        db.flush()
    price = price_in_iqd(product)
    cart.lines.append(CartLine(product_id=product.id, quantity=quantity,
                               seen_price=price.original, seen_currency=price.currency,
                               seen_price_iqd=price.iqd or 0))
    db.commit()


def door(address: Address) -> dict:
    return {"method": "door", "address_id": address.id}


def pickup(office: PostOffice, name: str = "Zainab Ali", phone: str = "07701234567") -> dict:
    return {"method": "pickup", "office_id": office.id, "recipient_name": name,
            "phone": phone}


def place(user: User, dest: dict, *, payment=None, key: str | None = None,
          digest: str | None = None) -> Order:
    """Quote the cart, then place it confirming exactly that quote, in one unit of work
    as the checkout page does (place_order only flushes)."""
    from shop.services import checkout

    payment = payment or checkout.PaymentChoice("stripe")
    if digest is None:
        quote = checkout.quote_cart(user, checkout.destination_for(user, **dest))
        digest = quote.digest
    with unit_of_work():
        return checkout.place_order(user.id, dest, payment=payment, seen_digest=digest,
                                    checkout_key=key or f"k{next(_seq)}")


@pytest.fixture()
def baghdad_shop(app_ctx) -> Merchant:
    m = make_merchant()
    db.commit()
    return m


@pytest.fixture()
def istanbul_shop(app_ctx) -> Merchant:
    m = make_merchant(country="TR", currency="TRY")
    db.commit()
    return m


@pytest.fixture()
def shelf(app_ctx):
    c = make_category()
    db.commit()
    return c


@pytest.fixture()
def rates(app_ctx):
    from payments.rates import add_rate

    return {"TRY": add_rate("TRY", Decimal("40")), "USD": add_rate("USD", Decimal("1310"))}


@pytest.fixture()
def shopper(app_ctx) -> User:
    return make_shopper()


def product(merchant: Merchant, category, **kw) -> Product:
    p = make_product(merchant, category, **kw)
    db.commit()
    return p


__all__ = ["make_category"]
