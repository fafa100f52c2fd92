"""Functions the workers run for payments. Each reloads its rows and is safe to run twice."""

from __future__ import annotations

from app.database import unit_of_work
from app.jobs import periodic
from payments import services


@periodic(every_seconds=60, queue="low")
def expire_stale_holds() -> list[int]:
    """Void every post-card hold past its expiry (the money goes back to the card).

    Periodic; runs as one unit of work (the holds, their payments and the card
    balances change together). Returns the payment ids released.
    """
    with unit_of_work():
        return services.expire_holds()
