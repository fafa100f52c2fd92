"""`barid create-user`: make an account with any roles from the command line."""

from __future__ import annotations

import click
from flask.cli import with_appcontext
from flask_babel import force_locale

from app.auth.services import create_user
from app.database import unit_of_work
from app.errors import DomainError


@click.command("create-user")
@click.option("--role", "roles", multiple=True, required=True,
              help="shopper, merchant, clerk, customs_officer, procurement, supervisor, admin "
                   "(repeat for several).")
@click.option("--email", default=None, help="E-mail address to log in with.")
@click.option("--phone", default=None, help="Iraqi mobile number, e.g. 07701234567.")
@click.option("--name", "full_name", required=True, help="The person's full name.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 8 characters; asked for (not echoed) when left out, which keeps "
                   "it out of the shell history.")
@click.option("--post-office", "post_office", default=None,
              help="Code of the post office (required for a clerk).")
@with_appcontext
def create_user_cmd(roles: tuple[str, ...], email: str | None, phone: str | None,
                    full_name: str, password: str, post_office: str | None) -> None:
    """Create a user with the given roles (e.g. the first administrator)."""
    if bool(email) == bool(phone):
        raise click.UsageError("give exactly one of --email or --phone")
    # The command runs outside any request; its messages are for the operator, in English.
    with force_locale("en"):
        try:
            with unit_of_work():
                user = create_user(full_name, email=email, phone=phone, password=password,
                                   roles=roles, post_office_code=post_office)
        except DomainError as exc:
            details = "; ".join(f"{k}: {v}" for k, v in exc.fields.items()) or str(exc.message)
            click.echo(f"barid create-user: {details}", err=True)
            raise SystemExit(1) from None
        click.echo(
            f"created user {user.id} ({user.login_name}) with roles "
            f"{', '.join(sorted(r.value for r in user.roles))}"
        )
