"""The cart: what a shopper means to buy, with the price seen when each line was added.

An anonymous visitor's cart lives in the (signed) session; a logged-in shopper's in the
`carts` table. On login the session cart is merged into the account's
(`merge_session_cart`, wired to flask-login's `user_logged_in` signal in shop.views).

The cart reserves nothing: quantities are checked against stock when changed and again
when the cart is shown, and checkout (which reserves) re-checks under lock. Each line
keeps the unit price, currency and dinar price the shopper saw, so checkout can say
"the price changed since you added it".
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app.database import db, utcnow
from app.errors import ValidationFailed
from shop.models import HOME_CURRENCY, Cart, CartLine, Merchant, Product
from shop.pricing import ShopPrice, price_in_iqd, rates_for

SESSION_KEY = "shop_cart"
MAX_QUANTITY = 99
# The session is a signed cookie (about 4 KB): an anonymous cart stays small.
MAX_SESSION_LINES = 30
MAX_ACCOUNT_LINES = 100


class CartRefused(ValidationFailed):
    """A cart change that cannot be made (bad quantity, not enough stock, gone product)."""

    code = "cart_refused"


@dataclass(frozen=True)
class CartOwner:
    """Whose cart: a logged-in user's (user_id) or the anonymous visitor's session."""

    user_id: int | None
    session: MutableMapping[str, Any]


@dataclass
class _Stored:
    product_id: int
    quantity: int
    seen_price: int
    seen_currency: str
    seen_price_iqd: int
    added_at: datetime


@dataclass
class CartItem:
    """A cart line as shown: the product now, the price then, and what is wrong if any."""

    product: Product
    quantity: int
    seen_price: int
    seen_currency: str
    seen_price_iqd: int
    price: ShopPrice
    problem: str | None = None  # unavailable, sold_out, over_stock, no_rate

    @property
    def line_total(self) -> int:
        return self.price.original * self.quantity

    @property
    def line_total_iqd(self) -> int | None:
        return None if self.price.iqd is None else self.price.iqd * self.quantity

    @property
    def price_changed(self) -> bool:
        return (self.seen_currency != self.price.currency
                or self.seen_price != self.price.original
                or self.seen_price_iqd != self.price.iqd)

    @property
    def problem_message(self) -> str | None:
        if self.problem == "unavailable":
            return _("This product is no longer available. Remove it from your cart.")
        if self.problem == "sold_out":
            return _("Sold out.")
        if self.problem == "over_stock":
            return _("Only %(stock)s in stock.", stock=self.product.stock)
        if self.problem == "no_rate":
            return _("This product cannot be priced in dinars right now.")
        return None


@dataclass
class CartSummary:
    items: list[CartItem] = field(default_factory=list)
    # Sum of the sellable lines per merchant currency, and all of them in dinars.
    subtotals: dict[str, int] = field(default_factory=dict)
    subtotals_iqd: dict[str, int] = field(default_factory=dict)
    total_iqd: int = 0

    @property
    def count(self) -> int:
        return sum(i.quantity for i in self.items)

    @property
    def has_problems(self) -> bool:
        return any(i.problem for i in self.items)

    @property
    def is_empty(self) -> bool:
        return not self.items


# -- storage: session or database -------------------------------------------------------

def _session_lines(session: MutableMapping[str, Any]) -> list[_Stored]:
    lines = []
    for raw in session.get(SESSION_KEY) or []:
        try:
            lines.append(_Stored(int(raw["p"]), int(raw["q"]), int(raw["sp"]), str(raw["sc"]),
                                 int(raw["si"]), datetime.fromisoformat(raw["at"])))
        except (KeyError, TypeError, ValueError):
            continue  # an old or malformed entry is dropped, not fatal
    return lines


def _save_session_lines(session: MutableMapping[str, Any], lines: list[_Stored]) -> None:
    session[SESSION_KEY] = [
        {"p": s.product_id, "q": s.quantity, "sp": s.seen_price, "sc": s.seen_currency,
         "si": s.seen_price_iqd, "at": s.added_at.isoformat(timespec="seconds")}
        for s in lines
    ]


def _account_cart(user_id: int, *, create: bool) -> Cart | None:
    """The user's cart row, locked for this transaction, created if asked."""
    stmt = select(Cart).where(Cart.user_id == user_id).with_for_update()
    cart = db.scalar(stmt)
    if cart is not None or not create:
        return cart
    try:
        with db.begin_nested():
            cart = Cart(user_id=user_id)
            db.add(cart)
    except IntegrityError:
        cart = db.scalar(stmt)  # another request created it first
    return cart


def _account_lines(cart: Cart | None) -> list[_Stored]:
    if cart is None:
        return []
    return [_Stored(ln.product_id, ln.quantity, ln.seen_price, ln.seen_currency,
                    ln.seen_price_iqd, ln.added_at) for ln in cart.lines]


def _write_account_lines(cart: Cart, lines: list[_Stored]) -> None:
    by_product = {ln.product_id: ln for ln in cart.lines}
    keep = {s.product_id for s in lines}
    for product_id, row in by_product.items():
        if product_id not in keep:
            cart.lines.remove(row)
    for s in lines:
        row = by_product.get(s.product_id)
        if row is None:
            cart.lines.append(CartLine(
                product_id=s.product_id, quantity=s.quantity, seen_price=s.seen_price,
                seen_currency=s.seen_currency, seen_price_iqd=s.seen_price_iqd,
                added_at=s.added_at))
        else:
            row.quantity, row.seen_price = s.quantity, s.seen_price
            row.seen_currency, row.seen_price_iqd = s.seen_currency, s.seen_price_iqd
            row.added_at = s.added_at
    cart.updated_at = utcnow()


# -- checks ------------------------------------------------------------------------------

def _check_quantity(quantity: Any) -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) \
            or not 1 <= quantity <= MAX_QUANTITY:
        raise CartRefused(
            _l("Enter a quantity from 1 to %(max)s.", max=MAX_QUANTITY),
            fields={"quantity": ["range"]},
        )
    return quantity


def _sellable_product(product_id: Any) -> Product:
    if isinstance(product_id, bool) or not isinstance(product_id, int):
        raise CartRefused(_l("This product is not available."), fields={"product_id": ["bad"]})
    stmt = select(Product).join(Product.merchant).where(Product.id == product_id)
    product = db.scalar(stmt)
    if product is None or not product.purchasable:
        raise CartRefused(_l("This product is no longer available."),
                          fields={"product_id": ["unavailable"]})
    return product


def _check_stock(product: Product, wanted: int, in_cart: int = 0) -> None:
    if product.stock <= 0:
        raise CartRefused(_l("Sorry, this product is sold out."),
                          fields={"quantity": ["sold_out"]})
    if wanted > product.stock:
        if in_cart:
            message = _l("You already have %(in_cart)s in your cart and only %(stock)s "
                         "are in stock.", in_cart=in_cart, stock=product.stock)
        else:
            message = _l("Only %(stock)s in stock. Choose a smaller quantity.",
                         stock=product.stock)
        raise CartRefused(message, fields={"quantity": ["over_stock"]})


def _priced(product: Product) -> ShopPrice:
    price = price_in_iqd(product)
    if price.iqd is None:
        raise CartRefused(_l("This product cannot be priced in dinars right now."),
                          fields={"product_id": ["no_rate"]})
    return price


# -- use cases ----------------------------------------------------------------------------

def _load(owner: CartOwner, *, create: bool = False) -> tuple[Cart | None, list[_Stored]]:
    if owner.user_id is None:
        return None, _session_lines(owner.session)
    cart = _account_cart(owner.user_id, create=create)
    return cart, _account_lines(cart)


def _store(owner: CartOwner, cart: Cart | None, lines: list[_Stored]) -> None:
    if owner.user_id is None:
        _save_session_lines(owner.session, lines)
        return
    assert cart is not None
    _write_account_lines(cart, lines)
    db.flush()


def add_to_cart(owner: CartOwner, product_id: int, quantity: int) -> int:
    """Put `quantity` more of a product in the cart, remembering today's price, and
    return the new quantity of that line. Flushes for an account cart.

    Raises CartRefused for a quantity outside 1-99, a product that is inactive (or whose
    shop is not active), sold out, cannot be priced, or fewer in stock than the cart
    would then hold.
    """
    quantity = _check_quantity(quantity)
    product = _sellable_product(product_id)
    cart, lines = _load(owner, create=True)
    line = next((s for s in lines if s.product_id == product.id), None)
    in_cart = line.quantity if line else 0
    total = _check_quantity(in_cart + quantity) if in_cart else quantity
    _check_stock(product, total, in_cart)
    price = _priced(product)
    limit = MAX_ACCOUNT_LINES if owner.user_id else MAX_SESSION_LINES
    if line is None:
        if len(lines) >= limit:
            raise CartRefused(_l("Your cart is full. Remove something first."),
                              fields={"product_id": ["cart_full"]})
        line = _Stored(product.id, 0, 0, "", 0, utcnow())
        lines.append(line)
    # The shopper just saw the current price on the product page; that is the one
    # checkout compares against.
    line.quantity = total
    line.seen_price, line.seen_currency = price.original, price.currency
    line.seen_price_iqd = price.iqd or 0
    line.added_at = utcnow()
    _store(owner, cart, lines)
    return total


def change_quantity(owner: CartOwner, product_id: int, quantity: int) -> None:
    """Set a cart line's quantity (the price seen stays the one from when it was added).
    Flushes for an account cart.

    Raises CartRefused for a quantity outside 1-99, a product not in the cart or no
    longer available, or more than in stock.
    """
    quantity = _check_quantity(quantity)
    cart, lines = _load(owner)
    line = next((s for s in lines if s.product_id == product_id), None)
    if line is None:
        raise CartRefused(_l("This product is not in your cart."),
                          fields={"product_id": ["not_in_cart"]})
    product = _sellable_product(product_id)
    _check_stock(product, quantity)
    line.quantity = quantity
    _store(owner, cart, lines)


def remove_from_cart(owner: CartOwner, product_id: int) -> None:
    """Take a product out of the cart (nothing happens if it is not there). Flushes for
    an account cart."""
    cart, lines = _load(owner)
    kept = [s for s in lines if s.product_id != product_id]
    if len(kept) != len(lines):
        _store(owner, cart, kept)


def cart_summary(owner: CartOwner) -> CartSummary:
    """The cart as it stands now: each line with today's price and any problem
    (unavailable, sold out, more than in stock, no exchange rate), subtotals per
    currency and the dinar total of the lines that can be bought. Changes nothing."""
    if owner.user_id is None:
        lines = _session_lines(owner.session)
    else:
        cart = db.scalar(select(Cart).where(Cart.user_id == owner.user_id))
        lines = _account_lines(cart)
    if not lines:
        return CartSummary()
    products = {
        p.id: p for p in db.scalars(
            select(Product).join(Product.merchant)
            .where(Product.id.in_([s.product_id for s in lines]))
        )
    }
    rates = rates_for({p.merchant.currency for p in products.values()})
    summary = CartSummary()
    for s in lines:
        product = products.get(s.product_id)
        if product is None:
            continue
        price = price_in_iqd(product, rates)
        item = CartItem(product, s.quantity, s.seen_price, s.seen_currency,
                        s.seen_price_iqd, price)
        if not product.purchasable:
            item.problem = "unavailable"
        elif product.stock <= 0:
            item.problem = "sold_out"
        elif s.quantity > product.stock:
            item.problem = "over_stock"
        elif price.iqd is None:
            item.problem = "no_rate"
        summary.items.append(item)
        if item.problem in (None, "over_stock"):
            summary.subtotals[price.currency] = (
                summary.subtotals.get(price.currency, 0) + item.line_total)
            summary.subtotals_iqd[price.currency] = (
                summary.subtotals_iqd.get(price.currency, 0) + (item.line_total_iqd or 0))
            summary.total_iqd += item.line_total_iqd or 0
    # Dinars first, then foreign currencies in a stable order.
    summary.subtotals = dict(sorted(summary.subtotals.items(),
                                    key=lambda kv: (kv[0] != HOME_CURRENCY, kv[0])))
    return summary


def cart_count(owner: CartOwner) -> int:
    """How many items the cart holds (for the header); changes nothing."""
    if owner.user_id is None:
        return sum(s.quantity for s in _session_lines(owner.session))
    cart = db.scalar(select(Cart).where(Cart.user_id == owner.user_id))
    return sum(s.quantity for s in _account_lines(cart))


def merge_session_cart(user_id: int, session: MutableMapping[str, Any]) -> int:
    """Move an anonymous visitor's session cart into the account's cart on login.
    Flushes. Returns how many lines were merged.

    A product in both carts keeps the sum of both quantities, capped at the stock (an
    out-of-stock line keeps its quantity and is shown as sold out); the price seen is
    the one from the line added last. Products gone from the catalog are dropped. The
    session cart is emptied either way.
    """
    incoming = _session_lines(session)
    session.pop(SESSION_KEY, None)
    if not incoming:
        return 0
    cart = _account_cart(user_id, create=True)
    assert cart is not None
    lines = _account_lines(cart)
    products = {p.id: p for p in db.scalars(
        select(Product).join(Merchant).where(
            Product.id.in_([s.product_id for s in incoming])))}
    merged = 0
    for s in incoming:
        product = products.get(s.product_id)
        if product is None:
            continue
        mine = next((m for m in lines if m.product_id == s.product_id), None)
        if mine is None:
            if len(lines) >= MAX_ACCOUNT_LINES:
                break
            lines.append(s)
            mine = s
        else:
            mine.quantity += s.quantity
            if s.added_at > mine.added_at:
                mine.seen_price, mine.seen_currency = s.seen_price, s.seen_currency
                mine.seen_price_iqd, mine.added_at = s.seen_price_iqd, s.added_at
        if product.stock > 0:
            mine.quantity = min(mine.quantity, product.stock)
        mine.quantity = min(mine.quantity, MAX_QUANTITY)
        merged += 1
    _write_account_lines(cart, lines)
    db.flush()
    return merged
