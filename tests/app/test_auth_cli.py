"""`barid create-user` from the command line."""

from __future__ import annotations

from sqlalchemy import select

from app.auth.models import Role, User
from tests.app.test_auth_support import count, make_office


def test_create_admin_from_the_command_line(app):
    result = app.test_cli_runner().invoke(args=[
        "create-user", "--role", "admin", "--role", "supervisor", "--email", "Boss@Barid.iq",
        "--name", "Boss", "--password", "long enough pw",
    ])
    assert result.exit_code == 0, result.output
    assert "boss@barid.iq" in result.output
    with app.app_context():
        from app.database import db

        user = db.scalar(select(User))
        assert user.roles == {Role.ADMIN, Role.SUPERVISOR}


def test_clerk_needs_a_post_office(app):
    runner = app.test_cli_runner()
    args = ["create-user", "--role", "clerk", "--phone", "0780 111 2233", "--name", "Ali",
            "--password", "long enough pw"]
    result = runner.invoke(args=args)
    assert result.exit_code != 0
    assert "post office" in result.output
    make_office(app, "BSR-01", "IQ-BA", exchange=False)
    result = runner.invoke(args=[*args, "--post-office", "bsr-01"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        from app.database import db

        user = db.scalar(select(User))
        assert user.phone == "+9647801112233" and user.post_office.code == "BSR-01"


def test_unknown_role_and_duplicate_fail_with_a_clear_message(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["create-user", "--role", "postmaster", "--email", "x@barid.iq",
                                 "--name", "X", "--password", "long enough pw"])
    assert result.exit_code != 0
    assert "Unknown role “postmaster”" in result.output
    assert count(app, User) == 0

    ok = ["create-user", "--role", "clerk", "--role", "admin", "--email", "x@barid.iq",
          "--name", "X", "--password", "long enough pw"]
    make_office(app)
    assert runner.invoke(args=[*ok, "--post-office", "BGD-01"]).exit_code == 0
    again = runner.invoke(args=[*ok, "--post-office", "BGD-01"])
    assert again.exit_code != 0
    assert "already exists" in again.output
    assert count(app, User) == 1


def test_email_or_phone_is_required(app):
    result = app.test_cli_runner().invoke(args=["create-user", "--role", "admin", "--name", "X",
                                                "--password", "long enough pw"])
    assert result.exit_code != 0
    assert "--email or --phone" in result.output


def test_password_is_asked_for_when_left_out(app):
    result = app.test_cli_runner().invoke(
        args=["create-user", "--role", "admin", "--email", "quiet@barid.iq", "--name", "Q"],
        input="a quiet secret\na quiet secret\n",
    )
    assert result.exit_code == 0, result.output
    assert "a quiet secret" not in result.output
    from app.auth.services import authenticate

    with app.app_context():
        assert authenticate("quiet@barid.iq", "a quiet secret", client_address=None)
