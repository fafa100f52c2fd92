"""Catalog search on PostgreSQL with 100,000 products: the median time of each query,
the LIKE query search ran before full-text search (the baseline, frozen here) beside the
search service (shop.services.catalog.search: count + one page of 24), and the search
page with facets. Ratios are taken within one run (both sides share the machine's load at
that moment); several runs give medians. Ends with a line `BENCH <json>` whose "rows"
bench/run.py can collect.

Creates its own database on the local PostgreSQL, fills it, measures, drops it; or
measures one filled earlier:

    .venv/bin/python bench/search.py [--products 100000] [--seconds 1.5] [--runs 3]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python bench/search.py --keep --fill-only      # prints the database's URL
    .venv/bin/python bench/search.py --url postgresql://postgres@127.0.0.1:5432/NAME
"""

from __future__ import annotations

import argparse
import contextlib
import json
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


# -- the baseline: the LIKE query search ran before full-text search, frozen here --------
# Copied as it was (shop.services.catalog.search_statement + _paginate, shop.search
# match_all/title_rank), so later changes to the service cannot move the baseline.

def _like(word: str) -> str:
    return "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _baseline_match_all(column, words):
    from sqlalchemy import and_

    return and_(*((column if len(w) >= 3 else column.concat("")).like(_like(w), escape="\\")
                  for w in words))


def baseline_search(words: list[str], page: int = 1, per_page: int = 24):
    """Today's query: LIKE per word on the search text (served by the pg_trgm index),
    counted up to 1,001, then the page, titles holding the words first."""
    from sqlalchemy import case, func, select
    from sqlalchemy.orm import contains_eager

    from app.database import db
    from shop.models import Merchant, MerchantStatus, Product

    stmt = (select(Product).join(Product.merchant).options(contains_eager(Product.merchant))
            .where(Product.active.is_(True), Merchant.status == MerchantStatus.ACTIVE)
            .where(_baseline_match_all(Product.search_text, words)))
    order = [case((_baseline_match_all(Product.search_title, words), 0),
                  (Product.search_title.like(_like(words[0]), escape="\\"), 1), else_=2),
             func.length(Product.search_title), Product.id]
    counted = db.scalar(select(func.count()).select_from(
        stmt.order_by(None).limit(1001).subquery())) or 0
    items = list(db.scalars(stmt.order_by(*order).limit(per_page)
                            .offset((page - 1) * per_page)).unique())
    return min(counted, 1000), items


def measure(app, seconds: float) -> list[dict[str, Any]]:
    """Each query three ways, one after the other in the same run: today's query (the
    baseline), the search service, and the search page with its facets."""
    from app.database import db
    from shop.search import query_words
    from shop.services import catalog

    rows = []
    client = app.test_client()
    for label, query in QUERIES:
        with app.app_context():
            words = query_words(query)

            def baseline(w=words):
                baseline_search(w)
                db.remove()

            def service(q=query):
                catalog.search(q)
                db.remove()

            old_total = baseline_search(words)[0]
            new = catalog.search(query)
            new_total, how = new.total, new.matched_by
            db.remove()
            old_times = _time(baseline, seconds)
            new_times = _time(service, seconds)

        def page(q=query):
            response = client.get("/shop/search", query_string={"q": q})
            assert response.status_code == 200

        page_times = _time(page, seconds)
        om, nm, pm = (statistics.median(t) * 1000 for t in (old_times, new_times, page_times))
        rows.append({"label": label, "query": query, "old_total": old_total,
                     "new_total": new_total, "how": str(how), "baseline": om, "barid": nm,
                     "page": pm, "ratio": om / nm})
    return rows


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


def _load() -> float:
    return os.getloadavg()[0]


def report(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Print, per query kind, the medians over the runs of the baseline's and Barid's
    median times and of their ratio (each ratio taken within one run); then the median
    of the per-query ratios. Returns the rows for the BENCH line."""
    print(f"\n  medians of {len(runs)} run(s); ratio = baseline / Barid within a run, "
          "then the median over runs")
    print(f"  {'query':<38} {'base':>5} {'new':>5} {'by':>8}   {'base ms':>8} "
          f"{'Barid ms':>8} {'ratio':>6}   {'page ms':>7}")
    out = []
    for i, first in enumerate(runs[0]["rows"]):
        per = [run["rows"][i] for run in runs]
        base, barid, ratio, page = (statistics.median(r[k] for r in per)
                                    for k in ("baseline", "barid", "ratio", "page"))
        name = f"{first['label']} «{first['query']}»"
        print(f"  {name:<38} {first['old_total']:>5} {first['new_total']:>5} "
              f"{first['how']:>8}   {base:>8.2f} {barid:>8.2f} {ratio:>6.2f}   {page:>7.2f}")
        out.append({"work": name, "baseline": base, "barid": barid, "ratio": ratio,
                    "page": page, "found": first["new_total"], "by": first["how"]})
    # The goal: the median time per query (each query kind weighs the same: the median
    # of the per-query medians), baseline over Barid, taken within each run; then the
    # median over the runs. The median of the per-query ratios is shown beside it.
    of_medians = [statistics.median(r["baseline"] for r in run["rows"])
                  / statistics.median(r["barid"] for r in run["rows"]) for run in runs]
    of_ratios = [statistics.median(r["ratio"] for r in run["rows"]) for run in runs]
    base_m = statistics.median(statistics.median(r["baseline"] for r in run["rows"])
                               for run in runs)
    new_m = statistics.median(statistics.median(r["barid"] for r in run["rows"])
                              for run in runs)
    page_m = statistics.median(statistics.median(r["page"] for r in run["rows"])
                               for run in runs)
    print(f"  {'median of the per-query medians':<38} {'':>5} {'':>5} {'':>8}   "
          f"{base_m:>8.2f} {new_m:>8.2f} {statistics.median(of_medians):>6.2f}   "
          f"{page_m:>7.2f}")
    print(f"  {'median of the per-query ratios':<38} {'':>5} {'':>5} {'':>8}   "
          f"{'':>8} {'':>8} {statistics.median(of_ratios):>6.2f}")
    for n, run in enumerate(runs, 1):
        print(f"  run {n}: median per query {of_medians[n - 1]:.2f}x faster, median of the "
              f"per-query ratios {of_ratios[n - 1]:.2f}; load average "
              f"{run['load_start']:.1f} -> {run['load_end']:.1f}")
    out.append({"work": "search, median per query (goal: ratio >= 3)", "baseline": base_m,
                "barid": new_m, "ratio": statistics.median(of_medians), "page": page_m})
    out.append({"work": "search, median of the per-query ratios", "baseline": base_m,
                "barid": new_m, "ratio": statistics.median(of_ratios), "page": page_m})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--seconds", type=float, default=1.5,
                        help="time spent per query and mode (after one warm-up run)")
    parser.add_argument("--runs", type=int, default=3,
                        help="measure every query this many times (ratios within a run)")
    parser.add_argument("--pg", default=os.environ.get(
        "BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    parser.add_argument("--keep", action="store_true",
                        help="keep the filled database (its name is printed) for EXPLAIN")
    parser.add_argument("--fill-only", action="store_true", help="fill, then stop (use --keep)")
    parser.add_argument("--url", help="measure a database filled earlier with --keep "
                        "(no fill, not dropped)")
    parser.add_argument("--json", action="store_true",
                        help="accepted for bench/run.py; the BENCH line is always printed")
    args = parser.parse_args()

    if args.url:
        name, url = None, args.url
    else:
        name = f"barid_bench_search_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(url, autocommit=True) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
        shared_buffers = conn.execute("SHOW shared_buffers").fetchone()[0]
        work_mem = conn.execute("SHOW work_mem").fetchone()[0]
    try:
        if args.url:
            from app import create_app

            app = create_app({"DATABASE_URL": url, "REDIS_URL": None,
                              "MAIL_BACKEND": "memory", "WTF_CSRF_ENABLED": False})
            logging.getLogger("barid.access").setLevel(logging.WARNING)
            fill_seconds = None
        else:
            fill_seconds, app = fill(url, args.products)
        if args.keep:
            print(f"  database kept: {url}")
        if args.fill_only:
            return
        with psycopg.connect(url) as conn:
            products = conn.execute("SELECT count(*) FROM products").fetchone()[0]
            size = conn.execute(
                "SELECT pg_size_pretty(pg_relation_size('products')), "
                "pg_size_pretty(pg_relation_size('ix_products_search_text_trgm')), "
                "pg_size_pretty(pg_relation_size('ix_products_search_vector')), "
                "pg_size_pretty(pg_relation_size('ix_products_search_title_vector'))"
            ).fetchone()
        loaded = (f"loaded and indexed in {fill_seconds:.1f} s" if fill_seconds is not None
                  else "filled earlier")
        print("Barid catalog search benchmark")
        print(f"  PostgreSQL {pg_version} (shared_buffers {shared_buffers}, work_mem "
              f"{work_mem}), local socket over TCP 127.0.0.1")
        print(f"  {products:,} active products of 20 active merchants; table {size[0]}, "
              f"trigram index {size[1]}, full-text indexes {size[2]} (text) and {size[3]} "
              f"(titles); {loaded}")
        print(f"  Python {platform.python_version()}, {os.cpu_count()} CPUs, "
              f"{platform.machine()}, one client thread, warm cache; other work shares "
              "the machine (load average per run below)")
        print(f"  each query and way: one warm-up, then repeated for {args.seconds} s (at "
              "least 5 runs)")
        print("  base = the LIKE query search ran before full-text search (frozen in this "
              "file), on the same search text; Barid = shop.services.catalog.search; "
              "both count (up to 1,000) and fetch the first page of 24, ranked; page = "
              "GET /shop/search with its facet counts, rendered by the Flask test client")
        runs = []
        for _ in range(args.runs):
            load_start = _load()
            rows = measure(app, args.seconds)
            runs.append({"rows": rows, "load_start": load_start, "load_end": _load()})
        out = report(runs)
        loads = [run["load_start"] for run in runs] + [run["load_end"] for run in runs]
        conditions = (f"{products:,} products, PostgreSQL {pg_version}, {os.cpu_count()} "
                      f"CPUs, load {min(loads):.1f}-{max(loads):.1f}, medians of "
                      f"{len(runs)} runs")
        print("BENCH " + json.dumps({
            "conditions": {"products": products, "database": f"PostgreSQL {pg_version}",
                           "runs": len(runs), "load": [min(loads), max(loads)]},
            "rows": [{"goal": "search", "work": r["work"], "barid": _round(r["barid"]),
                      "baseline": _round(r["baseline"]), "ratio": _round(r["ratio"]),
                      "p50": _round(r["barid"]), "page": _round(r["page"]),
                      "unit": "ms per query (median)", "conditions": conditions}
                     for r in out],
        }, ensure_ascii=False))
    finally:
        from app.database import get_engine

        with contextlib.suppress(RuntimeError):
            get_engine().dispose()
        if name is not None and not args.keep:
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
