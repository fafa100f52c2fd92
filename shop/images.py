"""Product pictures: checked by their content, cleaned, resized and stored.

An upload (merchant portal or API) goes through `add_image`:

1. its bytes are counted (SHOP_IMAGE_MAX_BYTES) before anything decodes them;
2. Pillow reads only the header and says what it is, whatever the file is called:
   JPEG, PNG or WebP, or it is refused; its pixel count (SHOP_IMAGE_MAX_PIXELS) is checked
   before a single pixel is decoded, so a small file that declares 30000 x 30000 pixels
   (a decompression bomb) is refused without allocating them;
3. the pixels are decoded, turned upright (EXIF orientation) and copied into a new
   image with no metadata at all: no EXIF (GPS position, camera, owner), no ICC or XMP
   text, no comments;
4. each variant (VARIANTS: thumbnail, listing, zoom; never enlarged) is encoded as WebP
   and JPEG (the fallback for browsers without WebP) and written to the media storage
   (app.storage), then the ProductImage row is flushed.

A refused picture raises ImageRefused before anything is stored; a failure after some
files were written removes them, and so does a rollback of the transaction the row was
flushed in (app.storage.track_written).
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import func, select

from app.database import db
from app.errors import DomainError, NotFound, ValidationFailed
from app.storage import Storage, storage, track_deleted, track_written
from shop.models import Product, ProductImage

# Formats accepted, as Pillow names them after reading the content.
ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
# name -> longest side in pixels. The listing card is about 240 CSS px wide (480 for
# 2x screens); the product page shows up to about 600 (zoom 1200 for 2x).
VARIANTS: dict[str, int] = {"thumb": 160, "listing": 480, "zoom": 1200}
WEBP_QUALITY = 80
JPEG_QUALITY = 82
ALT_MAX = 300


class ImageRefused(DomainError):
    """The upload is not a picture Barid takes; `code` says why."""

    code = "image_refused"
    http_status = 422


@dataclass(frozen=True)
class Prepared:
    """A checked picture, cleaned and encoded, not yet stored."""

    width: int
    height: int
    files: dict[str, tuple[bytes, bytes, tuple[int, int]]]  # variant -> (webp, jpeg, size)


def limits() -> tuple[int, int]:
    cfg = current_app.config
    return int(cfg["SHOP_IMAGE_MAX_BYTES"]), int(cfg["SHOP_IMAGE_MAX_PIXELS"])


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.0f}"


def open_checked(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """The picture in `data`, decoded, after its size, kind and pixel count were checked.

    Raises ImageRefused: `too_large` (bytes), `not_an_image` (Pillow does not know it, or
    it is a kind we do not take), `too_many_pixels` (before decoding), `broken` (the
    pixels cannot be decoded)."""
    if len(data) > max_bytes:
        raise ImageRefused(_l("The picture is larger than %(mb)s MB. Send a smaller file.",
                              mb=_megabytes(max_bytes)), code="too_large")
    if not data:
        raise ImageRefused(_l("The file is empty."), code="not_an_image")
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse it all.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            # Reads the header only: the pixels are not decoded yet. Only the decoders of
            # the kinds we take even look at it (no EPS through Ghostscript, no PSD ...).
            img = Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many(max_pixels) from exc
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ImageRefused(_l("This file is not a picture. Send a JPEG, PNG or WebP "
                                  "picture."), code="not_an_image") from exc
        if img.format not in ACCEPTED_FORMATS:
            raise ImageRefused(_l("This kind of picture is not accepted. Send a JPEG, PNG "
                                  "or WebP picture."), code="not_an_image")
        width, height = img.size
        if width <= 0 or height <= 0 or width * height > max_pixels:
            raise _too_many(max_pixels)
        if getattr(img, "n_frames", 1) > 1:
            # An animated picture would be decoded frame by frame; products have stills.
            raise ImageRefused(_l("Animated pictures are not accepted."),
                               code="not_an_image")
        try:
            img.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many(max_pixels) from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise ImageRefused(_l("The picture is damaged and cannot be read."),
                               code="broken") from exc
    return img


def _too_many(max_pixels: int) -> ImageRefused:
    return ImageRefused(
        _l("The picture has too many pixels (at most %(mp)s million). Send a smaller one.",
           mp=max_pixels // 1_000_000), code="too_many_pixels")


def clean(img: Image.Image) -> Image.Image:
    """The pixels of `img`, upright, as RGB or RGBA, in a new image with no metadata."""
    upright = ImageOps.exif_transpose(img) or img
    mode = "RGBA" if ("A" in upright.getbands() or "transparency" in upright.info) else "RGB"
    pixels = upright.convert(mode)
    # A fresh image gets only the pixels: nothing of info (EXIF, ICC, XMP, comments).
    bare = Image.new(mode, pixels.size)
    bare.paste(pixels)
    return bare


def _flatten(img: Image.Image) -> Image.Image:
    """On white, for JPEG, which has no transparency."""
    if img.mode != "RGBA":
        return img
    white = Image.new("RGB", img.size, (255, 255, 255))
    white.paste(img, mask=img.getchannel("A"))
    return white


def encode(img: Image.Image) -> Prepared:
    """Each variant of the cleaned `img` as WebP and JPEG bytes, never enlarged."""
    files: dict[str, tuple[bytes, bytes, tuple[int, int]]] = {}
    for name, side in VARIANTS.items():
        variant = img.copy()
        variant.thumbnail((side, side), Image.Resampling.LANCZOS)
        variant.info = {}
        webp, jpeg = io.BytesIO(), io.BytesIO()
        variant.save(webp, "WEBP", quality=WEBP_QUALITY, method=3)
        _flatten(variant).save(jpeg, "JPEG", quality=JPEG_QUALITY, optimize=True,
                               progressive=True)
        files[name] = (webp.getvalue(), jpeg.getvalue(), variant.size)
    return Prepared(width=img.width, height=img.height, files=files)


def prepare(data: bytes, *, limits_: tuple[int, int] | None = None) -> Prepared:
    """Check, clean and encode an upload (see the module docstring); raises ImageRefused.

    `limits_`: (max bytes, max pixels) read already, for a thread without the app context
    (the demo seeder prepares its pictures on several threads)."""
    max_bytes, max_pixels = limits_ or limits()
    return encode(clean(open_checked(data, max_bytes=max_bytes, max_pixels=max_pixels)))


def _alt(value: Any, name: str) -> str:
    text = " ".join(str(value or "").split())
    if len(text) > ALT_MAX:
        raise ValidationFailed(_l("Some fields are not valid."),
                               fields={name: [f"At most {ALT_MAX} characters."]})
    return text


def owned_product(merchant_id: int, product_id: int, *, lock: bool = False) -> Product:
    """One of the merchant's products (locked FOR UPDATE with `lock`, so two uploads
    count the product's pictures one after the other); NotFound for another's or none."""
    stmt = select(Product).where(Product.id == product_id)
    if lock:
        stmt = stmt.with_for_update(of=Product)
    product = db.scalar(stmt)
    if product is None or product.merchant_id != merchant_id:
        raise NotFound(_l("This product is not available."))
    return product


def add_image(merchant_id: int, product_id: int, data: bytes, *, alt_ar: Any = "",
              alt_en: Any = "") -> ProductImage:
    """Check, clean and store a picture of the merchant's product, last among its
    pictures. Writes its variant files to the media storage and flushes the new row.

    Raises NotFound (not the merchant's product), ImageRefused (not a picture we take,
    too large, too many pixels, damaged), ValidationFailed (alt text too long) or
    Conflict-like ImageRefused `too_many_images`; nothing is stored then."""
    product = owned_product(merchant_id, product_id, lock=True)
    return store_image(product, data, alt_ar=alt_ar, alt_en=alt_en)


def store_image(product: Product, data: bytes | Prepared, *, alt_ar: Any = "",
                alt_en: Any = "") -> ProductImage:
    """`add_image` for a product already looked up (the demo seeder uses it too, with
    pictures it has prepared already)."""
    texts = {"alt_ar": _alt(alt_ar, "alt_ar"), "alt_en": _alt(alt_en, "alt_en")}
    count = db.scalar(select(func.count()).select_from(ProductImage)
                      .where(ProductImage.product_id == product.id)) or 0
    most = int(current_app.config["SHOP_IMAGES_PER_PRODUCT"])
    if count >= most:
        raise ImageRefused(_l("A product can have at most %(n)s pictures. Delete one first.",
                              n=most), code="too_many_images")
    prepared = data if isinstance(data, Prepared) else prepare(data)
    last = db.scalar(select(func.max(ProductImage.position))
                     .where(ProductImage.product_id == product.id))
    image = ProductImage(product_id=product.id, position=(last + 1) if last is not None else 0,
                         token=secrets.token_hex(12), width=prepared.width,
                         height=prepared.height,
                         sizes={name: list(f[2]) for name, f in prepared.files.items()},
                         **texts)
    backend = storage()
    written: list[str] = []
    session = db()
    try:
        for name, (webp, jpeg, _size) in prepared.files.items():
            for ext, blob, ctype in (("webp", webp, "image/webp"), ("jpg", jpeg, "image/jpeg")):
                key = image.key(name, ext)
                backend.put(key, blob, ctype)
                written.append(key)
        track_written(session, backend, written)
        written = []
        db.add(image)
        db.flush()
        session.expire(product, ["images"])
    except BaseException:
        _delete_keys(backend, written)
        raise
    return image


def _delete_keys(backend: Storage, keys: list[str]) -> None:
    for key in keys:
        backend.delete(key)


def _owned_image(merchant_id: int, product_id: int, image_id: int) -> ProductImage:
    owned_product(merchant_id, product_id, lock=True)
    image = db.get(ProductImage, image_id)
    if image is None or image.product_id != product_id:
        raise NotFound(_l("This picture is not available."))
    return image


def delete_image(merchant_id: int, product_id: int, image_id: int) -> None:
    """Delete one picture of the merchant's product; its files go once this commits.
    Raises NotFound for another merchant's product or picture."""
    image = _owned_image(merchant_id, product_id, image_id)
    track_deleted(db(), storage(), image.keys())
    db.delete(image)
    db.flush()
    _renumber(product_id)


def move_image(merchant_id: int, product_id: int, image_id: int, step: int) -> None:
    """Move a picture `step` places earlier (negative) or later among the product's
    pictures (the first is the one listings show). Raises NotFound as `delete_image`."""
    image = _owned_image(merchant_id, product_id, image_id)
    ordered = list(db.scalars(select(ProductImage).where(ProductImage.product_id == product_id)
                              .order_by(ProductImage.position, ProductImage.id)))
    at = ordered.index(image)
    ordered.insert(max(0, min(len(ordered) - 1, at + step)), ordered.pop(at))
    for position, each in enumerate(ordered):
        each.position = position
    db.flush()


def _renumber(product_id: int) -> None:
    ordered = db.scalars(select(ProductImage).where(ProductImage.product_id == product_id)
                         .order_by(ProductImage.position, ProductImage.id))
    for position, each in enumerate(ordered):
        each.position = position
    db.flush()


def list_images(merchant_id: int, product_id: int) -> list[ProductImage]:
    """The merchant's product's pictures in order; NotFound for another's product."""
    owned_product(merchant_id, product_id)
    return list(db.scalars(select(ProductImage).where(ProductImage.product_id == product_id)
                           .order_by(ProductImage.position, ProductImage.id)))


# -- what pages and the API show ---------------------------------------------------------

def srcset(image: ProductImage, ext: str) -> str:
    """`url 160w, url 480w, ...` for the variants of `image` in one format; a variant
    as wide as a smaller one (a small original) is listed once."""
    backend = storage()
    seen: set[int] = set()
    parts = []
    for name in VARIANTS:
        if name not in image.sizes:
            continue
        width = int(image.sizes[name][0])
        if width in seen:
            continue
        seen.add(width)
        parts.append(f"{backend.url(image.key(name, ext))} {width}w")
    return ", ".join(parts)


def variant_url(image: ProductImage, name: str, ext: str = "jpg") -> str:
    return storage().url(image.key(name, ext))


def image_view(image: ProductImage) -> dict[str, Any]:
    """An image for the API: ids, alt texts, size and each variant's absolute URLs and
    size."""
    backend = storage()

    def absolute(url: str) -> str:
        return urljoin(request.host_url, url)

    return {
        "id": image.id, "position": image.position, "alt_ar": image.alt_ar,
        "alt_en": image.alt_en, "width": image.width, "height": image.height,
        "variants": {name: {"width": int(size[0]), "height": int(size[1]),
                            "webp": absolute(backend.url(image.key(name, "webp"))),
                            "jpeg": absolute(backend.url(image.key(name, "jpg")))}
                     for name, size in image.sizes.items()},
    }
