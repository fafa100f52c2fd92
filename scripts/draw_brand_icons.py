"""Draw Barid's bitmap icons from the mark's shapes (app/static/brand/barid-mark.svg):
favicon.ico (16, 32 and 48 px) and the 180 px apple-touch-icon and 192/512 px PNGs.
The outputs are committed (a few kilobytes); run again after changing the mark.

    python scripts/draw_brand_icons.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

BRAND = Path(__file__).resolve().parent.parent / "app" / "static" / "brand"
YELLOW, BLUE, DARK, WHITE = "#f2b705", "#0b5a73", "#083f51", "#ffffff"


def mark(px: int) -> Image.Image:
    """The mark at `px` x `px`, drawn at 8x and scaled down for smooth edges."""
    big = px * 8
    k = big / 64  # the SVG's 64-unit box

    def s(*v: float) -> list[float]:
        return [x * k for x in v]

    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    d = ImageDraw.Draw(img)
    d.rounded_rectangle(s(0, 0, 64, 64), radius=14 * k, fill=YELLOW)
    d.rounded_rectangle(s(10, 17, 54, 47), radius=4 * k, fill=WHITE, outline=BLUE,
                        width=round(3.5 * k))
    d.line([tuple(s(12, 20)), tuple(s(32, 35)), tuple(s(52, 20))], fill=BLUE,
           width=round(3.5 * k), joint="curve")
    d.ellipse(s(26.5, 29.5, 37.5, 40.5), fill=DARK)
    d.ellipse(s(30, 33, 34, 37), fill=YELLOW)
    return img.resize((px, px), Image.Resampling.LANCZOS)


def main() -> None:
    mark(48).save(BRAND / "favicon.ico", sizes=[(16, 16), (32, 32), (48, 48)])
    for size, name in ((180, "apple-touch-icon.png"), (192, "icon-192.png"),
                       (512, "icon-512.png")):
        mark(size).save(BRAND / name, optimize=True)
    print(f"icons written to {BRAND}")


if __name__ == "__main__":
    main()
