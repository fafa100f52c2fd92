"""Labels and customs declarations: the barcodes printed on them scan back."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from app import barcodes
from tests.tracking.helpers import domestic_draft, inbound_draft
from tracking import labels
from tracking.services.parcels import Article, preadvise, register_inbound


def scan(pdf: bytes, tmp_path: Path, page: int = 1, dpi: int = 200) -> set[str]:
    """Render one page to PNG and return what zbarimg reads on it (type:value)."""
    src = tmp_path / "doc.pdf"
    src.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", str(dpi), "-f", str(page), "-l", str(page),
                    "-singlefile", str(src), str(tmp_path / "page")], check=True)
    out = subprocess.run(["zbarimg", "--quiet", str(tmp_path / "page.png")],
                         capture_output=True, text=True)
    return {line.strip() for line in out.stdout.splitlines() if line.strip()}


@pytest.mark.parametrize("size", ["4x6", "a6"])
def test_label_barcode_and_qr_scan(app_ctx, tmp_path, size):
    parcel = preadvise(domestic_draft())
    found = scan(labels.render_label(parcel, size), tmp_path)
    assert f"CODE-128:{parcel.tracking_number}" in found
    # The QR carries the parcel's signed reference on the site's public address, not a
    # row id: it reads back to the parcel's number.
    (qr,) = [f.removeprefix("QR-Code:") for f in found if f.startswith("QR-Code:")]
    base = app_ctx.config["PUBLIC_BASE_URL"] + "/r/"
    assert qr.startswith(base)
    assert barcodes.read(qr.removeprefix(base)) == ("parcel", parcel.tracking_number)


def test_cn23_barcode_and_qr_scan(app_ctx, tmp_path):
    parcel = register_inbound("LX123456785CN", inbound_draft(articles=[
        Article(description="Laptop computer", quantity=1, net_weight_grams=1900,
                value_amount=65000, value_currency="USD", hs_code="847130",
                origin_country="CN")]))
    assert labels.declaration_form(parcel) == "CN23"
    found = scan(labels.render_declaration(parcel), tmp_path)
    assert "CODE-128:LX123456785CN" in found
    (qr,) = [f.removeprefix("QR-Code:") for f in found if f.startswith("QR-Code:")]
    assert barcodes.read(qr.rsplit("/r/", 1)[1]) == ("parcel", "LX123456785CN")


def test_small_declaration_is_a_cn22_with_the_articles(app_ctx, tmp_path):
    parcel = register_inbound("LX123456785CN", inbound_draft())
    assert labels.declaration_form(parcel) == "CN22"
    text = PdfReader(io.BytesIO(labels.render_declaration(parcel))).pages[0].extract_text()
    assert "CN22" in text and "Bluetooth headphones" in text and "851830" in text


def test_batch_printing_puts_each_label_on_its_own_page(app_ctx):
    parcels = [preadvise(domestic_draft()) for _ in range(5)]
    reader = PdfReader(io.BytesIO(labels.render_labels(parcels)))
    assert len(reader.pages) == 5
    for page, parcel in zip(reader.pages, parcels, strict=True):
        assert labels.grouped(parcel.tracking_number) in page.extract_text()


def test_duty_receipt_qr_opens_its_parcel(app_ctx, tmp_path):
    """The duty receipt's QR carries the case's signed reference; at a counter it opens
    the parcel (to hand it over), for anyone else public tracking."""
    from app.database import db
    from tracking.barcodes import open_duty_receipt
    from tracking.models import CustomsCase

    parcel = register_inbound("LX123456785CN", inbound_draft())
    case = CustomsCase(parcel_id=parcel.id, duty_iqd=12_000, inspection_fee_iqd=5_000,
                       stamp_fee_iqd=10_000)
    db.add(case)
    db.flush()
    found = scan(labels.render_duty_receipt(case), tmp_path)
    (qr,) = [f.removeprefix("QR-Code:") for f in found if f.startswith("QR-Code:")]
    token = qr.rsplit("/r/", 1)[1]
    assert barcodes.read(token) == ("duty", str(case.id))
    opened = barcodes.open_token(token)
    assert opened == open_duty_receipt(str(case.id))
    assert opened.staff == barcodes.Page("tracking_bo.parcel", {"number": "LX123456785CN"})
    assert opened.public == barcodes.Page("tracking.track_number",
                                          {"number": "LX123456785CN"})


def test_label_is_drawn_on_first_print_and_kept(app_ctx, monkeypatch):
    """The first print draws and stores the label; a reprint serves the same bytes
    without drawing; a change to what the label shows draws it again."""
    from sqlalchemy import func, select

    from app.database import db
    from tracking.models import ParcelLabel

    parcel = preadvise(domestic_draft())
    drawn = []
    real = labels.render_label

    def counting(p, size="4x6"):
        drawn.append((p.tracking_number, size))
        return real(p, size)

    monkeypatch.setattr(labels, "render_label", counting)
    first = labels.label_for(parcel)
    assert labels.label_for(parcel) == first
    assert drawn == [(parcel.tracking_number, "4x6")]
    assert db.scalar(select(func.count()).select_from(ParcelLabel)) == 1

    # Another size is another label.
    labels.label_for(parcel, "a6")
    assert len(drawn) == 2

    # The recipient's name corrected: the stored label no longer matches, so it is drawn
    # again and the new one is kept (one row per parcel and size, still).
    parcel.recipient_name = "زينب الحسيني"
    db.flush()
    again = labels.label_for(parcel)
    assert len(drawn) == 3 and again != first
    assert labels.label_for(parcel) == again and len(drawn) == 3
    assert db.scalar(select(func.count()).select_from(ParcelLabel)) == 2

    # So does anything else printed on it: the weight, the QR's site address.
    parcel.weight_grams += 1
    labels.label_for(parcel)
    app_ctx.config["PUBLIC_BASE_URL"] = "https://post.example.iq"
    labels.label_for(parcel)
    assert len(drawn) == 5
    with pytest.raises(KeyError):
        labels.label_for(parcel, "a4")


def test_stored_label_scans_like_a_fresh_one(app_ctx, tmp_path):
    parcel = preadvise(domestic_draft())
    labels.label_for(parcel)
    found = scan(labels.label_for(parcel), tmp_path)
    assert f"CODE-128:{parcel.tracking_number}" in found
