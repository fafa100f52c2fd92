"""Catalog search on PostgreSQL with 100,000 products: the median time of each query,
today's LIKE query (the baseline, kept here) beside the full-text search service
(shop.services.catalog.search: count + one page of 24), and the search page with facets.

Creates its own database on the local PostgreSQL, fills it, measures, drops it.

    .venv/bin/python bench/search.py [--products 100000] [--seconds 1.5]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

NOUNS = [  # (Arabic, English): spelt the way a shop writes them, hamza and taa marbuta kept
    ("هاتف", "phone"), ("شاحن", "charger"), ("سماعة", "headset"), ("حقيبة", "bag"),
    ("ساعة", "watch"), ("مكتبة", "bookcase"), ("كتاب", "book"), ("قميص", "shirt"),
    ("فستان", "dress"), ("عطر", "perfume"), ("إبريق", "kettle"), ("مرآة", "mirror"),
    ("طاولة", "table"), ("كرسي", "chair"), ("مصباح", "lamp"), ("مروحة", "fan"),
    ("ثلاجة", "fridge"), ("غسالة", "washer"), ("سجادة", "rug"), ("حذاء", "shoes"),
    ("وسادة", "pillow"), ("بطانية", "blanket"), ("قدر", "pot"), ("مكواة", "iron"),
    ("حاسوب", "computer"), ("شاشة", "screen"), ("لوحة مفاتيح", "keyboard"), ("فأرة", "mouse"),
    ("دفتر", "notebook"), ("قلم", "pen"),
]
ADJECTIVES = [
    ("كبير", "large"), ("صغير", "small"), ("أسود", "black"), ("أبيض", "white"),
    ("ذكي", "smart"), ("لاسلكي", "wireless"), ("جلدي", "leather"), ("قطني", "cotton"),
    ("خشبي", "wooden"), ("أحمر", "red"), ("أزرق", "blue"), ("فاخر", "premium"),
    ("للأطفال", "for children"), ("منزلي", "household"), ("محمول", "portable"),
]
BRANDS = ["Samsung", "Lenovo", "Philips", "Arçelik", "Vestel", "Xiaomi", "Huawei", "Tefal",
          "Nokia", "Canon", "Braun", "Karaca", "Mavi", "LC Waikiki", "Koton", "Beko"]
QUERIES = [
    ("common Arabic word", "هاتف"),
    ("Arabic, taa marbuta typed as haa", "ساعه"),
    ("Arabic, hamza dropped", "ابريق"),
    ("Arabic, madda dropped + taa", "مراه"),
    ("two Arabic words", "كرسي خشبي"),
    ("three Arabic words", "قميص قطني ابيض"),
    ("English brand", "samsung"),
    ("English two words", "wireless headset"),
    ("rare model number", "QX-4821"),
    ("mixed Arabic + brand", "هاتف xiaomi"),
    ("two letters", "ip"),
    ("no match", "zzqqxx"),
]


def _rows(n: int, merchants: list[int], categories: list[int], seed: int = 7):
    from shop.models import search_text_for, search_title_for

    rnd = random.Random(seed)
    now = datetime.now(UTC)
    for i in range(n):
        noun_ar, noun_en = rnd.choice(NOUNS)
        adj_ar, adj_en = rnd.choice(ADJECTIVES)
        brand = rnd.choice(BRANDS)
        letters = "ABCDEFGHJKLMNPQRSTUVWXYZ"
        model = f"{rnd.choice(letters)}{rnd.choice(letters)}-{rnd.randint(100, 9999)}"
        title_ar = f"{noun_ar} {adj_ar} {brand} {model}"
        title_en = f"{brand} {adj_en} {noun_en} {model}"
        other_ar, other_en = rnd.choice(NOUNS)
        desc_ar = f"{noun_ar} مناسب مع {other_ar}، ضمان سنة."
        desc_en = f"A {adj_en} {noun_en} that goes with a {other_en}. One-year warranty."
        yield (
            rnd.choice(merchants), rnd.choice(categories), f"SKU-{i}", title_ar, title_en,
            desc_ar, desc_en, rnd.randint(1, 2000) * 500, rnd.randint(0, 50),
            rnd.randint(50, 5000), "851712", "CN", True, "",
            search_title_for(title_ar, title_en),
            search_text_for(title_ar, title_en, desc_ar, desc_en),
            now - timedelta(seconds=i), now,
        )


def fill(url: str, n: int) -> tuple[float, Any]:
    """Create the schema and `n` products (COPY); returns seconds taken and the app."""
    from app import create_app
    from app.auth.models import PostOffice, User
    from app.database import Base, db, get_engine
    from app.models_registry import load_all
    from shop.models import Category, Merchant, MerchantStatus

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory",
                      "WTF_CSRF_ENABLED": False})
    logging.getLogger("barid.access").setLevel(logging.WARNING)
    load_all()
    Base.metadata.create_all(get_engine())
    started = time.perf_counter()
    with app.app_context():
        office = PostOffice(code="BGD-01", name_ar="بغداد", name_en="Baghdad",
                            governorate="IQ-BG")
        owner = User(email="bench@example.iq", full_name="Bench", password_hash="x")
        db.add_all([office, owner])
        db.flush()
        merchants = []
        for m in range(20):
            merchant = Merchant(slug=f"shop-{m}", name_ar=f"متجر {m}", name_en=f"Shop {m}",
                                country="IQ", currency="IQD", status=MerchantStatus.ACTIVE,
                                owner_id=owner.id, post_office_id=office.id,
                                governorate="IQ-BG")
            db.add(merchant)
            merchants.append(merchant)
        categories = [Category(slug=f"cat-{c}", name_ar=f"قسم {c}", name_en=f"Category {c}")
                      for c in range(10)]
        db.add_all(categories)
        db.commit()
        merchant_ids = [m.id for m in merchants]
        category_ids = [c.id for c in categories]
    columns = ("merchant_id, category_id, merchant_sku, title_ar, title_en, description_ar, "
               "description_en, price, stock, weight_g, hs_code, origin_country, active, "
               "image_url, search_title, search_text, created_at, updated_at")
    with psycopg.connect(url) as conn, conn.cursor() as cur, \
            cur.copy(f"COPY products ({columns}) FROM STDIN") as copy:
        for row in _rows(n, merchant_ids, category_ids):
            copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")  # what autovacuum would have done by now
    return time.perf_counter() - started, app


def _time(func, seconds: float, min_runs: int = 5) -> list[float]:
    func()  # warm caches and plans
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < min_runs:
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return times


def measure(app, seconds: float) -> list[tuple[str, str, int, int, list, list, list]]:
    """Each query three ways, one after the other in the same run: today's query (the
    baseline), the new search service, and the search page with its facets."""
    from app.database import db
    from shop.search import query_words
    from shop.services import catalog

    rows = []
    client = app.test_client()
    for label, query in QUERIES:
        with app.app_context():
            words = query_words(query)

            def baseline(w=words):
                # Today's query, kept here as it was: LIKE per word on the search text
                # (served by the pg_trgm index), titles first, counted up to 1,000.
                stmt, order = catalog.search_statement(w)
                catalog._paginate(stmt, 1, catalog.PER_PAGE, order)
                db.remove()

            def service(q=query):
                catalog.search(q)
                db.remove()

            stmt, order = catalog.search_statement(words)
            old_total = catalog._paginate(stmt, 1, catalog.PER_PAGE, order).total
            new = catalog.search(query)
            new_total, how = new.total, new.matched_by
            db.remove()
            old_times = _time(baseline, seconds)
            new_times = _time(service, seconds)

        def page(q=query):
            response = client.get("/shop/search", query_string={"q": q})
            assert response.status_code == 200

        rows.append((label, query, old_total, new_total, str(how), old_times, new_times,
                     _time(page, seconds)))
    return rows


def report(rows) -> None:
    print(f"\n  {'query':<36} {'today':>6} {'new':>6} {'by':>8}   {'today ms':>8} "
          f"{'new ms':>7} {'x faster':>8}   {'page ms':>7}")
    old_medians, new_medians, page_medians = [], [], []
    for label, query, old_total, new_total, how, old_t, new_t, page_t in rows:
        om, nm, pm = (statistics.median(t) * 1000 for t in (old_t, new_t, page_t))
        old_medians.append(om)
        new_medians.append(nm)
        page_medians.append(pm)
        name = f"{label} «{query}»"
        print(f"  {name:<36} {old_total:>6} {new_total:>6} {how:>8}   {om:>8.2f} {nm:>7.2f} "
              f"{om / nm:>8.1f}   {pm:>7.2f}")
    # Each query weighs the same: the median of the per-query medians.
    old_m, new_m = statistics.median(old_medians), statistics.median(new_medians)
    print(f"  {'median of the per-query medians':<36} {'':>6} {'':>6} {'':>8}   "
          f"{old_m:>8.2f} {new_m:>7.2f} {old_m / new_m:>8.1f}   "
          f"{statistics.median(page_medians):>7.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="time spent per query and mode (after one warm-up run)")
    parser.add_argument("--pg", default=os.environ.get(
        "BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the filled database (its name is printed) for EXPLAIN")
    parser.add_argument("--fill-only", action="store_true", help="fill, then stop (use --keep)")
    args = parser.parse_args()

    name = f"barid_bench_search_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
        work_mem = conn.execute("SHOW work_mem").fetchone()[0]
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    try:
        fill_seconds, app = fill(url, args.products)
        if args.keep:
            print(f"  database kept: {url}")
        if args.fill_only:
            return
        with psycopg.connect(url) as conn:
            size = conn.execute(
                "SELECT pg_size_pretty(pg_relation_size('products')), "
                "pg_size_pretty(pg_relation_size('ix_products_search_text_trgm')), "
                "pg_size_pretty(pg_relation_size('ix_products_search_vector')), "
                "pg_size_pretty(pg_relation_size('ix_products_search_title_vector'))"
            ).fetchone()
        print("Barid catalog search benchmark")
        print(f"  PostgreSQL {pg_version} (shared_buffers {shared_buffers}, work_mem "
              f"{work_mem}), local socket over TCP 127.0.0.1")
        print(f"  {args.products:,} active products of 20 active merchants; table {size[0]}, "
              f"trigram index {size[1]}, full-text indexes {size[2]} (text) and {size[3]} "
              f"(titles); loaded and indexed in {fill_seconds:.1f} s")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"  Python {platform.python_version()}, {os.cpu_count()} CPUs, "
              f"{platform.machine()}, one client thread, warm cache; load average {load} "
              "at the start (other work shares the machine)")
        print(f"  each query and way: one warm-up, then repeated for {args.seconds} s (at "
              "least 5 runs)")
        print("  today = the LIKE query search ran until now (kept in this file as the "
              "baseline), on the same search text; new = shop.services.catalog.search; "
              "both count (up to 1,000) and fetch the first page of 24, ranked; page = "
              "GET /shop/search with its facet counts, rendered by the Flask test client")
        report(measure(app, args.seconds))
        print(f"  load average at the end: "
              f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    finally:
        from app.database import get_engine

        with contextlib.suppress(RuntimeError):
            get_engine().dispose()
        if not args.keep:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
