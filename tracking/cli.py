"""`barid tracking ...`: issue and revoke the API keys of partner posts and fleets."""

from __future__ import annotations

import click
from flask.cli import with_appcontext

from app.database import unit_of_work
from app.errors import DomainError
from tracking.services import partners


@click.group("tracking")
def tracking_group() -> None:
    """Parcels and tracking events."""


@tracking_group.command("partner-key")
@click.argument("name")
@click.option("--key-name", default=None, help="What the key is for (default: NAME).")
@with_appcontext
def partner_key_cmd(name: str, key_name: str | None) -> None:
    """Give partner NAME (registered if new) an API key that may post tracking events.

    The key is printed once and cannot be shown again."""
    try:
        with unit_of_work():
            partner, key, secret = partners.issue_key(name, key_name=key_name)
    except DomainError as exc:
        raise click.ClickException(str(exc.message)) from exc
    click.echo(f"partner {partner.name}: key {key.id} ({key.display}), scope "
               f"{partners.EVENTS_WRITE}")
    click.echo(secret)


@tracking_group.command("partner-keys")
@click.argument("name")
@with_appcontext
def partner_keys_cmd(name: str) -> None:
    """List partner NAME's keys (never their secrets)."""
    try:
        found = partners.list_keys(name)
    except DomainError as exc:
        raise click.ClickException(str(exc.message)) from exc
    for key in found:
        state = "revoked" if key.revoked_at else "active"
        click.echo(f"{key.id}\t{key.display}\t{key.name}\t{state}")


@tracking_group.command("partner-revoke")
@click.argument("name")
@click.argument("key_id", type=int)
@with_appcontext
def partner_revoke_cmd(name: str, key_id: int) -> None:
    """Stop partner NAME's key KEY_ID working now."""
    try:
        with unit_of_work():
            partners.revoke_key(name, key_id)
    except DomainError as exc:
        raise click.ClickException(str(exc.message)) from exc
    click.echo(f"key {key_id} of {name} revoked")
