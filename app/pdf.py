"""PDF helpers shared by every document (labels, receipts, statements, customs forms).

ReportLab draws glyphs left to right and does not join Arabic letters, so Arabic text
is reshaped (letters joined, diacritics kept) and reordered for display line by line:
wrap the logical text first, then reorder each line, or the line order comes out
reversed. Amiri has both Arabic and Latin glyphs, so mixed lines need one font.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import arabic_reshaper
import qrcode
import qrcode.constants
from bidi import get_display
from reportlab.lib.rl_accel import fp_str
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

FONT = "Barid"
FONT_BOLD = "Barid-Bold"
_FONT_CANDIDATES = [
    ("/usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Regular.ttf",
     "/usr/share/fonts/opentype/fonts-hosny-amiri/Amiri-Bold.ttf"),
    ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
     "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"),
]
_ARABIC = re.compile(r"[\u0600-\u06FF\u0750-\u077F\uFB50-\uFDFF\uFE70-\uFEFF]")
_reshaper = arabic_reshaper.ArabicReshaper(configuration={"delete_harakat": False})
_registered = False
_font_files: tuple[str, str] | None = None


class PdfFontMissing(RuntimeError):
    """No font with Arabic and Latin glyphs is installed (Debian: fonts-hosny-amiri)."""


def register_fonts() -> None:
    """Register the document font once per process; raises PdfFontMissing."""
    global _registered, _font_files
    if _registered:
        return
    for regular, bold in _FONT_CANDIDATES:
        if Path(regular).exists() and Path(bold).exists():
            pdfmetrics.registerFont(TTFont(FONT, regular))
            pdfmetrics.registerFont(TTFont(FONT_BOLD, bold))
            _font_files = (regular, bold)
            _registered = True
            return
    raise PdfFontMissing("install fonts-hosny-amiri (or fonts-dejavu-core) for PDF documents")


def font_files() -> tuple[str, str] | None:
    """The regular and bold font files documents are drawn with (None before any is
    registered): stored documents note it, so a change of font draws them again."""
    register_fonts()
    return _font_files


def has_arabic(text: str) -> bool:
    return bool(_ARABIC.search(text))


@lru_cache(maxsize=8192)
def visual(line: str) -> str:
    """One logical line of text, reshaped and reordered for drawing left to right.

    Latin-only text is returned unchanged, so tracking numbers and amounts keep their
    order. Remembered per process (the same headings, places and wrap trials recur on
    every document; reshaping is the slow part of drawing Arabic).
    """
    if not has_arabic(line):
        return line
    return get_display(_reshaper.reshape(line), base_dir="R")


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Split logical text into lines no wider than `width` points (before reordering)."""
    register_fonts()
    lines: list[str] = []
    for paragraph in text.splitlines() or [""]:
        # Most lines fit whole: then the word-by-word trials below (each one shaped and
        # measured) would end in this same one line, as every shorter prefix fits too.
        joined = " ".join(paragraph.split())
        if pdfmetrics.stringWidth(visual(joined), font, size) <= width:
            lines.append(joined)
            continue
        current = ""
        for word in paragraph.split():
            trial = f"{current} {word}".strip()
            if pdfmetrics.stringWidth(visual(trial), font, size) <= width or not current:
                current = trial
            else:
                lines.append(current)
                current = word
        lines.append(current)
    return lines


def draw_text(canvas, x: float, y: float, text: str, *, font: str = FONT, size: float = 10,
              width: float | None = None, leading: float | None = None,
              align: str | None = None) -> float:
    """Draw `text` at (x, y) top line first; returns the y below the last line.

    The box runs from x to x + width. `align` defaults to right for Arabic text and
    left otherwise; without a width, right-aligned text ends at x.
    """
    register_fonts()
    leading = leading or size * 1.3
    lines = wrap(text, font, size, width) if width else text.splitlines() or [""]
    rtl = has_arabic(text)
    align = align or ("right" if rtl else "left")
    canvas.setFont(font, size)
    for line in lines:
        shown = visual(line)
        if align == "right":
            right = x + width if width else x
            canvas.drawRightString(right, y, shown)
        elif align == "center":
            canvas.drawCentredString(x + (width or 0) / 2, y, shown)
        else:
            canvas.drawString(x, y, shown)
        y -= leading
    return y


def draw_qr(c: Any, value: str, x: float, y: float, size: float) -> None:
    """A QR code of `value`, `size` points square, bottom-left at (x, y).

    Encoded once with `qrcode` and drawn as vector: one filled path of the dark runs of
    each row, in module units under one transformation, so the page carries small
    integers (ReportLab formats every coordinate it is given in Python, which made the
    QR the slowest part of a label). ReportLab's QR widget encodes twice and draws one
    shape per module, several times slower.
    """
    # A fixed mask skips the encoder's search over all eight (any mask is valid QR; the
    # search only tunes contrast patterns, and printed labels scan fine without it).
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0,
                       mask_pattern=4)
    qr.add_data(value)
    qr.make(fit=True)
    matrix = qr.get_matrix()
    n = len(matrix)
    cell = size / n
    # Module (col, row) -> page: x + col * cell, y + size - row * cell (rows run down).
    ops = [f"q 0 g {fp_str(cell, 0, 0, -cell, x, y + size)} cm"]
    for r, row in enumerate(matrix):
        col = 0
        while col < n:
            if not row[col]:
                col += 1
                continue
            start = col
            while col < n and row[col]:
                col += 1
            ops.append(f"{start} {r} {col - start} 1 re")
    ops.append("f Q")
    # Saved and restored around itself (q ... Q): the canvas's own state is untouched.
    c.addLiteral("\n".join(ops))
