"""Shoppers racing for the last unit on the embedded SQLite database, in a process of its
own (create_app binds the process-wide engine, which the suite keeps on PostgreSQL).

    python -m tests.shop.sqlite_race <folder> [shoppers]

Builds a fresh SQLite file in <folder>, puts one product with one unit in stock in
every shopper's cart, lets them all place their order at the same moment (one thread
each, its own session) and prints what happened as JSON: the answers, the stock left
and the orders written.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from sqlalchemy import func, select

from app import create_app
from app.database import Base, db, get_engine, unit_of_work
from app.models_registry import load_all
from shop.models import Order, OrderLine, Product
from shop.services import checkout
from shop.services.checkout import SoldOut
from tests.conftest import TEST_CONFIG
from tests.shop.checkout_helpers import door, make_address, make_shopper, put_in_cart
from tests.shop.helpers import make_category, make_merchant, make_product


def race(folder: Path, shoppers: int) -> dict[str, object]:
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{folder / 'race.sqlite3'}"})
    load_all()
    with app.app_context():
        Base.metadata.create_all(get_engine())
        shop = make_merchant()
        last = make_product(shop, make_category(), stock=1)
        db.commit()
        plans = []
        for i in range(shoppers):
            person = make_shopper(f"Racer {i}")
            put_in_cart(person, last)
            dest = door(make_address(person))
            quote = checkout.quote_cart(person, checkout.destination_for(person, **dest))
            plans.append((person.id, dest, quote.digest))
        product_id = last.id
        db.remove()

    barrier = threading.Barrier(shoppers)
    answers: list[str] = []

    def place(user_id: int, dest: dict, digest: str) -> None:
        with app.app_context():
            try:
                barrier.wait()
                with unit_of_work():
                    order = checkout.place_order(
                        user_id, dest, payment=checkout.PaymentChoice("stripe"),
                        seen_digest=digest, checkout_key=f"race-{user_id}")
                answers.append(f"order {order.id}")
            except SoldOut as exc:
                answers.append(f"{exc.code}: {exc.message}")
            except Exception as exc:  # noqa: BLE001  (reported, and the test fails on it)
                answers.append(f"error: {type(exc).__name__}: {exc}")
            finally:
                db.remove()

    threads = [threading.Thread(target=place, args=plan) for plan in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    with app.app_context():
        result = {
            "dialect": get_engine().dialect.name,
            "answers": answers,
            "stock": db.scalar(select(Product.stock).where(Product.id == product_id)),
            "orders": db.scalar(select(func.count(Order.id))),
            "units_sold": db.scalar(select(func.coalesce(func.sum(OrderLine.quantity), 0))
                                    .where(OrderLine.product_id == product_id)),
        }
        db.remove()
    get_engine().dispose()
    return result


if __name__ == "__main__":
    print(json.dumps(race(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 4)))
