"""Demo data for the embedded default. Each domain registers its seeders in order.

Seeders run once per database (a marker row in `app_settings` says so) and must be
safe to run again: look up before inserting.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, mapped_column

from app.database import Base, db

_seeders: list[tuple[int, str, Callable[[], None]]] = []


class AppSetting(Base):
    """Small key/value facts about this installation (e.g. that demo data was loaded)."""

    __tablename__ = "app_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(500))


def seeder(order: int) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register a demo-data function; lower `order` runs first (app 0-99, payments
    100-199, tracking 200-299, shop 300-399)."""

    def register(func: Callable[[], None]) -> Callable[[], None]:
        name = f"{func.__module__}:{func.__qualname__}"
        if all(n != name for _, n, _ in _seeders):
            _seeders.append((order, name, func))
            _seeders.sort(key=lambda s: s[0])
        return func

    return register


def seed_demo(force: bool = False) -> bool:
    """Load the demo data unless it was loaded before; returns whether it ran.

    Runs every seeder in the caller's unit of work and flushes; the caller commits.
    """
    if not force and db.get(AppSetting, "demo_seeded") is not None:
        return False
    for _order, _name, func in _seeders:
        func()
    if db.get(AppSetting, "demo_seeded") is None:
        db.add(AppSetting(key="demo_seeded", value="1"))
    db.flush()
    return True


def is_seeded() -> bool:
    return db.scalar(select(AppSetting.value).where(AppSetting.key == "demo_seeded")) is not None
