"""`barid ledger ...`: commands that check the books."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from app.database import unit_of_work
from payments.ledger import verify


@click.group("ledger")
def ledger_group() -> None:
    """The post's double-entry ledger."""


@ledger_group.command("verify")
@with_appcontext
def verify_cmd() -> None:
    """Check every ledger invariant; exit 1 and list the offending ids if any fails."""
    # A command is a use case: it owns its unit of work (this one only reads).
    with unit_of_work():
        problems = verify()
    if not problems:
        click.echo("ledger ok: every entry balances, no card below zero, "
                   "cached balances match, holds consistent")
        return
    for problem in problems:
        click.echo(f"FAIL {problem}", err=True)
    sys.exit(1)
