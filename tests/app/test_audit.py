"""The audit log can be added to and read, never changed: by the ORM or by raw SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.audit import AuditRecord, record_audit
from app.database import db, get_engine


def _one_record(app_ctx) -> int:
    rec = record_audit("test.parcel_handed_over", object_type="parcel", object_id="RR1",
                       details={"office": "BGD-01"})
    db.commit()
    return rec.id


def test_orm_refuses_to_update_an_audit_record(app_ctx):
    rid = _one_record(app_ctx)
    rec = db.get(AuditRecord, rid)
    rec.action = "test.rewritten"
    with pytest.raises(PermissionError, match="append-only"):
        db.commit()
    db.rollback()
    db.expire_all()
    assert db.get(AuditRecord, rid).action == "test.parcel_handed_over"


def test_orm_refuses_to_delete_an_audit_record(app_ctx):
    rid = _one_record(app_ctx)
    db.delete(db.get(AuditRecord, rid))
    with pytest.raises(PermissionError, match="append-only"):
        db.commit()
    db.rollback()
    assert db.get(AuditRecord, rid) is not None


@pytest.mark.parametrize("statement", [
    "UPDATE audit_log SET action = 'test.rewritten'",
    "DELETE FROM audit_log",
])
@pytest.mark.commits  # raw SQL on another connection must see the rows
def test_postgresql_trigger_refuses_raw_sql_changes(app_ctx, statement):
    rid = _one_record(app_ctx)
    with pytest.raises(DBAPIError, match="append-only"), get_engine().begin() as conn:
        conn.execute(text(statement))
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT action FROM audit_log WHERE id = :id"),
                            {"id": rid}).scalar_one() == "test.parcel_handed_over"


def test_audit_record_knows_who_when_and_from_where(app, client):
    from tests.app.test_auth_support import log_in, make_user

    uid = make_user(app, email="who@example.iq")
    log_in(client, "who@example.iq")
    with app.app_context():
        rec = db.query(AuditRecord).filter_by(action="auth.login").one()
        assert rec.actor_id == uid
        assert rec.ip_address == "127.0.0.1"
        assert rec.occurred_at.tzinfo is not None
        assert rec.request_id
