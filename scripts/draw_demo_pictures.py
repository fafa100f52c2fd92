"""Draw the demo catalog's pictures into a folder, to look at them (the seeder draws the
same ones straight into the media storage; see shop/demo_pictures.py).

    python scripts/draw_demo_pictures.py /tmp/demo-pictures
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from shop.demo_pictures import picture_for
from shop.seed import PRODUCTS


def main(folder: str) -> None:
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    count = 0
    for items in PRODUCTS.values():
        for sku, category, _title_ar, title_en, *_rest in items:
            (out / f"{sku}.png").write_bytes(picture_for(sku, category, title_en))
            count += 1
    print(f"{count} pictures in {out} ({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo-pictures")
