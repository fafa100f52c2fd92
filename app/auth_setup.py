"""Wires people and sessions into the app: flask-login, the auth and back-office
blueprints, the `create-user` command and the demo accounts."""

from __future__ import annotations

from flask import Flask
from flask_babel import gettext
from sqlalchemy import select

from app import backoffice, notify_admin
from app.auth import admin, seed, views  # noqa: F401  (admin and seed register on import)
from app.auth.cli import create_user_cmd
from app.auth.identifiers import format_phone
from app.auth.models import AnonymousUser, User, role_label
from app.database import db
from app.extensions import login_manager


def _load_user(token: str):
    """Sessions and remember-me cookies hold the user's session token, not the id, so a
    rotated token (password change) ends them all."""
    if not token:
        return None
    user = db.scalar(select(User).where(User.session_token == token))
    return user if user is not None and user.active else None


def init_app(app: Flask) -> None:
    login_manager.init_app(app)
    login_manager.user_loader(_load_user)
    login_manager.anonymous_user = AnonymousUser
    login_manager.login_view = "auth.login"
    # English source text; flask-login passes it through localize_callback per request.
    login_manager.login_message = "Please log in to open this page."
    login_manager.login_message_category = "info"
    login_manager.localize_callback = gettext

    app.register_blueprint(views.bp)
    app.register_blueprint(backoffice.bp)
    admin.register_nav()
    notify_admin.register_nav()
    app.cli.add_command(create_user_cmd)

    @app.context_processor
    def _auth_context() -> dict:
        return {"role_label": role_label, "format_phone": format_phone}
