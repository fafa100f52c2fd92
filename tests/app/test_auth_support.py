"""Helpers shared by the auth, security, audit and back-office tests (no tests here)."""

from __future__ import annotations

import re

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


def register(client, identifier, *, name="مريم حسن", password=PASSWORD, confirm=None,
             **extra):
    """Step one of sign-up: the form."""
    return client.post("/register", data={
        "full_name": name, "identifier": identifier, "password": password,
        "password_confirm": confirm if confirm is not None else password,
    }, **extra)


def messages_to(app, to):
    """Every message delivered to the e-mail address or E.164 number `to`, oldest first
    (runs the staged notification jobs first, as a worker would)."""
    from app.database import db
    from app.jobs import drain
    from app.notify import sent_messages

    with app.app_context():
        db.commit()
        drain(app)
    return [m for m in sent_messages if to in (m["email"], m["phone"])]


def sent_code(app, to):
    """The sign-up code in the newest message to `to`."""
    return re.search(r"\b(\d{6})\b", messages_to(app, to)[-1]["body"]).group(1)


def sign_up(app, client, identifier, to=None, **kw):
    """Both steps of sign-up: the form, then the code from the message; the answer to
    the code. `to` is where the message goes (the identifier, normalised)."""
    first = register(client, identifier, **kw)
    assert first.status_code == 302, first.get_data(as_text=True)
    return client.post("/register/confirm", data={"code": sent_code(app, to or identifier)})


def count(app, model, *where):
    from app.database import db

    with app.app_context():
        return db.scalar(select(func.count()).select_from(model).where(*where))


def audit_actions(app):
    from app.audit import AuditRecord
    from app.database import db

    with app.app_context():
        return [r.action for r in db.scalars(select(AuditRecord).order_by(AuditRecord.id))]
