"""Barid barcodes: one signed reference in every QR code, opened by whoever scans it.

A QR code on a label, a receipt, an order page or a post card carries the URL
`PUBLIC_BASE_URL/r/<token>`. The token names a kind ("parcel", "order", ...) and a
reference signed with SECRET_KEY and a salt of that kind (itsdangerous), so nobody can
make one for a record by counting ids, and a changed character is a 404.

A domain registers an opener for each kind it prints (app imports no domain): given the
reference, it says where staff open the record, where its owner sees it, and what the
public may see. `/r/<token>` sends a member of staff to the back-office record, the
owner to their own page, and anyone else to the public page (public tracking for a
parcel) or to a page that says only that the document is Barid's and its reference valid.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import qrcode
import qrcode.constants
import qrcode.image.svg
from flask import Blueprint, Flask, abort, current_app, redirect, render_template, url_for
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeSerializer
from markupsafe import Markup
from werkzeug.wrappers import Response

from app.auth.models import BACKOFFICE_ROLES

# A kind is a short lower-case word: it is the token's first part, before the first dot.
_KIND = re.compile(r"^[a-z]{2,16}$")
# The longest token worth reading: a scanned or typed string past this is not one of ours.
MAX_TOKEN = 200


@dataclass(frozen=True)
class Page:
    """A page by endpoint and values, turned into a URL only when a request needs it (an
    opener may run where no request is, e.g. in a test or a job)."""

    endpoint: str
    values: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return url_for(self.endpoint, **self.values)


@dataclass(frozen=True)
class Opened:
    """Where a scanned reference leads.

    `staff` is the back-office page with the record and its next actions; `owner_id` and
    `owner` the citizen's own page; `public` what anyone may see (None: only the "valid
    Barid document" page); `what` names the kind of document for that page
    (lazy-translated, no personal data).
    """

    staff: Page
    what: Any = ""
    public: Page | None = None
    owner_id: int | None = None
    owner: Page | None = None

    @property
    def staff_url(self) -> str:
        return self.staff.url

    @property
    def public_url(self) -> str | None:
        return self.public.url if self.public else None


Opener = Callable[[str], Opened | None]
_openers: dict[str, Opener] = {}


def register_barcode(kind: str, opener: Opener) -> None:
    """Let `/r/<token>` and the back-office search open signed references of `kind`."""
    if not _KIND.match(kind):
        raise ValueError(f"a barcode kind is 2-16 lower-case letters, not {kind!r}")
    _openers[kind] = opener


def _serializer(kind: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"barid.barcode.{kind}")


def sign(kind: str, reference: str | int) -> str:
    """The token for (kind, reference): `kind.<payload>.<signature>`, URL-safe."""
    if not _KIND.match(kind):
        raise ValueError(f"a barcode kind is 2-16 lower-case letters, not {kind!r}")
    return f"{kind}.{_serializer(kind).dumps(str(reference))}"


def barcode_url(kind: str, reference: str | int) -> str:
    """The URL a QR code carries: the site's public address (so any phone or counter
    scanner opens it), `/r/`, the signed token."""
    return current_app.config["PUBLIC_BASE_URL"].rstrip("/") + f"/r/{sign(kind, reference)}"


def read(token: str) -> tuple[str, str] | None:
    """(kind, reference) of a token we signed, or None for anything else (tampered,
    unknown kind, too long)."""
    if not token or len(token) > MAX_TOKEN or "." not in token:
        return None
    kind, signed = token.split(".", 1)
    if kind not in _openers:
        return None
    try:
        reference = _serializer(kind).loads(signed)
    except BadSignature:
        return None
    return (kind, reference) if isinstance(reference, str) else None


def token_in(text: str) -> str | None:
    """The token in what a scanner typed: a whole `.../r/<token>` URL or a bare token.

    Returns None when `text` holds no token shape (the caller then searches the words).
    """
    text = (text or "").strip()
    if len(text) > MAX_TOKEN + 200:
        return None
    path = urlsplit(text).path if "://" in text else text
    if "/r/" in path:
        path = path.rsplit("/r/", 1)[1]
    path = unquote(path).strip("/")
    kind = path.split(".", 1)[0]
    return path if path.count(".") >= 2 and kind in _openers else None


def open_token(token: str) -> Opened | None:
    """Where the token leads, or None when it is not a valid reference to a record."""
    found = read(token)
    if found is None:
        return None
    kind, reference = found
    return _openers[kind](reference)


def is_staff(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.roles & BACKOFFICE_ROLES)


def qr_svg(value: str) -> Markup:
    """A QR code of `value` as inline SVG (drawn on the server: no script, no CDN), scaled
    by its container."""
    # Safe: the SVG is the qrcode library's own XML output (it escapes nothing of ours,
    # the data is only in the drawn modules), not text from a request.
    return Markup(_qr_svg(value))  # noqa: S704


# Drawing a QR code is most of a tracking page's time, and a value's code never changes
# (tokens are signed without a timestamp): the codes of the parcels looked up most are
# kept (a lookup of a parcel not seen lately still draws its code: about 7 ms).
@functools.lru_cache(maxsize=512)  # about 11 KB each
def _qr_svg(value: str) -> str:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=4,
                       image_factory=qrcode.image.svg.SvgPathImage)
    qr.add_data(value)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    svg = buf.getvalue().decode()
    svg = svg[svg.index("<svg"):]
    # Fill its box rather than a fixed size in mm, and say what it is to screen readers.
    svg = re.sub(r'<svg width="[^"]*" height="[^"]*"',
                 '<svg class="qr" role="img" aria-label="QR" width="100%" height="100%"',
                 svg, count=1)
    return svg


bp = Blueprint("barcodes", __name__)


@bp.get("/r/<path:token>")
def open_barcode(token: str) -> Response | str:
    """A scanned Barid barcode: staff get the back-office record, the owner their own
    page, anyone else only what is public."""
    opened = open_token(token)
    if opened is None:
        abort(404)
    if is_staff(current_user):
        return redirect(opened.staff_url)
    if (opened.owner and opened.owner_id is not None and current_user.is_authenticated
            and current_user.id == opened.owner_id):
        return redirect(opened.owner.url)
    if opened.public:
        return redirect(opened.public.url)
    return render_template("web/barcode.html", what=opened.what)


def init_app(app: Flask) -> None:
    """Serve `/r/<token>` and give templates `qr_svg` and `barcode_url`."""
    app.register_blueprint(bp)
    app.add_template_global(qr_svg, "qr_svg")
    app.add_template_global(barcode_url, "barcode_url")
