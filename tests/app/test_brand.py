"""Barid's logo and icons: real files, shown in the shop's header and the back office,
served with their types, in both page directions."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from app.config import APP_DIR
from tests.app.test_auth_support import log_in, make_user

BRAND = APP_DIR / "static" / "brand"


@pytest.mark.parametrize("lang,direction", [("ar", "rtl"), ("en", "ltr")])
def test_pages_show_the_logo_and_name_the_icons(client, lang, direction):
    client.get(f"/lang/{lang}")
    for path in ("/", "/shop/"):
        html = client.get(path).get_data(as_text=True)
        assert f'dir="{direction}"' in html
        assert re.search(r'<img class="brand-mark" src="/static/brand/barid-mark.svg" alt=""', html)
        assert 'rel="icon" href="/static/brand/favicon.ico"' in html
        assert 'rel="icon" href="/static/brand/favicon.svg" type="image/svg+xml"' in html
        assert 'rel="apple-touch-icon"' in html


def test_the_back_office_shows_the_logo(app, client):
    make_user(app, email="clerk.brand@example.iq", name="Supervisor", roles=("supervisor",))
    log_in(client, "clerk.brand@example.iq")
    html = client.get("/backoffice/").get_data(as_text=True)
    assert 'class="brand-mark" src="/static/brand/barid-mark.svg"' in html


def test_icons_are_served_with_their_types(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200 and ico.mimetype == "image/vnd.microsoft.icon"
    sizes = Image.open(io.BytesIO(ico.data)).info["sizes"]
    assert {(16, 16), (32, 32), (48, 48)} <= set(sizes)
    svg = client.get("/static/brand/favicon.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    touch = Image.open(io.BytesIO(client.get("/static/brand/apple-touch-icon.png").data))
    assert touch.size == (180, 180)


def test_the_svgs_are_plain_drawings():
    # Served from our own origin: no scripts, no outside references.
    for name in ("barid-mark.svg", "barid-logo.svg", "favicon.svg"):
        text = (BRAND / name).read_text()
        assert text.lstrip().startswith("<svg") and "<script" not in text
        assert "href" not in text and "http" not in text.replace(
            'xmlns="http://www.w3.org/2000/svg"', "")
    logo = (BRAND / "barid-logo.svg").read_text()
    assert "بريد" in logo and "BARID" in logo and 'text-anchor="middle"' in logo
