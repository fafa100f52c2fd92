"""Production refuses unsafe settings, all named in one message; `barid check --deploy`
prints the same list without starting anything."""

from __future__ import annotations

import pytest

from app import build_app, create_app, database
from app.cli import main
from app.config import ProductionRefused, refuse_unfit_production

FIT = {
    "BARID_ENV": "production",
    "SECRET_KEY": "4f1c2b0e9d8a7c6b5a4f3e2d1c0b9a88",
    "PIN_PEPPER": "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "STRIPE_SECRET_KEY": "sk_live_from_the_dashboard",
    "STRIPE_WEBHOOK_SECRET": "whsec_from_the_dashboard",
    "DATABASE_URL": "postgresql://barid:pw@db.example.iq/barid",
    "REDIS_URL": "redis://redis.example.iq:6379/0",
}
DEVELOPMENT = {"SECRET_KEY": "dev-only-not-secret", "PIN_PEPPER": "dev-only-pepper",
               "STRIPE_SECRET_KEY": "sk_test_barid_local",
               "STRIPE_WEBHOOK_SECRET": "whsec_barid_local"}


@pytest.fixture()
def environment(monkeypatch):
    """A production environment fit to start; a test spoils one part of it."""
    for name in (*FIT, "BARID_ALLOW_SQLITE", "TRUSTED_PROXY_HOPS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in FIT.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def _refused(**overrides) -> ProductionRefused:
    with pytest.raises(ProductionRefused) as caught:
        create_app(overrides)
    return caught.value


def _check(app, *args):
    return app.test_cli_runner().invoke(main, ["check", *args])


def test_fit_settings_pass_and_check_says_no_problems(app, environment):
    refuse_unfit_production(build_app())  # raises nothing
    out = _check(app, "--deploy")
    assert out.exit_code == 0, out.output
    assert "no problems" in out.output


@pytest.mark.parametrize("name", list(DEVELOPMENT))
def test_a_missing_secret_is_refused_by_name(app, environment, name):
    environment.delenv(name)
    exc = _refused()
    assert [p for p in exc.problems if name in p] == [f"{name} is not set (the development "
                                                      "value would be used)."]
    out = _check(app, "--deploy")
    assert out.exit_code == 1 and f"- {name} is not set" in out.output


@pytest.mark.parametrize("name", list(DEVELOPMENT))
def test_a_secret_left_at_its_development_value_is_refused(app, environment, name):
    environment.setenv(name, DEVELOPMENT[name])
    exc = _refused()
    assert exc.problems == [f"{name} is the development value; set a secret of its own."]
    # Given to create_app directly (as tests and scripts do), it is refused just the same.
    environment.setenv(name, FIT[name])
    assert _refused(**{name: DEVELOPMENT[name]}).problems == exc.problems
    environment.setenv(name, DEVELOPMENT[name])
    out = _check(app, "--deploy")
    assert out.exit_code == 1, out.output
    assert f"- {name} is the development value" in out.output
    assert DEVELOPMENT[name] not in out.output  # the value itself is never printed


def test_an_empty_secret_counts_as_missing(app, environment):
    environment.setenv("PIN_PEPPER", "")
    assert _refused().problems == ["PIN_PEPPER is not set (the development value would be "
                                   "used)."]


def test_sqlite_is_refused_unless_allowed(app, environment, tmp_path):
    environment.setenv("DATABASE_URL", f"sqlite:///{tmp_path}/barid.sqlite3")
    [problem] = _refused().problems
    assert problem.startswith("DATABASE_URL is SQLite")
    environment.setenv("BARID_ALLOW_SQLITE", "1")
    refuse_unfit_production(build_app())
    assert _check(app, "--deploy").exit_code == 0


def test_no_redis_is_refused(app, environment):
    environment.delenv("REDIS_URL")
    [problem] = _refused().problems
    assert problem.startswith("REDIS_URL is not set")


def test_every_problem_is_named_in_one_message(app, environment):
    for name in (*DEVELOPMENT, "REDIS_URL"):
        environment.delenv(name)
    environment.setenv("DATABASE_URL", "sqlite:////tmp/nowhere.sqlite3")
    exc = _refused()
    assert len(exc.problems) == 6
    message = str(exc)
    for name in (*DEVELOPMENT, "DATABASE_URL", "REDIS_URL"):
        assert f"  - {name}" in message
    out = _check(app, "--deploy")
    assert out.exit_code == 1
    assert "6 problem(s) for production" in out.output
    assert all(f"  - {p}" in out.output for p in exc.problems)


def test_check_deploy_in_development_names_the_environment_too(app, environment):
    environment.setenv("BARID_ENV", "development")
    out = _check(app, "--deploy")
    assert out.exit_code == 1
    assert "- BARID_ENV is 'development', not 'production'." in out.output
    plain = _check(app)
    assert plain.exit_code == 0 and "barid check --deploy" in plain.output


def test_check_starts_nothing(app, environment, monkeypatch):
    """No engine is created, so nothing connects: the database may be unreachable."""
    def refuse(*_a, **_k):
        raise AssertionError("check must not create a database engine")

    monkeypatch.setattr(database, "init_engine", refuse)
    monkeypatch.setattr("app.init_engine", refuse)
    environment.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    out = _check(app, "--deploy")
    assert out.exit_code == 0, out.output
