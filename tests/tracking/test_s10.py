"""S10 identifiers: the check digit, validation reasons, and numbers from the database."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine

from tracking import s10


def test_worked_example_from_the_standard():
    assert s10.check_digit("47312482") == 9


@pytest.mark.parametrize("number", ["RR287043775IN", "EE123456785IQ", "RR000000080IQ"])
def test_published_valid_examples(number):
    assert s10.validate(number).ok


def test_check_digit_ten_becomes_zero():
    # 00000008: S = 8*7 = 56, 56 mod 11 = 1, C = 10 -> 0
    assert s10.check_digit("00000008") == 0
    assert s10.compose("RR", 8) == "RR000000080IQ"


def test_check_digit_eleven_becomes_five():
    # S mod 11 == 0 gives C = 11 -> 5: check every such serial below 2000.
    serials = [f"{n:08d}" for n in range(0, 2000)]
    weighted = [sum(int(d) * w for d, w in zip(s, s10.WEIGHTS)) for s in serials]
    elevens = [s for s, total in zip(serials, weighted) if total % 11 == 0]
    assert "00000000" in elevens and len(elevens) > 10
    for serial in elevens:
        assert s10.check_digit(serial) == 5
    assert s10.validate("EE000000005IQ").ok


def test_wrong_check_digit_is_refused_with_its_reason():
    v = s10.validate("RB123456786US")
    assert not v.ok and v.reason_code == "check_digit"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("JJ123456785IQ", "reserved_indicator"),
        ("SA123456785IQ", "reserved_indicator"),
        ("EE12345678IQ", "format"),
        ("EE1234567855IQ", "format"),
        ("E1123456785IQ", "format"),
        ("EE123456785QQ", "country"),
        ("", "format"),
        ("X" * 500, "too_long"),
    ],
)
def test_invalid_numbers_say_why(raw, reason):
    v = s10.validate(raw)
    assert not v.ok
    assert v.reason_code == reason
    assert v.reason  # a sentence for people


def test_typed_spaces_dashes_and_lowercase_are_accepted():
    v = s10.validate(" ee 123 456 785-iq ")
    assert v.ok and v.number == "EE123456785IQ"


def test_generated_numbers_are_valid_and_never_repeat(app_ctx):
    from app.database import db

    numbers = [s10.next_identifier("EE") for _ in range(200)]
    db.commit()
    assert len(set(numbers)) == 200
    assert all(s10.validate(n).ok and n.endswith("IQ") and n.startswith("EE") for n in numbers)


@pytest.mark.commits  # threads take serials on their own sessions
def test_concurrent_processes_get_distinct_serials(app):
    from app.database import db

    got: list[int] = []
    lock = threading.Lock()

    def worker():
        with app.app_context():
            mine = [s10.next_serial() for _ in range(50)]
            db.commit()
            db.remove()
        with lock:
            got.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 400 and len(set(got)) == 400


def test_reserved_indicator_is_never_issued(app_ctx):
    with pytest.raises(ValueError):
        s10.next_identifier("JA")


def test_sqlite_uses_a_counter_row(app_ctx, tmp_path):
    from app.database import Base, db, get_engine

    engine = create_engine(f"sqlite:///{tmp_path / 'c.sqlite3'}")
    Base.metadata.create_all(engine, tables=[s10.S10Counter.__table__])
    db.remove()
    db.configure(bind=engine)
    try:
        first = [s10.next_serial() for _ in range(3)]
        db.commit()
        again = s10.next_serial()
        db.commit()
    finally:
        db.remove()
        db.configure(bind=get_engine())
        engine.dispose()
    assert first == [1, 2, 3] and again == 4
