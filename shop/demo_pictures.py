"""Pictures for the demo catalog, drawn with Pillow: nothing is downloaded or shipped.

`picture_for(sku, category, title_en)` returns PNG bytes of a simple, recognisable
drawing of the product (a phone, a watch, a book ...), the same bytes every time for
the same product, so the seeder (shop.seed) can put each demo product through the same
upload path a merchant's picture takes (shop.images). scripts/draw_demo_pictures.py
writes them to a folder to look at.

Shapes are drawn at twice the size and scaled down, which smooths their edges.
Coordinates are in a 100 x 100 box.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageFilter

SIZE = 600  # the stored picture's side, in pixels
_SCALE = 2  # drawn at SIZE * _SCALE, then scaled down

Color = tuple[int, int, int]
Drawer = Callable[["Canvas", Color], None]

# Soft backgrounds by category (the listing shows products of a category together).
BACKGROUNDS: dict[str, Color] = {
    "books": (246, 239, 226), "phones": (228, 238, 246), "computers": (230, 236, 242),
    "electronics": (232, 240, 240), "men": (236, 238, 244), "women": (248, 234, 238),
    "home": (242, 240, 230), "beauty": (248, 236, 232), "clothing": (238, 236, 244),
}


class Canvas:
    """A square drawing in a 100 x 100 coordinate box."""

    def __init__(self, background: Color) -> None:
        self.px = SIZE * _SCALE
        self.img = Image.new("RGB", (self.px, self.px), background)
        self.draw = ImageDraw.Draw(self.img)

    def s(self, *values: float) -> list[float]:
        return [v * self.px / 100 for v in values]

    def rect(self, x0: float, y0: float, x1: float, y1: float, fill: Color,
             radius: float = 0, outline: Color | None = None, width: float = 0) -> None:
        self.draw.rounded_rectangle(self.s(x0, y0, x1, y1), radius=self.s(radius)[0],
                                    fill=fill, outline=outline,
                                    width=int(self.s(width)[0]) if width else 0)

    def ellipse(self, x0: float, y0: float, x1: float, y1: float, fill: Color | None,
                outline: Color | None = None, width: float = 0) -> None:
        self.draw.ellipse(self.s(x0, y0, x1, y1), fill=fill, outline=outline,
                          width=int(self.s(width)[0]) if width else 0)

    def poly(self, points: list[tuple[float, float]], fill: Color,
             outline: Color | None = None, width: float = 0) -> None:
        flat = [(x * self.px / 100, y * self.px / 100) for x, y in points]
        self.draw.polygon(flat, fill=fill, outline=outline,
                          width=int(self.s(width)[0]) if width else 1)

    def line(self, points: list[tuple[float, float]], fill: Color, width: float) -> None:
        flat = [(x * self.px / 100, y * self.px / 100) for x, y in points]
        self.draw.line(flat, fill=fill, width=max(1, int(self.s(width)[0])), joint="curve")

    def arc(self, x0: float, y0: float, x1: float, y1: float, start: float, end: float,
            fill: Color, width: float) -> None:
        self.draw.arc(self.s(x0, y0, x1, y1), start, end, fill=fill,
                      width=max(1, int(self.s(width)[0])))

    def shadow(self, x0: float, x1: float, y: float) -> None:
        """A soft shadow on the floor under the object."""
        # Blurred in a small box around it only: blurring the whole picture is slow.
        pad = 6
        left, top, right, bottom = (int(v) for v in self.s(x0 - pad, y - pad, x1 + pad, y + pad))
        layer = Image.new("L", (right - left, bottom - top), 0)
        ImageDraw.Draw(layer).ellipse(
            [v - o for v, o in zip(self.s(x0, y - 2.5, x1, y + 2.5), (left, top, left, top),
                                   strict=True)], fill=45)
        layer = layer.filter(ImageFilter.GaussianBlur(self.px / 60))
        self.img.paste((0, 0, 0), (left, top), mask=layer)

    def png(self) -> bytes:
        small = self.img.resize((SIZE, SIZE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        small.save(out, "PNG", compress_level=1)  # fast; the variants are what is kept
        return out.getvalue()


def _shade(c: Color, k: float) -> Color:
    """`c` darker (k < 1) or lighter (k > 1)."""
    if k <= 1:
        return (int(c[0] * k), int(c[1] * k), int(c[2] * k))
    return tuple(int(v + (255 - v) * (k - 1)) for v in c)  # type: ignore[return-value]


WHITE: Color = (250, 250, 250)
DARK: Color = (40, 44, 52)
GLASS: Color = (70, 120, 170)


# -- electronics -------------------------------------------------------------------------

def phone(c: Canvas, col: Color) -> None:
    c.shadow(30, 70, 92)
    c.rect(30, 8, 70, 90, DARK, radius=7)
    c.rect(33, 12, 67, 86, GLASS, radius=4)
    c.rect(33, 12, 67, 40, _shade(GLASS, 1.3), radius=4)
    c.ellipse(48.5, 14, 51.5, 17, DARK)
    for i, tone in enumerate((col, (240, 180, 60), (90, 190, 120), (230, 90, 90))):
        x = 37 + i * 7.5
        c.rect(x, 66, x + 5.5, 71.5, tone, radius=1.5)


def earbuds(c: Canvas, col: Color) -> None:
    c.shadow(20, 80, 86)
    c.rect(22, 48, 78, 84, WHITE, radius=14, outline=(200, 200, 205), width=0.8)
    c.line([(22, 60), (78, 60)], (205, 205, 210), 0.8)
    c.ellipse(47, 70, 53, 73, (90, 200, 120))
    for x in (30, 56):
        c.ellipse(x, 14, x + 14, 30, WHITE, outline=(190, 190, 195), width=0.8)
        c.rect(x + 4, 26, x + 10, 46, WHITE, radius=3, outline=(190, 190, 195), width=0.8)
        c.ellipse(x + 4, 18, x + 10, 24, DARK)


def charger(c: Canvas, col: Color) -> None:
    c.shadow(28, 72, 88)
    c.rect(36, 8, 40, 24, (170, 170, 175), radius=1)
    c.rect(60, 8, 64, 24, (170, 170, 175), radius=1)
    c.rect(26, 22, 74, 70, WHITE, radius=8, outline=(200, 200, 205), width=0.8)
    c.rect(44, 60, 56, 66, DARK, radius=1.5)
    c.line([(50, 70), (50, 80), (70, 86), (88, 82)], WHITE, 3.5)
    c.line([(50, 70), (50, 80), (70, 86), (88, 82)], (200, 200, 205), 0.6)


def power_bank(c: Canvas, col: Color) -> None:
    c.shadow(22, 78, 90)
    c.rect(26, 12, 74, 88, (52, 58, 70), radius=8)
    c.rect(30, 16, 70, 84, (66, 74, 88), radius=6)
    for i in range(4):
        c.ellipse(40 + i * 6, 70, 44 + i * 6, 74, (90, 210, 130) if i < 3 else (90, 100, 110))
    c.rect(38, 12, 48, 15, DARK, radius=1)
    c.rect(52, 12, 62, 15, DARK, radius=1)
    c.poly([(52, 30), (42, 48), (50, 48), (46, 62), (58, 42), (50, 42)], (240, 200, 60))


def laptop(c: Canvas, col: Color) -> None:
    c.shadow(8, 92, 84)
    c.rect(18, 18, 82, 66, (60, 64, 72), radius=3)
    c.rect(21, 21, 79, 63, GLASS, radius=1)
    c.poly([(21, 63), (50, 21), (79, 21), (79, 40)], _shade(GLASS, 1.2))
    c.poly([(10, 68), (90, 68), (95, 78), (5, 78)], (190, 192, 198))
    c.rect(40, 70, 60, 74, (160, 162, 168), radius=1)


def mouse(c: Canvas, col: Color) -> None:
    c.shadow(30, 70, 90)
    c.ellipse(30, 14, 70, 88, (70, 74, 84))
    c.ellipse(33, 17, 67, 85, (90, 96, 108))
    c.line([(50, 17), (50, 44)], (50, 54, 62), 1.2)
    c.rect(47.5, 24, 52.5, 36, (40, 44, 50), radius=2.5)


def tv(c: Canvas, col: Color) -> None:
    c.shadow(20, 80, 86)
    c.rect(6, 18, 94, 72, (30, 32, 38), radius=2)
    c.rect(8.5, 20.5, 91.5, 69.5, (60, 110, 160))
    c.poly([(8.5, 55), (30, 40), (50, 52), (70, 35), (91.5, 50), (91.5, 69.5), (8.5, 69.5)],
           (70, 150, 110))
    c.ellipse(70, 26, 80, 36, (250, 220, 110))
    c.rect(46, 72, 54, 80, (50, 52, 58))
    c.rect(30, 80, 70, 84, (50, 52, 58), radius=1.5)


def cooler(c: Canvas, col: Color) -> None:
    c.shadow(22, 78, 92)
    c.rect(24, 10, 76, 88, (236, 238, 240), radius=6, outline=(190, 194, 200), width=0.8)
    c.rect(30, 18, 70, 60, (210, 220, 228), radius=3)
    for i in range(8):
        c.line([(32, 22 + i * 4.8), (68, 22 + i * 4.8)], (170, 184, 196), 1)
    c.ellipse(38, 68, 46, 76, (90, 150, 200))
    c.ellipse(54, 68, 62, 76, (200, 210, 215))


def generator(c: Canvas, col: Color) -> None:
    c.shadow(10, 90, 88)
    c.rect(14, 30, 86, 76, (220, 70, 50), radius=5)
    c.rect(20, 38, 56, 68, (40, 44, 50), radius=3)
    c.rect(62, 40, 80, 52, (240, 240, 240), radius=2)
    c.line([(14, 30), (20, 18), (80, 18), (86, 30)], (60, 64, 70), 2.5)
    c.ellipse(14, 72, 28, 86, (40, 40, 44))
    c.ellipse(72, 72, 86, 86, (40, 40, 44))


def phone_case(c: Canvas, col: Color) -> None:
    c.shadow(28, 72, 92)
    c.rect(28, 8, 72, 90, col, radius=9)
    c.rect(33, 13, 67, 85, _shade(col, 1.25), radius=6)
    c.rect(36, 16, 50, 34, _shade(col, 0.7), radius=4)
    c.ellipse(38, 18, 44, 24, DARK)
    c.ellipse(38, 26, 44, 32, DARK)


def watch(c: Canvas, col: Color, *, smart: bool = False) -> None:
    c.shadow(30, 70, 94)
    strap = (40, 40, 44) if smart else (130, 80, 45)
    c.rect(40, 4, 60, 96, strap, radius=4)
    for y in (76, 82, 88):
        c.ellipse(48.5, y, 51.5, y + 3, _shade(strap, 0.6))
    if smart:
        c.rect(30, 30, 70, 70, (30, 30, 34), radius=9)
        c.rect(33.5, 33.5, 66.5, 66.5, (10, 12, 18), radius=7)
        c.arc(38, 38, 62, 62, -90, 180, (90, 210, 130), 2.4)
        c.arc(42, 42, 58, 58, -90, 90, (240, 120, 80), 2.4)
        c.rect(70, 44, 73, 52, (60, 60, 66), radius=1)
    else:
        c.ellipse(28, 28, 72, 72, (190, 160, 90))
        c.ellipse(31.5, 31.5, 68.5, 68.5, (252, 250, 244))
        for hour in range(12):
            a = math.radians(hour * 30)
            hx, hy = 50 + 15 * math.sin(a), 50 - 15 * math.cos(a)
            c.ellipse(hx - 0.9, hy - 0.9, hx + 0.9, hy + 0.9, DARK)
        c.line([(50, 50), (50, 38)], DARK, 1.6)
        c.line([(50, 50), (59, 54)], DARK, 1.2)
        c.rect(72, 47, 75, 53, (190, 160, 90), radius=1)


def smartwatch(c: Canvas, col: Color) -> None:
    watch(c, col, smart=True)


def hair_dryer(c: Canvas, col: Color) -> None:
    c.shadow(20, 70, 92)
    c.rect(40, 44, 54, 88, col, radius=5)
    c.ellipse(18, 18, 50, 50, col)
    c.rect(34, 22, 86, 46, col, radius=10)
    c.rect(80, 24, 88, 44, _shade(col, 0.7), radius=3)
    c.ellipse(24, 24, 44, 44, _shade(col, 0.75))
    c.ellipse(29, 29, 39, 39, _shade(col, 0.55))


def incense_burner(c: Canvas, col: Color) -> None:
    gold = (200, 160, 80)
    c.shadow(26, 74, 92)
    c.poly([(30, 90), (70, 90), (60, 74), (40, 74)], _shade(gold, 0.8))
    c.rect(44, 60, 56, 76, gold)
    c.poly([(24, 40), (76, 40), (66, 62), (34, 62)], gold)
    c.ellipse(24, 36, 76, 44, _shade(gold, 1.2))
    c.ellipse(40, 37, 60, 42, (180, 60, 40))
    for x in (44, 52):
        c.line([(x, 34), (x - 4, 26), (x + 2, 18), (x - 2, 8)], (190, 190, 196), 1.6)


# -- books and paper ---------------------------------------------------------------------

def book(c: Canvas, col: Color, *, globe: bool = False) -> None:
    c.shadow(24, 80, 92)
    c.rect(28, 10, 78, 88, (240, 236, 224), radius=2)  # pages
    c.rect(24, 8, 74, 86, col, radius=2)
    c.rect(24, 8, 30, 86, _shade(col, 0.7), radius=1)
    c.rect(36, 18, 68, 20.5, (236, 206, 120))
    c.rect(36, 74, 68, 76.5, (236, 206, 120))
    if globe:
        c.ellipse(37, 30, 65, 58, (90, 160, 210))
        c.poly([(44, 36), (52, 34), (55, 42), (48, 48), (42, 44)], (110, 180, 110))
        c.poly([(55, 48), (61, 46), (60, 54), (55, 55)], (110, 180, 110))
    else:
        c.rect(38, 32, 66, 36, _shade(col, 1.5), radius=1)
        c.rect(42, 40, 62, 43, _shade(col, 1.4), radius=1)
        c.ellipse(46, 50, 58, 62, (236, 206, 120), outline=None)


def atlas(c: Canvas, col: Color) -> None:
    book(c, col, globe=True)


def notebook(c: Canvas, col: Color) -> None:
    c.shadow(22, 80, 92)
    c.rect(26, 8, 78, 88, col, radius=3)
    c.rect(40, 20, 72, 34, WHITE, radius=2)
    c.line([(44, 26), (68, 26)], (170, 170, 180), 1)
    for i in range(10):
        y = 14 + i * 7.5
        c.ellipse(21, y, 31, y + 4, None, outline=(120, 124, 130), width=1.2)


def lamp(c: Canvas, col: Color) -> None:
    c.shadow(24, 64, 90)
    c.ellipse(26, 82, 62, 90, (60, 64, 70))
    c.line([(44, 86), (36, 50), (60, 26)], (80, 84, 92), 2.6)
    c.ellipse(33, 47, 39, 53, (60, 64, 70))
    c.poly([(52, 16), (72, 18), (82, 44), (58, 40)], col)
    c.poly([(58, 40), (82, 44), (78, 50), (62, 46)], (255, 236, 150))


# -- clothes -----------------------------------------------------------------------------

def shirt(c: Canvas, col: Color) -> None:
    c.shadow(20, 80, 94)
    c.poly([(36, 10), (20, 16), (6, 36), (18, 44), (26, 36), (26, 90), (74, 90), (74, 36),
            (82, 44), (94, 36), (80, 16), (64, 10), (50, 20)], col)
    c.poly([(36, 10), (50, 20), (44, 26)], _shade(col, 0.8))
    c.poly([(64, 10), (50, 20), (56, 26)], _shade(col, 0.8))
    for y in (30, 42, 54, 66, 78):
        c.ellipse(48.8, y, 51.2, y + 2.4, WHITE)
    c.line([(50, 20), (50, 90)], _shade(col, 0.85), 0.6)


def scarf(c: Canvas, col: Color) -> None:
    c.shadow(18, 82, 92)
    c.poly([(14, 20), (86, 14), (80, 40), (20, 46)], col)
    c.poly([(20, 46), (80, 40), (70, 66), (30, 72)], _shade(col, 0.85))
    c.poly([(30, 72), (70, 66), (64, 88), (36, 90)], col)
    for x in range(36, 66, 4):
        c.line([(x, 89), (x, 95)], _shade(col, 0.7), 0.8)
    c.line([(20, 30), (82, 24)], _shade(col, 1.4), 1.2)


def jeans(c: Canvas, col: Color) -> None:
    col = (50, 90, 150)  # denim
    c.shadow(20, 80, 96)
    c.poly([(28, 8), (72, 8), (78, 94), (56, 94), (50, 34), (44, 94), (22, 94)], col)
    c.rect(28, 8, 72, 14, _shade(col, 0.8))
    c.line([(50, 14), (50, 34)], _shade(col, 0.7), 0.8)
    c.line([(32, 16), (40, 26)], _shade(col, 1.3), 0.8)
    c.line([(68, 16), (60, 26)], _shade(col, 1.3), 0.8)
    c.ellipse(48.5, 9.5, 51.5, 12.5, (200, 170, 90))


def dress(c: Canvas, col: Color) -> None:
    c.shadow(14, 86, 94)
    c.poly([(38, 8), (44, 8), (50, 16), (56, 8), (62, 8), (64, 34), (58, 40), (86, 90),
            (14, 90), (42, 40), (36, 34)], col)
    c.rect(38, 38, 62, 43, _shade(col, 0.75), radius=2)
    for x, y in ((34, 62), (50, 70), (64, 60), (26, 80), (72, 80), (48, 52)):
        c.ellipse(x, y, x + 4, y + 4, _shade(col, 1.5))


def shoes(c: Canvas, col: Color) -> None:
    col = (120, 70, 40)  # leather
    c.shadow(8, 92, 80)
    c.poly([(10, 46), (34, 44), (46, 56), (84, 60), (92, 70), (90, 76), (10, 76)], col)
    c.rect(8, 74, 92, 80, (40, 30, 24), radius=2)
    c.ellipse(14, 40, 40, 52, _shade(col, 0.7))
    for i in range(4):
        c.line([(46 + i * 6, 56 + i), (50 + i * 6, 62 + i)], (230, 220, 200), 0.9)


def towels(c: Canvas, col: Color) -> None:
    c.shadow(16, 84, 90)
    tones = [col, (250, 250, 248), _shade(col, 1.45), (236, 226, 206)]
    for i, tone in enumerate(tones):
        y = 66 - i * 16
        c.rect(16, y, 84, y + 18, tone, radius=6, outline=_shade(tone, 0.85), width=0.6)
        c.line([(18, y + 13), (82, y + 13)], _shade(tone, 0.85), 0.8)


def tea_glasses(c: Canvas, col: Color) -> None:
    c.shadow(8, 92, 86)
    for x in (12, 40, 68):
        c.ellipse(x - 6, 76, x + 26, 86, (250, 250, 250), outline=(200, 160, 80), width=1.2)
        c.poly([(x, 30), (x + 20, 30), (x + 15, 54), (x + 18, 80), (x + 2, 80), (x + 5, 54)],
               (170, 60, 30))
        c.poly([(x, 24), (x + 20, 24), (x + 20, 30), (x, 30)], (236, 236, 240))
        c.line([(x + 3, 28), (x + 6, 52)], (255, 200, 170), 0.8)


def coffee_pot(c: Canvas, col: Color) -> None:
    copper = (190, 110, 60)
    c.shadow(16, 84, 92)
    c.ellipse(26, 50, 74, 90, copper)
    c.poly([(36, 56), (40, 30), (60, 30), (64, 56)], _shade(copper, 1.1))
    c.ellipse(36, 24, 64, 34, _shade(copper, 0.85))
    c.poly([(46, 24), (50, 10), (54, 24)], _shade(copper, 0.9))
    c.poly([(38, 40), (12, 20), (8, 24), (30, 52)], _shade(copper, 0.95))
    c.arc(62, 34, 88, 72, -80, 90, _shade(copper, 0.7), 3)
    c.ellipse(32, 64, 46, 76, _shade(copper, 1.3))


def prayer_rug(c: Canvas, col: Color) -> None:
    c.shadow(18, 82, 96)
    c.rect(20, 4, 80, 92, col, radius=1)
    c.rect(24, 8, 76, 88, (236, 214, 160), radius=1)
    c.rect(28, 12, 72, 84, _shade(col, 1.1))
    c.poly([(34, 80), (34, 38), (40, 26), (50, 18), (60, 26), (66, 38), (66, 80)],
           (40, 90, 80))
    c.ellipse(46, 48, 54, 56, (236, 214, 160))
    for y in range(14, 88, 8):
        c.rect(21.5, y, 23, y + 3, (236, 214, 160))
        c.rect(77, y, 78.5, y + 3, (236, 214, 160))


# -- beauty ------------------------------------------------------------------------------

def perfume(c: Canvas, col: Color) -> None:
    c.shadow(24, 76, 92)
    c.rect(44, 8, 56, 22, (200, 160, 80), radius=2)
    c.rect(46, 22, 54, 30, (220, 220, 226))
    c.rect(24, 30, 76, 90, _shade(col, 1.1), radius=10)
    c.rect(28, 34, 72, 86, col, radius=8)
    c.rect(36, 50, 64, 66, (236, 206, 120), radius=2)
    c.line([(32, 38), (32, 80)], _shade(col, 1.5), 1.5)


def oil_vial(c: Canvas, col: Color) -> None:
    c.shadow(34, 66, 92)
    c.ellipse(44, 6, 56, 16, (200, 160, 80))
    c.rect(48, 14, 52, 28, (200, 160, 80))
    c.rect(36, 28, 64, 90, (240, 236, 230), radius=6)
    c.rect(39, 46, 61, 87, (120, 70, 30), radius=4)
    c.rect(40, 56, 60, 70, (236, 206, 120), radius=1)


def bakhoor(c: Canvas, col: Color) -> None:
    c.shadow(16, 84, 90)
    c.ellipse(16, 64, 84, 86, (90, 60, 40))
    c.ellipse(18, 60, 82, 78, (130, 90, 60))
    for x, y in ((28, 64), (40, 62), (52, 66), (62, 62), (34, 70), (56, 70)):
        c.rect(x, y, x + 9, y + 5, (60, 36, 24), radius=1.5)
    for x in (40, 56):
        c.line([(x, 58), (x - 4, 44), (x + 3, 32), (x - 2, 18)], (190, 190, 196), 1.6)


def cream_jar(c: Canvas, col: Color) -> None:
    c.shadow(18, 82, 90)
    c.rect(20, 50, 80, 86, (250, 248, 246), radius=6, outline=(220, 216, 212), width=0.6)
    c.rect(18, 34, 82, 52, col, radius=5)
    c.rect(30, 62, 70, 74, col, radius=2)
    c.ellipse(24, 14, 76, 32, (252, 244, 236))
    c.ellipse(30, 18, 60, 28, (255, 255, 255))


def lipstick(c: Canvas, col: Color) -> None:
    c.shadow(30, 70, 94)
    c.rect(38, 54, 62, 92, (200, 160, 80), radius=2)
    c.rect(36, 54, 64, 58, (170, 130, 60))
    c.rect(41, 34, 59, 54, (220, 200, 140))
    c.poly([(43, 34), (43, 14), (57, 6), (57, 34)], (190, 30, 60))


def shampoo(c: Canvas, col: Color) -> None:
    c.shadow(26, 74, 92)
    c.rect(42, 6, 58, 18, (50, 54, 60), radius=2)
    c.rect(28, 18, 72, 90, col, radius=12)
    c.rect(34, 40, 66, 70, (250, 246, 236), radius=3)
    c.ellipse(44, 46, 56, 58, (150, 90, 40))
    c.line([(32, 26), (32, 82)], _shade(col, 1.35), 1.6)


def soap(c: Canvas, col: Color) -> None:
    c.shadow(12, 88, 80)
    c.rect(14, 40, 86, 78, _shade(col, 0.85), radius=12)
    c.rect(14, 36, 86, 72, col, radius=12)
    c.rect(30, 46, 70, 62, _shade(col, 0.85), radius=4)
    for x, y, r in ((20, 22, 5), (34, 14, 4), (74, 20, 6), (62, 10, 3)):
        c.ellipse(x, y, x + r, y + r, (255, 255, 255), outline=(200, 220, 230), width=0.5)


def dates_box(c: Canvas, col: Color) -> None:
    c.shadow(10, 90, 88)
    c.rect(10, 40, 90, 84, (200, 160, 80), radius=3)
    c.rect(14, 44, 86, 80, (230, 210, 160), radius=2)
    for row in range(3):
        for i in range(6):
            x, y = 16 + i * 11.5, 46 + row * 11.5
            c.ellipse(x, y, x + 10, y + 10, (110, 52, 24))
            c.ellipse(x + 2, y + 2, x + 5, y + 5, (150, 80, 40))
    c.rect(8, 24, 92, 38, (150, 40, 40), radius=3)


# English title words, first match wins; then the category's drawing.
BY_WORD: list[tuple[str, Drawer]] = [
    ("smartwatch", smartwatch), ("smart watch", smartwatch), ("wristwatch", watch),
    ("watch", watch), ("phone case", phone_case), ("earbud", earbuds),
    ("charger", charger), ("power bank", power_bank), ("laptop", laptop), ("mouse", mouse),
    ("tv", tv), ("cooler", cooler), ("generator", generator), ("phone", phone),
    ("hair dryer", hair_dryer), ("incense burner", incense_burner), ("atlas", atlas),
    ("notebook", notebook), ("lamp", lamp), ("shirt", shirt), ("scarf", scarf),
    ("jeans", jeans), ("dress", dress), ("shoes", shoes), ("towel", towels),
    ("tea glass", tea_glasses), ("coffee pot", coffee_pot), ("prayer rug", prayer_rug),
    ("perfume", perfume), ("oud oil", oil_vial), ("bakhoor", bakhoor), ("cream", cream_jar),
    ("lipstick", lipstick), ("shampoo", shampoo), ("soap", soap), ("dates", dates_box),
]
BY_CATEGORY: dict[str, Drawer] = {
    "books": book, "phones": phone, "computers": laptop, "electronics": tv, "men": shirt,
    "women": dress, "home": towels, "beauty": perfume, "clothing": shirt,
}
PALETTE: list[Color] = [(160, 50, 50), (40, 90, 140), (40, 110, 80), (120, 70, 140),
                        (200, 120, 40), (30, 110, 130), (170, 60, 110), (90, 90, 100)]


def drawer_for(category: str, title_en: str) -> Drawer:
    """Which drawing a product gets: by a word of its English title, else its category."""
    title = f" {title_en.lower()} "
    for word, drawer in BY_WORD:
        if word in title:
            return drawer
    return BY_CATEGORY.get(category, book)


def picture_for(sku: str, category: str, title_en: str) -> bytes:
    """A PNG of the product, the same bytes every time for the same arguments; the
    colour is chosen from the sku, so books on a shelf differ."""
    pick = int.from_bytes(hashlib.sha256(sku.encode()).digest()[:2], "big")
    canvas = Canvas(BACKGROUNDS.get(category, (238, 240, 242)))
    drawer_for(category, title_en)(canvas, PALETTE[pick % len(PALETTE)])
    return canvas.png()
