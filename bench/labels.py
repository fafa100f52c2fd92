"""Parcel acceptance with its label, and label rendering alone beside raw ReportLab.

1. Acceptance: parcels per second through tracking.services.parcels.accept_at_counter (the
   function the counter page calls: S10 number from the PostgreSQL sequence, postage, cash
   through payments' ledger, EMA event, audit, one commit) followed by the 4x6 label PDF.
2. Rendering: tracking.labels.render_label on the same parcel, beside raw ReportLab drawing
   the same things (Code 128, QR, the same Arabic strings reshaped once up front, the same
   lines) with no database and no translation look-ups.

Creates its own database on the local PostgreSQL and drops it at the end.

    .venv/bin/python bench/labels.py [--parcels 300] [--renders 300]
        [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import platform
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import emit, median_of, row  # noqa: E402


def raw_reportlab_label(number: str, url: str, lines: list[str]) -> bytes:
    """The same label drawn with plain ReportLab calls: the floor tracking.labels stands on."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode import code128
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import inch
    from reportlab.pdfgen.canvas import Canvas

    from app.pdf import FONT, FONT_BOLD

    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(4 * inch, 6 * inch), pageCompression=1)
    c.setFont(FONT_BOLD, 13)
    c.drawString(12, 404, "Iraqi Post")
    y = 380
    for line in lines:  # already reshaped and reordered
        c.setFont(FONT, 11)
        c.drawRightString(276, y, line)
        y -= 14
    bc = code128.Code128(number, barHeight=58, barWidth=1.6, quiet=False)
    bc.drawOn(c, 20, 160)
    c.setFont(FONT_BOLD, 14)
    c.drawCentredString(144, 145, number)
    w = QrCodeWidget(url, barLevel="M")
    d = Drawing(96, 96, transform=[96 / 90.7, 0, 0, 96 / 90.7, 0, 0])
    d.add(w)
    renderPDF.draw(d, c, 12, 14)
    c.showPage()
    c.save()
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--parcels", type=int, default=300)
    ap.add_argument("--renders", type=int, default=300)
    ap.add_argument("--pg", default=os.environ.get(
        "BARID_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    logging.disable(logging.INFO)

    def once() -> dict[str, float]:
        name = f"barid_bench_labels_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = args.pg.rsplit("/", 1)[0] + f"/{name}"
        try:
            return run(url, args)
        finally:
            from app.database import get_engine

            get_engine().dispose()
            with psycopg.connect(args.pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    med = median_of(args.runs, once)
    emit([row("P2", "P2 acceptance+label (/s)", med["accept"], "goal >=", 100.0,
              conditions=f"1 process, {args.parcels} parcels, cash, PostgreSQL (the goal "
              "is for 2 workers)", load=med["load"], runs=args.runs),
          row("P2", "P2 label render (/s)", med["render"], "raw ReportLab", med["raw"],
              conditions=f"1 process, {args.renders} renders of one 4x6 label",
              load=med["load"], runs=args.runs)], json_line=args.json)


def run(url: str, args: argparse.Namespace) -> dict[str, float]:
    from app import create_app
    from app.auth.services import create_post_office, create_user
    from app.barcodes import barcode_url
    from app.database import Base, db, get_engine
    from app.models_registry import load_all
    from app.pdf import visual
    from tracking import labels
    from tracking.services.parcels import (
        Address,
        ParcelDraft,
        PaymentChoice,
        accept_at_counter,
    )

    app = create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory",
                      "TESTING": True})
    load_all()
    Base.metadata.create_all(get_engine())
    with app.test_request_context("/"):
        create_post_office("BGD-01", "مكتب بريد بغداد المركزي", "Baghdad Main Post Office",
                           "IQ-BG", is_exchange_office=True)
        office_id = db.execute(db.query(Base.metadata.tables["post_offices"].c.id)
                               .statement).scalar_one()
        clerk = create_user("Bench Clerk", email="bench@post.iq",
                            password="correct horse 42", roles=["clerk"],
                            post_office_code="BGD-01")

        def draft(i: int) -> ParcelDraft:
            return ParcelDraft(
                sender=Address(name="أحمد الكاظمي", phone="07701234567", governorate="IQ-BG",
                               district="الكرادة", landmark="قرب جامع براثا"),
                recipient=Address(name=f"فاطمة الموسوي {i}", phone="07801234567",
                                  governorate="IQ-BA", district="العشار",
                                  landmark="مقابل سوق حنا الشيخ"),
                weight_grams=500 + i % 5000, length_cm=30, width_cm=20, height_cm=10)

        # Warm-up: fonts, caches, the first connection.
        p = accept_at_counter(draft(0), clerk_id=clerk.id, office_id=office_id,
                              payment=PaymentChoice("cash"))
        labels.render_label(p)

        t0 = time.perf_counter()
        for i in range(1, args.parcels + 1):
            p = accept_at_counter(draft(i), clerk_id=clerk.id, office_id=office_id,
                                  payment=PaymentChoice("cash"), acceptance_key=f"b{i}")
            labels.render_label(p)
        accept_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        for _ in range(args.renders):
            pdf = labels.render_label(p)
        render_s = time.perf_counter() - t0

        # The same data the label's QR carries: the parcel's signed barcode URL.
        url_ = barcode_url(labels.PARCEL_BARCODE, p.tracking_number)
        lines = [visual(x) for x in ["فاطمة الموسوي", "البصرة - العشار", "مقابل سوق حنا الشيخ",
                                     "07801234567", "أحمد الكاظمي", "بغداد - الكرادة"]]
        t0 = time.perf_counter()
        for _ in range(args.renders):
            raw = raw_reportlab_label(p.tracking_number, url_, lines)
        raw_s = time.perf_counter() - t0

    print(f"machine: {platform.machine()} {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, PostgreSQL (local)")
    print(f"acceptance + label: {args.parcels} parcels in {accept_s:.2f} s = "
          f"{args.parcels / accept_s:.1f} parcels/s ({1000 * accept_s / args.parcels:.1f} ms each)")
    print(f"label render (tracking.labels): {args.renders / render_s:.1f} labels/s "
          f"({1000 * render_s / args.renders:.2f} ms each, {len(pdf)} bytes)")
    print(f"raw ReportLab, same drawing:    {args.renders / raw_s:.1f} labels/s "
          f"({1000 * raw_s / args.renders:.2f} ms each, {len(raw)} bytes)")
    share = (render_s / args.renders) / (accept_s / args.parcels)
    print(f"ratio render/raw time: {render_s / raw_s:.2f}x; "
          f"render share of acceptance: {100 * share:.0f} %")
    return {"accept": args.parcels / accept_s, "render": args.renders / render_s,
            "raw": args.renders / raw_s}


if __name__ == "__main__":
    main()
