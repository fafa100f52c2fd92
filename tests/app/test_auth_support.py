"""Helpers shared by the auth, security, audit and back-office tests (no tests here)."""

from __future__ import annotations

from sqlalchemy import func, select

PASSWORD = "correct horse 42"


def make_user(app, *, roles=("shopper",), email=None, phone=None, name="Test Person",
              password=PASSWORD, office=None):
    from app.auth.services import create_user
    from app.database import unit_of_work

    with app.app_context(), unit_of_work():
        user = create_user(name, email=email, phone=phone, password=password, roles=roles,
                           post_office_code=office)
        return user.id


def make_office(app, code="BGD-01", governorate="IQ-BG", exchange=True):
    from app.auth.services import create_post_office
    from app.database import unit_of_work

    with app.app_context(), unit_of_work():
        return create_post_office(code, "مكتب بريد بغداد", "Baghdad Post Office", governorate,
                                  is_exchange_office=exchange).id


def log_in(client, identifier, password=PASSWORD, **extra):
    return client.post("/login", data={"identifier": identifier, "password": password, **extra})


def count(app, model, *where):
    from app.database import db

    with app.app_context():
        return db.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app):
    from app.audit import AuditRecord
    from app.database import db

    with app.app_context():
        return [r.action for r in db.scalars(select(AuditRecord).order_by(AuditRecord.id))]
