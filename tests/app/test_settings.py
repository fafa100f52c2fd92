"""Settings are declared once, read once from the environment, and listed by `barid config show`."""

from __future__ import annotations

import pytest
from flask import Flask

from app.cli import main
from app.settings import ConfigError, Setting, declared, load_settings, parse_bool

DECLARED = (
    Setting("PARCEL_LIMIT", parse=int, default=30),
    Setting("GATEWAY_TOKEN", default="dev-token", secret=True),
    Setting("SECURE", parse=parse_bool, computed=lambda c: c.get("BARID_ENV") == "production"),
)


def test_environment_beats_the_default_and_an_override_beats_both(monkeypatch):
    monkeypatch.setenv("PARCEL_LIMIT", "45")
    monkeypatch.setenv("GATEWAY_TOKEN", "from-env")
    app = Flask("settings-test")
    app.config["BARID_ENV"] = "production"
    load_settings(app, "test", DECLARED, overrides={"GATEWAY_TOKEN": "given"})
    assert app.config["PARCEL_LIMIT"] == 45
    assert app.config["GATEWAY_TOKEN"] == "given"
    assert app.config["SECURE"] is True  # computed from settings read before it
    sources = {name: item.source for name, item in declared(app).items()}
    assert sources == {"PARCEL_LIMIT": "environment", "GATEWAY_TOKEN": "override",
                       "SECURE": "default"}


def test_a_value_that_is_not_its_type_is_refused_by_name(monkeypatch):
    monkeypatch.setenv("PARCEL_LIMIT", "thirty")
    with pytest.raises(ConfigError, match="PARCEL_LIMIT='thirty'"):
        load_settings(Flask("settings-test"), "test", DECLARED, overrides={})


def test_config_show_lists_every_setting_with_its_source_and_masks_secrets(app):
    out = app.test_cli_runner().invoke(main, ["config", "show"])
    assert out.exit_code == 0, out.output
    lines = {line.split()[1]: line for line in out.output.splitlines()}
    # One line per declared setting of every package.
    for name, owner in [("SECRET_KEY", "app"), ("PIN_PEPPER", "payments"),
                        ("TRACKING_LOOKUPS_PER_MINUTE", "tracking"), ("API_RATE_LIMIT", "api"),
                        ("DATABASE_URL", "app")]:
        assert lines[name].split()[0] == owner
    assert "override" in lines["SECRET_KEY"]  # the test suite gives it to create_app
    for secret in ("SECRET_KEY", "PIN_PEPPER", "STRIPE_SECRET_KEY", "DATABASE_URL"):
        assert "******" in lines[secret] or "(not set)" in lines[secret]
    assert app.config["SECRET_KEY"] not in out.output
    assert app.config["PIN_PEPPER"] not in out.output
