"""Builders for the shop's tests: people, merchants, categories, products, rates."""

from __future__ import annotations

import itertools

from app.auth.models import PostOffice, Role, User, UserRole
from app.database import db, unit_of_work
from payments.rates import add_rate
from shop.models import Category, Merchant, MerchantStatus, Product

_seq = itertools.count(1)


def make_user(*roles: Role, name: str = "Test Person") -> User:
    n = next(_seq)
    user = User(email=f"person{n}@example.iq", full_name=name, password_hash="x")
    db.add(user)
    db.flush()
    for role in roles:
        db.add(UserRole(user_id=user.id, role=role))
    db.flush()
    return user


def make_office(code: str = "BGD01") -> PostOffice:
    office = PostOffice(code=f"{code}{next(_seq)}", name_ar="مكتب بريد بغداد",
                        name_en="Baghdad post office", governorate="IQ-BG")
    db.add(office)
    db.flush()
    return office


def make_merchant(*, country: str = "IQ", currency: str = "IQD",
                  status: str = MerchantStatus.ACTIVE, slug: str | None = None) -> Merchant:
    n = next(_seq)
    owner = make_user(Role.MERCHANT, name=f"Owner {n}")
    merchant = Merchant(
        slug=slug or f"shop-{n}", name_ar=f"متجر {n}", name_en=f"Shop {n}", country=country,
        currency=currency, status=status, owner_id=owner.id,
        post_office_id=make_office().id if country == "IQ" else None,
        governorate="IQ-BG" if country == "IQ" else None,
    )
    db.add(merchant)
    db.flush()
    return merchant


def make_category(slug: str | None = None, parent: Category | None = None) -> Category:
    n = next(_seq)
    category = Category(slug=slug or f"cat-{n}", name_ar=f"قسم {n}", name_en=f"Category {n}",
                        parent_id=parent.id if parent else None)
    db.add(category)
    db.flush()
    return category


def make_product(merchant: Merchant, category: Category | None = None, **fields) -> Product:
    values = {
        "title_ar": "منتج", "title_en": "Product", "price": 10_000, "stock": 10,
        "weight_g": 500, "hs_code": "851712", "origin_country": merchant.country,
    }
    values.update(fields)
    product = Product(merchant_id=merchant.id,
                      category_id=(category or make_category()).id, **values)
    db.add(product)
    db.flush()
    return product


def set_rate(currency: str, rate: str) -> None:
    """Store an exchange rate through payments (IQD per one unit of `currency`)."""

    with unit_of_work():  # add_rate flushes only; the helper stores the rate for good
        add_rate(currency, rate)
