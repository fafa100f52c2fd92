"""Functions the workers run for payments. Each reloads its rows and is safe to run twice."""

from __future__ import annotations

from app.database import db
from app.jobs import periodic
from payments import services


@periodic(every_seconds=60, queue="low")
def expire_stale_holds() -> list[int]:
    """Void every post-card hold past its expiry (the money goes back to the card).

    Periodic; commits its own work. Returns the payment ids released.
    """
    try:
        released = services.expire_holds()
        db.commit()
    except Exception:
        db.rollback()
        raise
    return released
