"""TODO: wires flask-login and the auth blueprint (app/auth)."""

from flask import Flask


def init_app(app: Flask) -> None:
    pass
