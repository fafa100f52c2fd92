"""Search on the embedded SQLite database, in a process of its own (create_app binds the
process-wide engine, which the suite keeps on PostgreSQL).

    python -m tests.shop.sqlite_search <folder>

Builds a fresh SQLite file in <folder> with the demo shops, searches it and prints what
was found as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from app import create_app
from app.auth.seed import seed_people
from app.database import Base, db, get_engine
from app.models_registry import load_all
from shop.seed import seed_shops
from shop.services import catalog
from shop.services.catalog import SearchFilters
from tests.conftest import TEST_CONFIG


def run(folder: Path) -> dict[str, object]:
    app = create_app({**TEST_CONFIG, "DATABASE_URL": f"sqlite:///{folder / 'search.sqlite3'}"})
    load_all()
    with app.app_context(), app.test_request_context("/?lang=en"):
        Base.metadata.create_all(get_engine())
        seed_people()
        seed_shops()
        db.commit()
        result: dict[str, object] = {"dialect": db.get_bind().dialect.name}
        for query in ("الهاتف", "هاتف", "ساعه", "ساعة", "الساعات"):
            result[query] = [p.title_en for p in catalog.search(query).items]
        result["%"] = {"notice": str(catalog.search("%").notice)}
        watches = catalog.search("الساعات", with_facets=True)
        result["facets"] = {"origin": [[f.value, f.count] for f in watches.facets.origins]}
        result["local watches"] = [p.title_en for p in catalog.search(
            "الساعات", filters=SearchFilters(origin="local")).items]
        return result


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1])), ensure_ascii=False))
