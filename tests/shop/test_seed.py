"""The demo shops: four active merchants (two local, two foreign) and forty-two products,
created once however often the seeder runs."""

from __future__ import annotations

from sqlalchemy import func, select

from app.auth.seed import seed_people
from app.database import db
from shop.models import Category, Merchant, Product
from shop.pricing import price_in_iqd
from shop.seed import seed_shops
from shop.services import catalog


def test_demo_shops_are_seeded_once_and_searchable(app_ctx):
    seed_people()
    seed_shops()
    seed_shops()

    shops = {m.slug: m for m in db.scalars(select(Merchant))}
    assert set(shops) == {"mutanabbi-books", "basra-electronics", "istanbul-bazaar",
                          "dubai-beauty"}
    assert all(m.is_active for m in shops.values())
    assert shops["basra-electronics"].post_office.code == "BSR-01"
    assert (shops["istanbul-bazaar"].currency, shops["dubai-beauty"].currency) == ("TRY", "AED")
    assert db.scalar(select(func.count()).select_from(Product)) == 42
    assert db.scalar(select(func.count()).select_from(Category)) == 9
    # Foreign products have a dinar price; search finds Arabic typed without hamza.
    for product in db.scalars(select(Product)):
        assert price_in_iqd(product).iqd > 0
    assert [p.title_en for p in catalog.search("المتنبي").items][0] == "Diwan of al-Mutanabbi"
    assert catalog.search("عطر").total >= 1
