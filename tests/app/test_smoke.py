from app.database import db
from app.events import DomainEvent, publish


def test_published_event_is_kept_with_its_payload(app_ctx):
    publish("test.happened", {"id": 1})
    db.commit()
    stored = db.query(DomainEvent).one()
    assert stored.name == "test.happened" and stored.payload == {"id": 1}
    assert stored.occurred_at.tzinfo is not None
