"""P2: parcel acceptance at the counter with its label available, and label drawing
beside raw ReportLab drawing the same label.

1. Acceptance: parcels per second through tracking.services.parcels.accept_at_counter
   (the function the counter page calls: S10 number from the PostgreSQL sequence,
   postage, cash through payments' ledger, EMA event, audit, one commit per parcel), in
   --workers processes at once (2, as gunicorn's 2 workers), each with its own
   connection. The label is not drawn at acceptance: it is drawn on its first print and
   kept (tracking.labels.label_for), so acceptance is measured alone and the prints
   apart. p50/p99 are per parcel.
2. First print: tracking.labels.label_for on parcels never printed (draws and stores
   the PDF), beside raw ReportLab drawing the same label (the same strings reshaped up
   front, the same lines, Code 128, ReportLab's own QR widget) with no database and no
   translation look-ups. Also beside raw ReportLab drawing the QR as label_for does (one
   path from the `qrcode` matrix), the stricter floor.
3. Reprint: label_for on parcels already printed (the stored bytes), beside the same
   raw drawing.

Ratios are Barid's rate over the baseline's (above 1: Barid is faster). Medians of
--runs runs (3; --quick: 1 short run). Round trips are SQL statements per operation.
Creates its own PostgreSQL database and drops it at the end. The last line is
`BENCH {json}` for bench/run.py.

    .venv/bin/python bench/labels.py [--quick] [--runs 3] [--parcels 400] [--renders 100]
        [--workers 2] [--profile] [--pg postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import multiprocessing as mp
import os
import pstats
import statistics
import sys
import time
import uuid
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def raw_reportlab_label(d: dict, *, vector_qr: bool = False) -> bytes:
    """The same label drawn with plain ReportLab calls from strings prepared up front:
    the floor tracking.labels stands on. `vector_qr` draws the QR as label_for does."""
    from reportlab.graphics import renderPDF
    from reportlab.graphics.barcode import code128
    from reportlab.graphics.barcode.qr import QrCodeWidget
    from reportlab.graphics.shapes import Drawing
    from reportlab.lib.pagesizes import inch
    from reportlab.pdfgen.canvas import Canvas

    from app.pdf import FONT, FONT_BOLD, draw_qr

    pw, ph = 4 * inch, 6 * inch
    m, w = 12, 4 * inch - 24
    buf = io.BytesIO()
    c = Canvas(buf, pagesize=(pw, ph), pageCompression=1)
    c.setTitle("Barid labels")
    c.setLineWidth(1.2)
    y = ph - m
    c.setFont(FONT_BOLD, 12)
    c.drawString(m, y - 14, "Iraqi Post")
    c.setFont(FONT_BOLD, 13)
    c.drawRightString(m + w - 60, y - 14, d["post_ar"])
    c.rect(pw - m - 50, y - 24, 50, 26)
    c.setFont(FONT_BOLD, 16)
    c.drawCentredString(pw - m - 25, y - 18, d["service"])
    y -= 30
    c.line(m, y, pw - m, y)
    for heading, lines, size, bold_first in (("From", d["sender"], 8.5, False),
                                             ("To", d["recipient"], 11, True)):
        y -= 11
        c.setFont(FONT, 8)
        c.drawString(m, y, heading)
        c.drawRightString(m + w, y, d["headings"][heading])
        y -= 2
        for i, line in enumerate(lines):
            fs = 13 if bold_first and i == 0 else size
            c.setFont(FONT_BOLD if bold_first and i == 0 else FONT, fs)
            y -= 12
            c.drawRightString(m + w, y, line)
        y -= 8
        c.line(m, y, pw - m, y)
    y -= 66
    probe = code128.Code128(d["number"], barHeight=58, barWidth=1, quiet=False)
    bc = code128.Code128(d["number"], barHeight=58, barWidth=min((w - 16) / probe.width, 2.2),
                         quiet=False)
    bc.drawOn(c, m + 8 + (w - 16 - bc.width) / 2, y)
    c.setFont(FONT_BOLD, 14)
    c.drawCentredString(pw / 2, y - 15, d["grouped"])
    y -= 24
    c.line(m, y, pw - m, y)
    qr = min(96, y - m - 4)
    if vector_qr:
        draw_qr(c, d["url"], m, m + 2, qr)
    else:
        widget = QrCodeWidget(d["url"], barLevel="M")
        x0, y0, x1, y1 = widget.getBounds()
        drawing = Drawing(qr, qr, transform=[qr / (x1 - x0), 0, 0, qr / (y1 - y0), 0, 0])
        drawing.add(widget)
        renderPDF.draw(drawing, c, m, m + 2)
    dx = m + qr + 8
    dy = y - 12
    for label_ar, value in d["details"]:
        c.setFont(FONT, 8)
        c.drawRightString(pw - m, dy, label_ar)
        c.setFont(FONT, 8.5)
        c.drawString(dx, dy, value)
        dy -= 13
    c.setFont(FONT, 6.5)
    c.drawString(dx, m + 4, d["tracking_url"])
    c.showPage()
    c.save()
    return buf.getvalue()


def label_strings(parcel) -> dict:
    """What the label shows, worked out once (reshaped Arabic, translations, the QR's
    signed address): the raw baseline then only draws."""
    from app.barcodes import barcode_url
    from app.money import format_money
    from app.pdf import visual
    from tracking import labels as L

    office = L._office(parcel.origin_office_id)
    return {
        "post_ar": visual(L.bi("Iraqi Post")[0]),
        "service": L.SERVICE_LETTERS.get(parcel.service, "P"),
        "headings": {h: visual(L.bi(h)[0]) for h in ("From", "To")},
        "sender": [visual(x) for x in L._address_lines(parcel, "sender")[:3]]
        + [parcel.sender_phone],
        "recipient": [visual(x) for x in L._address_lines(parcel, "recipient")[:4]]
        + [parcel.recipient_phone],
        "number": parcel.tracking_number, "grouped": L.grouped(parcel.tracking_number),
        "url": barcode_url(L.PARCEL_BARCODE, parcel.tracking_number),
        "details": [(visual(L.bi("Weight")[0]), f"{parcel.weight_grams / 1000:.2f} kg"),
                    (visual(L.bi("Service")[0]), visual(L.bi("Parcel")[0])),
                    (visual(L.bi("Office")[0]), visual(office.name_ar)),
                    (visual(L.bi("Date")[0]), L._local(parcel.created_at)),
                    (visual(L.bi("Postage")[0]),
                     visual(format_money(parcel.postage_amount, "IQD", "ar")))],
        "tracking_url": L.tracking_url(parcel.tracking_number)[:60],
    }


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


class Statements:
    """Counts SQL statements sent (round trips) on an engine while active."""

    def __init__(self, engine) -> None:
        from sqlalchemy import event

        self.n = 0
        event.listen(engine, "before_cursor_execute", self._count)

    def _count(self, *_a) -> None:
        self.n += 1


def make_app(url: str):
    from app import create_app

    return create_app({"DATABASE_URL": url, "REDIS_URL": None, "MAIL_BACKEND": "memory",
                       "TESTING": True})


def prepare(url: str) -> tuple[int, int]:
    from app.auth.services import create_post_office, create_user
    from app.database import Base, db, get_engine, unit_of_work
    from app.models_registry import load_all

    app = make_app(url)
    load_all()
    Base.metadata.create_all(get_engine())
    with app.test_request_context("/"), unit_of_work():
        office = create_post_office("BGD-01", "مكتب بريد بغداد المركزي",
                                    "Baghdad Main Post Office", "IQ-BG",
                                    is_exchange_office=True)
        clerk = create_user("Bench Clerk", email="bench@post.iq", password="correct horse 42",
                            roles=["clerk"], post_office_code="BGD-01")
        ids = (clerk.id, office.id)
    db.remove()
    get_engine().dispose()
    return ids


def draft(i: int):
    from tracking.services.parcels import Address, ParcelDraft

    return ParcelDraft(
        sender=Address(name="أحمد الكاظمي", phone="07701234567", governorate="IQ-BG",
                       district="الكرادة", landmark="قرب جامع براثا"),
        recipient=Address(name=f"فاطمة الموسوي {i}", phone="07801234567",
                          governorate="IQ-BA", district="العشار",
                          landmark="مقابل سوق حنا الشيخ"),
        weight_grams=500 + i % 5000, length_cm=30, width_cm=20, height_cm=10)


def accept_many(url: str, clerk_id: int, office_id: int, tag: str, count: int,
                profile: cProfile.Profile | None = None) -> tuple[list[float], int]:
    """`count` acceptances, one unit of work each: their times (s) and statements sent."""
    from app.database import db, get_engine, init_engine, unit_of_work
    from tracking.services.parcels import PaymentChoice, accept_at_counter

    app = make_app(url)
    init_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    counter = Statements(get_engine())
    times = []
    with app.test_request_context("/"):
        for i in range(count):
            t0 = time.perf_counter()
            if profile:
                profile.enable()
            with unit_of_work():
                accept_at_counter(draft(i), clerk_id=clerk_id, office_id=office_id,
                                  payment=PaymentChoice("cash"), acceptance_key=f"{tag}-{i}")
            if profile:
                profile.disable()
            times.append(time.perf_counter() - t0)
            db.remove()
    return times, counter.n


def acceptance_run(url: str, ids: tuple[int, int], workers: int, parcels: int,
                   tag: str) -> dict:
    """`parcels` acceptances split over `workers` processes started together."""
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(workers + 1)
    out = ctx.Queue()
    per = parcels // workers

    def work(n: int) -> None:
        # Warm-up (imports, first connection, caches) before the clock starts.
        accept_many(url, *ids, f"{tag}-warm{n}", 2)
        barrier.wait()
        times, stmts = accept_many(url, *ids, f"{tag}-{n}", per)
        out.put((times, stmts))

    procs = [ctx.Process(target=work, args=(n,)) for n in range(workers)]
    for p in procs:
        p.start()
    barrier.wait()
    t0 = time.perf_counter()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - t0
    for p in procs:
        p.join()
    times = [t for r, _ in results for t in r]
    return {"rate": len(times) / wall, "p50": 1000 * _pct(times, 0.5),
            "p99": 1000 * _pct(times, 0.99), "stmts": sum(s for _, s in results) / len(times)}


def print_run(url: str, renders: int, profile: cProfile.Profile | None = None) -> dict:
    """First prints of `renders` parcels never printed, then their reprints, beside the
    raw drawings of the same labels; rates per second, p50/p99 in ms."""
    from sqlalchemy import select

    from app.database import db, get_engine, init_engine, unit_of_work
    from tracking import labels
    from tracking.models import Parcel, ParcelLabel

    app = make_app(url)
    init_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)
    counter = Statements(get_engine())
    res: dict = {}
    with app.test_request_context("/"):
        printed = select(ParcelLabel.parcel_id)
        numbers = list(db.scalars(select(Parcel.tracking_number)
                                  .where(Parcel.id.not_in(printed))
                                  .order_by(Parcel.id).limit(renders + 1)))
        # One untimed first print: the fonts are read and registered once per process.
        with unit_of_work():
            labels.label_for(db.scalar(select(Parcel).where(
                Parcel.tracking_number == numbers.pop(0))))
        db.remove()
        for kind in ("first", "reprint"):
            times = []
            before = counter.n
            for number in numbers:
                t0 = time.perf_counter()
                if profile and kind == "first":
                    profile.enable()
                with unit_of_work():
                    parcel = db.scalar(select(Parcel).where(Parcel.tracking_number == number))
                    pdf = labels.label_for(parcel)
                if profile:
                    profile.disable()
                times.append(time.perf_counter() - t0)
                db.remove()
            res[kind] = {"rate": len(times) / sum(times), "p50": 1000 * _pct(times, 0.5),
                         "p99": 1000 * _pct(times, 0.99), "bytes": len(pdf),
                         "stmts": (counter.n - before) / len(times)}
        # Drawing alone (tracking.labels.render_label), the parcels loaded beforehand.
        parcels = list(db.scalars(select(Parcel).where(Parcel.tracking_number.in_(numbers))))
        times = []
        for parcel in parcels:
            t0 = time.perf_counter()
            pdf = labels.render_label(parcel)
            times.append(time.perf_counter() - t0)
        res["draw"] = {"rate": len(times) / sum(times), "p50": 1000 * _pct(times, 0.5),
                       "p99": 1000 * _pct(times, 0.99), "bytes": len(pdf)}
        db.remove()
        # The raw drawings of the same labels, the strings prepared beforehand.
        strings = [label_strings(db.scalar(select(Parcel).where(
            Parcel.tracking_number == n))) for n in numbers]
        db.remove()
        for kind, vector in (("raw", False), ("raw_vector_qr", True)):
            times = []
            for d in strings:
                t0 = time.perf_counter()
                raw = raw_reportlab_label(d, vector_qr=vector)
                times.append(time.perf_counter() - t0)
            res[kind] = {"rate": len(times) / sum(times), "p50": 1000 * _pct(times, 0.5),
                         "p99": 1000 * _pct(times, 0.99), "bytes": len(raw)}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one short run")
    ap.add_argument("--json", action="store_true",
                    help="accepted for bench/run.py; the BENCH line is always printed")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--parcels", type=int, default=400)
    ap.add_argument("--renders", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--profile", action="store_true",
                    help="print cProfile's top functions of one acceptance and one first print")
    ap.add_argument("--pg", default=os.environ.get(
        "BARID_BENCH_PG", os.environ.get("BARID_TEST_PG",
                                         "postgresql://postgres@127.0.0.1:5432/postgres")))
    args = ap.parse_args()
    if args.quick:
        args.runs, args.parcels, args.renders = 1, 100, 30
    logging.disable(logging.INFO)

    name = f"barid_bench_labels_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        version = conn.execute("SHOW server_version").fetchone()[0]
    url = args.pg.rsplit("/", 1)[0] + f"/{name}"
    try:
        report = run(url, args, version)
    finally:
        with psycopg.connect(args.pg, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    print("BENCH " + json.dumps(report, ensure_ascii=False))


def run(url: str, args: argparse.Namespace, version: str) -> dict:
    ids = prepare(url)
    accepts, prints, loads = [], [], []
    for r in range(args.runs):
        loads.append(os.getloadavg()[0])
        accepts.append(acceptance_run(url, ids, args.workers, args.parcels, f"r{r}"))
        loads.append(os.getloadavg()[0])
        prints.append(print_run(url, args.renders))

    def med(rows: list[dict], *path: str) -> float:
        vals = []
        for row in rows:
            for key in path:
                row = row[key]
            vals.append(row)
        return statistics.median(vals)

    acc = {k: med(accepts, k) for k in ("rate", "p50", "p99", "stmts")}
    pr = {kind: {k: med(prints, kind, k) for k in ("rate", "p50", "p99")}
          for kind in ("draw", "first", "reprint", "raw", "raw_vector_qr")}
    first_stmts, reprint_stmts = med(prints, "first", "stmts"), med(prints, "reprint", "stmts")
    load = f"load average {min(loads):.1f}-{max(loads):.1f}"
    cond = (f"PostgreSQL {version} local, {os.cpu_count()} CPUs, {load}, medians of "
            f"{args.runs} run(s)")
    print(f"conditions: {cond}")
    print(f"acceptance ({args.workers} processes, {args.parcels} parcels per run, cash, "
          f"no label drawn): {acc['rate']:.1f} parcels/s, p50 {acc['p50']:.1f} ms, "
          f"p99 {acc['p99']:.1f} ms, {acc['stmts']:.1f} statements per parcel")
    for kind, what in (("draw", "label drawing alone (render_label)"),
                       ("first", f"first print (draw + store, {first_stmts:.1f} statements)"),
                       ("reprint", f"reprint (stored bytes, {reprint_stmts:.1f} statements)"),
                       ("raw", "raw ReportLab, same label (ReportLab QR widget)"),
                       ("raw_vector_qr", "raw ReportLab, same label (QR as one path)")):
        p = pr[kind]
        print(f"{what:58} {p['rate']:8.1f} labels/s  p50 {p['p50']:6.2f} ms  "
              f"p99 {p['p99']:6.2f} ms")
    raw, strict = pr["raw"]["rate"], pr["raw_vector_qr"]["rate"]
    print(f"drawing alone / raw: {pr['draw']['rate'] / raw:.2f}x "
          f"(vs raw with the same QR path: {pr['draw']['rate'] / strict:.2f}x)")
    print(f"first print / raw: {pr['first']['rate'] / raw:.2f}x "
          f"(vs raw with the same QR path: {pr['first']['rate'] / strict:.2f}x); "
          f"reprint / raw: {pr['reprint']['rate'] / raw:.2f}x")
    if args.profile:
        for what, prof in (("acceptance", cProfile.Profile()), ("first print", None)):
            if prof is not None:
                accept_many(url, *ids, f"prof-{uuid.uuid4().hex[:6]}", 20, prof)
            else:
                prof = cProfile.Profile()
                print_run(url, 20, prof)
            s = io.StringIO()
            pstats.Stats(prof, stream=s).sort_stats("cumulative").print_stats(25)
            print(f"--- profile: {what} (cumulative, 20 operations)\n{s.getvalue()}")

    def row(work: str, barid: dict, base_name: str, base: float | None, unit_cond: str) -> dict:
        return {"goal": "P2", "work": work, "barid": round(barid["rate"], 1),
                "baseline_name": base_name, "baseline": round(base, 1) if base else None,
                "ratio": round(barid["rate"] / base, 2) if base else None,
                "p50": round(barid["p50"], 2), "p99": round(barid["p99"], 2),
                "conditions": f"{unit_cond}; {cond}"}

    return {"rows": [
        row("parcel acceptance at the counter (parcels/s, label on first print)", acc,
            "target 100 parcels/s", None,
            f"{args.workers} processes, {args.parcels} parcels/run, accept_at_counter with "
            f"cash, one commit each, {acc['stmts']:.1f} statements per parcel"),
        row("label render: tracking.labels.render_label (labels/s)", pr["draw"],
            "raw ReportLab drawing the same label", raw,
            f"1 process, {args.renders} labels/run, parcel loaded; vs raw with the same QR "
            f"path {pr['draw']['rate'] / strict:.2f}x"),
        row("label first print: draw + store (labels/s)", pr["first"],
            "raw ReportLab drawing the same label", raw,
            f"1 process, {args.renders} labels/run; vs raw with the same QR path "
            f"{pr['first']['rate'] / strict:.2f}x"),
        row("label reprint: stored bytes (labels/s)", pr["reprint"],
            "raw ReportLab drawing the same label", raw,
            f"1 process, {args.renders} labels/run, {reprint_stmts:.1f} statements each"),
    ]}


if __name__ == "__main__":
    main()
