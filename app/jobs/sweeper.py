"""The outbox sweeper, run periodically by whichever executor is in charge."""

from __future__ import annotations

from .beat import periodic
from .dispatch import sweep


@periodic(every_seconds=30, queue="default", name="outbox-sweeper")
def sweep_outbox() -> None:
    """Re-send pending outbox jobs that no executor took (see app.jobs.dispatch.sweep).

    Changes only `enqueued_at` of the rows it re-sends; raises nothing of its own.
    """
    sweep()
