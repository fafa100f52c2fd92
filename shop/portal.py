"""The merchant portal (/merchant): API keys and webhook endpoints with their log."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    pass
