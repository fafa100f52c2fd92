"""The `barid` command: run, worker, db upgrade, create-user, seed-demo, and the domains'.

Domains add their own groups (`barid ledger verify`, ...) from their `init_app`
through `app.cli`.
"""

from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from app import build_app, create_app
from app.config import production_problems
from app.database import unit_of_work
from app.migrate import upgrade_database
from app.seed import seed_demo
from app.serve import PortInUse, claim_port, run_embedded
from app.settings import ConfigError, declared, mask


def _create_app(*_args: object, **_kwargs: object) -> Flask:
    try:
        return create_app()
    except ConfigError as exc:
        click.echo(f"barid: {exc}", err=True)
        sys.exit(2)


@click.group(cls=FlaskGroup, create_app=_create_app, add_default_commands=False,
             add_version_option=False)
def main() -> None:
    """Barid, Iraqi Post's e-commerce and e-payment platform."""


@main.group("db")
def db_group() -> None:
    """Database migrations."""


@db_group.command("upgrade")
@with_appcontext
def db_upgrade() -> None:
    """Apply every migration not yet applied."""
    upgrade_database()
    click.echo("database is at the newest migration")


@main.command("seed-demo")
@click.option("--force", is_flag=True, help="Run the seeders even if demo data was loaded.")
@with_appcontext
def seed_demo_cmd(force: bool) -> None:
    """Load demo data (post offices, users, shops, cards) once."""
    with unit_of_work():
        ran = seed_demo(force=force)
    click.echo("demo data loaded" if ran else "demo data already present")


@main.command("run")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=5000, show_default=True, type=int, help="Port to listen on.")
@click.pass_context
def run_cmd(ctx: click.Context, host: str, port: int) -> None:
    """The embedded platform: migrate, seed demo data once, run jobs inline, serve."""
    # Before anything else: a second `barid run` must not touch the database.
    try:
        sock = claim_port(host, port)
    except PortInUse as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    app = ctx.ensure_object(ScriptInfo).load_app()
    run_embedded(app, sock, host, port)


@main.command("check")
@click.option("--deploy", is_flag=True,
              help="Check the settings as production needs them, whatever BARID_ENV says.")
def check_cmd(deploy: bool) -> None:
    """Whether Barid would start with this environment; with --deploy, every setting
    unfit for production. Exit 1 when there is a problem. Starts nothing.

    Reads the same environment `barid run`, gunicorn and `barid worker` read and builds
    the app without a database engine: nothing connects.
    """
    try:
        app = build_app()
    except ConfigError as exc:
        click.echo(f"barid: {exc}", err=True)
        sys.exit(2)
    env = app.config.get("BARID_ENV")
    problems = production_problems(app) if deploy or env == "production" else []
    if deploy and env != "production":
        problems.insert(0, f"BARID_ENV is {env!r}, not 'production'.")
    if not problems:
        if not deploy and env != "production":
            click.echo(f"settings read (BARID_ENV={env}); `barid check --deploy` checks "
                       "them for production")
            return
        click.echo("no problems: these settings are fit for production")
        return
    click.echo(f"{len(problems)} problem(s) for production:")
    for problem in problems:
        click.echo(f"  - {problem}")
    sys.exit(1)


@main.group("config")
def config_group() -> None:
    """The settings Barid runs with."""


@config_group.command("show")
@with_appcontext
def config_show() -> None:
    """Every declared setting: its value (secrets masked) and where it came from."""
    loaded = declared(current_app)
    width = max(len(name) for name in loaded)
    for name in sorted(loaded, key=lambda n: (loaded[n].owner, n)):
        item = loaded[name]
        value = current_app.config.get(name)
        shown = mask(value) if item.setting.secret else repr(value)
        click.echo(f"{item.owner:<9} {name:<{width}}  {item.source:<11}  {shown}")
