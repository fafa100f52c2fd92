"""Fill a fresh Barid schema with parcels and their events in bulk (COPY and set-based
INSERTs), for the tracking benchmarks."""

from __future__ import annotations

import psycopg

CODES = ["EMA", "EDD", "EDE", "EMG", "EDD", "EDE", "EMG", "EDG", "EDD", "EDG"]


def fill(url: str, n_parcels: int, per_parcel: int) -> list[str]:
    """Schema from the models, then parcels and events in bulk; returns the numbers."""
    from tracking.s10 import compose
    from tracking.upu import event_codes

    numbers = [compose("CP", i) for i in range(1, n_parcels + 1)]
    codes = (CODES * (per_parcel // len(CODES) + 1))[:per_parcel]
    statuses = [event_codes()[c].status for c in codes]
    # The flags the state machine gives this timeline, stored as Barid would have stored
    # them (a scan back to an earlier stage is out of sequence), so that ingest finds a
    # consistent history, not one to re-flag.
    from tracking.status import derive

    class _Ev:
        def __init__(self, code: str, k: int) -> None:
            self.code, self.occurred_at, self.id = code, k, k

    d = derive([_Ev(c, k) for k, c in enumerate(codes)])  # type: ignore[arg-type]
    stray = "ARRAY[" + ",".join("true" if k in d.out_of_sequence else "false"
                                for k in range(len(codes))) + "]"
    last = max(k for k in range(len(codes)) if k not in d.out_of_sequence)
    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        office = conn.execute(
            "INSERT INTO post_offices (code, name_ar, name_en, governorate, address, "
            "is_exchange_office, created_at) VALUES ('BGD-01', 'مكتب بريد بغداد', "
            "'Baghdad', 'IQ-BG', '', true, now()) RETURNING id").fetchone()[0]
        conn.execute("CREATE TEMP TABLE nums (id bigint, n text)")
        with conn.cursor().copy("COPY nums (id, n) FROM STDIN") as copy:
            for i, n in enumerate(numbers, start=1):
                copy.write_row((i, n))
        conn.execute(f"""
            INSERT INTO parcels (id, tracking_number, service, direction, status, closed,
              failed_attempts, last_event_at, last_activity_at, sender_name, sender_phone,
              sender_country, sender_governorate, sender_district, sender_landmark,
              sender_address, recipient_name, recipient_phone, recipient_country,
              recipient_governorate, recipient_district, recipient_landmark,
              recipient_address, origin_office_id, weight_grams, length_cm, width_cm,
              height_cm, postage_amount, postage_currency, importer_reference,
              invoice_number, licence_number, certificate_number, customs_prepaid_duty_iqd,
              customs_prepaid_fees_iqd, created_at)
            SELECT id, n, 'parcel', 'domestic', '{statuses[last]}', false, 0,
              now() - interval '1 hour', now(), 'مرسل', '07700000000', 'IQ', 'IQ-BG', '', '',
              '', 'مستلم', '07800000000', 'IQ', 'IQ-BA', '', '', '', {office}, 1000, 0, 0, 0,
              5000, 'IQD', '', '', '', '', 0, 0, now()
            FROM nums""")
        conn.execute("SELECT setval(pg_get_serial_sequence('parcels', 'id'), "
                     f"{n_parcels})")
        arr_codes = "ARRAY[" + ",".join(f"'{c}'" for c in codes) + "]"
        arr_status = "ARRAY[" + ",".join(f"'{s}'" for s in statuses) + "]"
        conn.execute(f"""
            INSERT INTO parcel_events (uid, parcel_id, code, status, occurred_at,
              occurred_utc_offset, received_at, office_id, location, source, note,
              after_final, out_of_sequence)
            SELECT 'b:' || p.id || ':' || g.k, p.id, ({arr_codes})[g.k], ({arr_status})[g.k],
              now() - interval '10 days' + g.k * interval '20 hours', 180, now(), {office},
              '', 'partner', '', false, ({stray})[g.k]
            FROM parcels p CROSS JOIN generate_series(1, {per_parcel}) AS g(k)""")
        conn.execute("ANALYZE")
    return numbers
