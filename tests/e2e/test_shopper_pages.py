"""Every page a shopper sees, in a real browser at the width of a small phone (360 px),
in Arabic and in English, on the demo data `make run` loads.

What must hold on each page:
- nothing spills sideways: the page is no wider than the screen, so the shopper never
  scrolls left and right to read it;
- on the Arabic page no English word is left: text in Latin letters appears only where
  it is a name or a code (inside <bdi>, <code>, or an element marked dir="ltr"/lang),
  never as an untranslated label.

Screenshots of any page that fails are written to $BARID_SCREENSHOTS for people to see.
"""

from __future__ import annotations

import re

import pytest
from flask import url_for
from sqlalchemy import select

pytestmark = [pytest.mark.e2e, pytest.mark.commits]

PHONE = {"width": 360, "height": 740}
# Pages whose phone layout people look at in the screenshots, failing or not.
LOOKED_AT = {"orders", "statement", "buy-request", "product", "track"}

# The text of the page that is not a name or a code: text nodes outside <bdi>, <code>,
# <kbd>, <samp>, scripts and styles, and outside anything marked as another language or
# direction (a merchant's English product title is wrapped so).
VISIBLE_TEXT = """() => {
  const skip = new Set(['BDI', 'CODE', 'KBD', 'SAMP', 'SCRIPT', 'STYLE', 'NOSCRIPT',
                        'TEMPLATE', 'svg']);
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    let el = n.parentElement, hidden = false;
    for (let e = el; e && e !== document.body; e = e.parentElement) {
      if (skip.has(e.tagName) || e.hasAttribute('translate') && e.getAttribute('translate') === 'no'
          || (e.getAttribute('dir') === 'ltr') || (e.getAttribute('lang') || 'ar') !== 'ar') {
        hidden = true; break;
      }
    }
    if (hidden) continue;
    const style = el && getComputedStyle(el);
    if (style && (style.display === 'none' || style.visibility === 'hidden')) continue;
    const t = n.textContent.trim();
    if (t) out.push(t);
  }
  // Placeholders, button values and image alt texts are read too.
  document.querySelectorAll('input[placeholder], textarea[placeholder]').forEach(
    e => out.push(e.getAttribute('placeholder')));
  document.querySelectorAll('input[type=submit][value], input[type=button][value]').forEach(
    e => out.push(e.value));
  document.querySelectorAll('img[alt]').forEach(e => out.push(e.getAttribute('alt')));
  return out;
}"""

# A Latin word: two letters or more (single letters are units or list marks), with a
# small letter: capitals alone (IQD, PDF, the EE...IQ of an S10 number) are codes.
LATIN_WORD = re.compile(r"[A-Za-z]*[a-z][A-Za-z]*")


def latin_words(text: str) -> set[str]:
    """The English words in `text`, leaving out codes and addresses: a token with a
    digit (BR80995757, 5ml), an @ (name@example.com) or :// (a web address)."""
    words = set()
    for token in text.split():
        if any(c.isdigit() for c in token) or "@" in token or "://" in token:
            continue
        words.update(w for w in LATIN_WORD.findall(token) if len(w) >= 2)
    return words


@pytest.fixture()
def demo(app):
    """The demo data of `make run`, and a placed (unpaid) order and a duty-due parcel
    for the demo shopper, with the shopper pages' addresses."""
    from app.auth.models import User
    from app.database import db
    from app.seed import seed_demo
    from payments.models import PostCard
    from shop.models import BuyRequest, Merchant, Product
    from tests.shop.checkout_helpers import place
    from tracking.models import Parcel

    with app.app_context():
        seed_demo(force=True)
        shopper = db.scalar(select(User).where(User.email == "shopper@barid.iq"))
        product = db.scalar(select(Product).where(Product.active.is_(True))
                            .order_by(Product.id))
        merchant = db.get(Merchant, product.merchant_id)
        from shop.services import cart as cart_service
        from shop.services.cart import CartOwner

        cart_service.add_to_cart(CartOwner(user_id=shopper.id, session={}), product.id, 1)
        db.commit()
        from shop.models import Address

        address = db.scalar(select(Address).where(Address.user_id == shopper.id))
        order = place(shopper, {"method": "door", "address_id": address.id})
        request_id = db.scalar(select(BuyRequest.id).where(BuyRequest.user_id == shopper.id))
        card = db.scalar(select(PostCard).where(PostCard.user_id == shopper.id))
        parcel = db.scalar(select(Parcel).order_by(Parcel.id))
        with app.test_request_context():
            shopper_pages = {
                "orders": url_for("shop_orders.order_list"),
                "order": url_for("shop_orders.order_detail", order_id=order.id),
                "order-show": url_for("shop_orders.order_show", order_id=order.id),
                "checkout": url_for("shop_orders.checkout_page"),
                "addresses": url_for("shop_orders.address_book"),
                "buy-for-me": url_for("shop_orders.buy_for_me"),
                "buy-request": url_for("shop_orders.buy_request", request_id=request_id),
                "cards": url_for("payments.my_cards"),
                "statement": url_for("payments.statement", card_id=card.id),
                "card-show": url_for("payments.card_show", card_id=card.id),
                "top-up": url_for("payments.online_top_up", card_id=card.id),
                "account": url_for("auth.account"),
                "change-password": url_for("auth.change_password"),
            }
            anyone = {
                "home": "/",
                "shop": url_for("shop.index"),
                "category": url_for("shop.category", slug=product.category.slug),
                "merchant": url_for("shop.merchant", slug=merchant.slug),
                "search": url_for("shop.search", q="الهاتف"),
                "product": url_for("shop.product", product_id=product.id),
                "cart": url_for("shop.cart"),
                "track-form": url_for("tracking.track"),
                "track": url_for("tracking.track_number", number=parcel.tracking_number),
                "track-show": url_for("tracking.track_show", number=parcel.tracking_number),
                "duty": url_for("tracking.pay_duty", number=parcel.tracking_number),
                "login": url_for("auth.login"),
                "register": url_for("auth.register"),
                "forgot": url_for("auth.forgot_password"),
            }
    return {"anyone": anyone, "shopper": shopper_pages}


def _log_in(page, base: str) -> None:
    from app.auth.seed import DEMO_PASSWORD

    page.goto(base + "/login")
    page.fill("input[name=identifier]", "shopper@barid.iq")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("form [type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, "the demo shopper could not log in"


def _visit_all(browser, base: str, demo, lang: str, screenshots) -> tuple[dict, dict]:
    """Open every shopper page in `lang` at phone width: {name: overflow px} of the
    pages wider than the screen and {name: [Latin words]} of Arabic pages."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(f"{base}/lang/{lang}")
    overflow: dict[str, int] = {}
    latin: dict[str, list[str]] = {}

    def check(name: str, path: str) -> None:
        response = page.goto(base + path)
        assert response is not None and response.status < 500, f"{name}: {path} failed"
        assert page.locator("html").get_attribute("lang") == lang, name
        if name in LOOKED_AT:
            page.screenshot(path=str(screenshots / f"phone-{lang}-{name}.png"), full_page=True)
        wide = page.evaluate("() => document.documentElement.scrollWidth")
        if wide > PHONE["width"]:
            overflow[name] = wide - PHONE["width"]
            page.screenshot(path=str(screenshots / f"phone-overflow-{lang}-{name}.png"),
                            full_page=True)
        if lang == "ar":
            words = sorted({w for t in page.evaluate(VISIBLE_TEXT) for w in latin_words(t or "")})
            if words:
                latin[name] = words
                page.screenshot(path=str(screenshots / f"latin-{name}.png"), full_page=True)

    for name, path in demo["anyone"].items():
        if name in {"login", "register", "forgot"}:
            continue
        check(name, path)
    for name in ("login", "register", "forgot"):
        check(name, demo["anyone"][name])
    _log_in(page, base)
    for name, path in demo["shopper"].items():
        check(name, path)
    page.screenshot(path=str(screenshots / f"phone-{lang}-account.png"), full_page=True)
    context.close()
    return overflow, latin


def test_every_shopper_page_fits_a_360_pixel_phone_in_both_languages(app, serve, browser,
                                                                     demo, screenshots):
    base = serve(app)
    found = {lang: _visit_all(browser, base, demo, lang, screenshots) for lang in ("ar", "en")}
    overflow = {lang: wide for lang, (wide, _) in found.items() if wide}
    latin = found["ar"][1]
    assert (overflow, latin) == ({}, {}), (
        f"pages wider than a 360 px phone (extra px): {overflow}; "
        f"English words left on Arabic pages: {latin}")
