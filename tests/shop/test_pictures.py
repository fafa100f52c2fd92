"""Product pictures, attacked: kinds told by content and not by name, oversized files,
decompression bombs, EXIF (GPS) stripped, variants in WebP and JPEG at their sizes,
another shop's product, what the shop pages show, and where production keeps them.

What must hold: a refused upload leaves no row and no file; a stored picture carries no
metadata; a merchant reaches only their own products' pictures.
"""

from __future__ import annotations

import io
import json
import re
import struct
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import func, select

from app.api import keys
from app.auth.models import Role
from app.database import db, unit_of_work
from app.storage import DirectoryStorage, StorageError, check_key, storage
from shop import images
from shop.models import Merchant, MerchantStatus, ProductImage
from tests.openapi_check import answer_schema, validate_answer
from tests.shop.checkout_helpers import login, make_shopper
from tests.shop.helpers import make_category, make_merchant, make_office, make_product

# -- pictures made for the tests ---------------------------------------------------------

def png(width: int = 640, height: int = 480, color=(200, 60, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def noisy_jpeg(width: int, height: int) -> bytes:
    """A JPEG that does not compress well (random pixels)."""
    import os

    img = Image.frombytes("RGB", (width, height), os.urandom(width * height * 3))
    out = io.BytesIO()
    img.save(out, "JPEG", quality=95)
    return out.getvalue()


def jpeg_with_gps(width: int = 400, height: int = 200, orientation: int = 6) -> bytes:
    """A camera-like JPEG: GPS position, camera make, and rotated by EXIF orientation."""
    img = Image.new("RGB", (width, height), (30, 120, 200))
    # A red band on the left, to check the picture was turned upright.
    img.paste((220, 20, 20), (0, 0, width // 4, height))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam Inc."  # Make
    exif[0x0112] = orientation
    exif[0x8825] = {1: "N", 2: (33.0, 18.0, 0.0), 3: "E", 4: (44.0, 22.0, 0.0)}  # GPS IFD
    out = io.BytesIO()
    img.save(out, "JPEG", exif=exif, comment=b"secret comment")
    return out.getvalue()


def png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG (made by Pillow) whose header claims `width` x `height` pixels: a
    decompression bomb's shape, without the bomb."""
    data = bytearray(png(1, 1))
    # The IHDR chunk follows the 8-byte signature: length(4) type(4) data(13) crc(4).
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


# -- fixtures ----------------------------------------------------------------------------

@pytest.fixture()
def media(app, tmp_path, monkeypatch) -> Path:
    root = tmp_path / "media"
    monkeypatch.setitem(app.config, "MEDIA_ROOT", str(root))
    monkeypatch.setitem(app.config, "MEDIA_STORAGE", "local")
    return root


def stored_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def image_rows() -> int:
    return db.scalar(select(func.count()).select_from(ProductImage))


@pytest.fixture()
def shop_owner(app, client, media):
    """A logged-in merchant with a product, and another shop's product."""
    with app.app_context():
        owner = make_shopper("Ali Trader", Role.MERCHANT)
        merchant = Merchant(slug="rafidain", name_ar="متجر الرافدين", name_en="Rafidain Store",
                            owner_id=owner.id, status=MerchantStatus.ACTIVE,
                            post_office_id=make_office().id, governorate="IQ-BG")
        db.add(merchant)
        db.flush()
        category = make_category()
        mine = make_product(merchant, category, title_ar="ساعة يد", title_en="Wristwatch")
        theirs = make_product(make_merchant(), category, title_ar="هاتف", title_en="Phone")
        db.commit()
        login(client, owner)
        return client, merchant.id, mine.id, theirs.id


def upload(client, product_id: int, data: bytes, filename: str, **fields):
    return client.post(f"/merchant/products/{product_id}/images",
                       data={"picture": (io.BytesIO(data), filename), **fields},
                       content_type="multipart/form-data")


# -- told by content, not by name ------------------------------------------------------

def test_a_png_named_jpg_is_taken_by_its_content(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    r = upload(client, product_id, png(), "holiday.jpg", alt_ar="ساعة ذهبية",
               alt_en="A gold watch")
    assert r.status_code == 302, r.get_data(as_text=True)
    db.remove()
    [row] = db.scalars(select(ProductImage)).all()
    assert (row.alt_ar, row.alt_en, row.position) == ("ساعة ذهبية", "A gold watch", 0)
    assert len(stored_files(media)) == 6  # three sizes, WebP and JPEG
    page = client.get(f"/merchant/products/{product_id}/images").get_data(as_text=True)
    assert "ساعة ذهبية" in page and "A gold watch" in page


@pytest.mark.parametrize("data,filename", [
    (b"just some words, not a picture\n" * 20, "photo.png"),
    (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.jpg"),
    (b"GIF89a" + b"\x00" * 40, "anim.gif"),
    (png()[:60], "cut.png"),  # a real PNG header, the pixels cut off
    (b"", "empty.jpg"),
    # Kinds Pillow knows but we do not take: never handed to their decoders.
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n", "ps.jpg"),
    (b"BM" + b"\x00" * 60, "bitmap.png"),
])
def test_what_is_not_a_picture_we_take_is_refused_and_nothing_is_stored(
        shop_owner, media, data, filename):
    client, _merchant, product_id, _theirs = shop_owner
    r = upload(client, product_id, data, filename)
    assert r.status_code == 422
    page = r.get_data(as_text=True)
    assert 'class="field-error"' in page
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def test_an_error_is_told_in_arabic_on_an_arabic_page(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    client.get("/lang/ar")
    page = upload(client, product_id, b"hello", "a.png").get_data(as_text=True)
    assert "هذا الملف ليس صورة" in page and "not a picture" not in page


def test_a_file_over_the_byte_limit_is_refused_before_it_is_decoded(
        app, shop_owner, media, monkeypatch):
    client, _merchant, product_id, _theirs = shop_owner
    monkeypatch.setitem(app.config, "SHOP_IMAGE_MAX_BYTES", 40_000)
    big = noisy_jpeg(200, 200)
    assert len(big) > 40_000
    r = upload(client, product_id, big, "big.jpg")
    assert r.status_code == 422
    assert "حجم الصورة أكبر من" in r.get_data(as_text=True)  # Arabic first
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def test_a_body_far_over_the_limit_is_413(app, shop_owner, media, monkeypatch):
    client, _merchant, product_id, _theirs = shop_owner
    monkeypatch.setitem(app.config, "SHOP_IMAGE_MAX_BYTES", 10_000)
    r = upload(client, product_id, b"\xff" * 200_000, "huge.jpg")
    assert r.status_code == 413
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def test_an_upload_above_the_sites_usual_body_limit_is_allowed_here(
        app, shop_owner, media, monkeypatch):
    # The site caps bodies at MAX_CONTENT_LENGTH; pictures may be larger, up to their own.
    client, _merchant, product_id, _theirs = shop_owner
    monkeypatch.setitem(app.config, "MAX_CONTENT_LENGTH", 20_000)
    data = noisy_jpeg(160, 160)
    assert 20_000 < len(data) < app.config["SHOP_IMAGE_MAX_BYTES"]
    assert upload(client, product_id, data, "p.jpg").status_code == 302


# -- decompression bombs -----------------------------------------------------------------

@pytest.mark.parametrize("width,height", [
    (30000, 30000),  # past Pillow's own bomb limit (MAX_IMAGE_PIXELS x 2)
    (9000, 9000),    # 81 million: under Pillow's limit, over SHOP_IMAGE_MAX_PIXELS
])
def test_a_decompression_bomb_is_refused_quickly_without_allocating(
        shop_owner, media, width, height):
    client, _merchant, product_id, _theirs = shop_owner
    bomb = png_declaring(width, height)
    assert len(bomb) < 200
    tracemalloc.start()
    started = time.monotonic()
    r = upload(client, product_id, bomb, "bomb.png")
    elapsed = time.monotonic() - started
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert r.status_code == 422
    assert "عدد نقاط الصورة كبير جدًا" in r.get_data(as_text=True)
    assert elapsed < 2 and peak < 20 * 1024 * 1024  # 81 million RGB pixels are 243 MB
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def bmp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (10, 10)).save(out, "BMP")
    return out.getvalue()


def test_the_service_names_each_refusal(app_ctx):
    cases = [(b"text", "not_an_image"), (bmp(), "not_an_image"),
             (png_declaring(30000, 30000), "too_many_pixels"),
             (png_declaring(9000, 9000), "too_many_pixels"), (png()[:80], "broken"),
             (b"x" * 101, "too_large")]
    for data, code in cases:
        with pytest.raises(images.ImageRefused) as caught:
            images.open_checked(data, max_bytes=100 if code == "too_large" else 10**7,
                                max_pixels=40_000_000)
        assert caught.value.code == code, (data[:20], caught.value.code)


# -- cleaned and resized -----------------------------------------------------------------

def test_exif_and_gps_are_stripped_and_the_picture_turned_upright(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    source = jpeg_with_gps(400, 200, orientation=6)
    assert Image.open(io.BytesIO(source)).getexif().get_ifd(0x8825)  # GPS is there
    assert upload(client, product_id, source, "camera.jpg").status_code == 302
    files = stored_files(media)
    assert len(files) == 6
    for path in files:
        raw = path.read_bytes()
        img = Image.open(io.BytesIO(raw))
        assert not img.getexif(), path.name
        assert "exif" not in img.info and "comment" not in img.info
        assert "icc_profile" not in img.info and "xmp" not in img.info
        assert b"SpyCam" not in raw and b"secret comment" not in raw and b"Exif" not in raw
        # Orientation 6 is "turn 90° clockwise": the 400 x 200 picture stands upright.
        assert img.height > img.width
        # The red band that was on the left is now along the top.
        px = img.convert("RGB").getpixel((img.width // 2, 2))
        assert px[0] > 150 and px[2] < 100, px


def test_variants_exist_in_webp_and_jpeg_at_their_sizes(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    assert upload(client, product_id, png(2000, 1000), "wide.png").status_code == 302
    db.remove()
    row = db.scalar(select(ProductImage))
    assert (row.width, row.height) == (2000, 1000)
    expected = {"thumb": (160, 80), "listing": (480, 240), "zoom": (1200, 600)}
    assert {k: tuple(v) for k, v in row.sizes.items()} == expected
    for name, size in expected.items():
        for ext, fmt in (("webp", "WEBP"), ("jpg", "JPEG")):
            img = Image.open(media / row.key(name, ext))
            assert (img.format, img.size) == (fmt, size)


def test_a_small_picture_is_never_enlarged(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    assert upload(client, product_id, png(300, 300), "small.png").status_code == 302
    db.remove()
    row = db.scalar(select(ProductImage))
    assert row.sizes == {"thumb": [160, 160], "listing": [300, 300], "zoom": [300, 300]}


def test_transparent_png_gets_a_white_background_in_jpeg(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    out = io.BytesIO()
    Image.new("RGBA", (200, 200), (0, 0, 0, 0)).save(out, "PNG")
    assert upload(client, product_id, out.getvalue(), "clear.png").status_code == 302
    db.remove()
    row = db.scalar(select(ProductImage))
    jpeg = Image.open(media / row.key("listing", "jpg")).convert("RGB")
    assert jpeg.getpixel((10, 10)) == (255, 255, 255)
    assert Image.open(media / row.key("listing", "webp")).mode == "RGBA"


# -- whose product -----------------------------------------------------------------------

def test_another_merchants_product_is_404_and_nothing_is_stored(shop_owner, media):
    client, _merchant, _mine, theirs = shop_owner
    assert client.get(f"/merchant/products/{theirs}/images").status_code == 404
    assert upload(client, theirs, png(), "p.png").status_code == 404
    assert client.get("/merchant/products/99999999/images").status_code == 404
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def test_another_merchants_picture_cannot_be_deleted_or_moved(app, shop_owner, media):
    client, _merchant, mine, theirs = shop_owner
    with app.app_context():
        owner_of_theirs = db.scalar(select(ProductImage.product_id).limit(1))  # none yet
        assert owner_of_theirs is None
        with unit_of_work():
            product = images.owned_product(
                db.scalar(select(Merchant.id).where(Merchant.slug != "rafidain")), theirs)
            image = images.store_image(product, png())
        image_id = image.id
    for path in (f"/merchant/products/{theirs}/images/{image_id}/delete",
                 f"/merchant/products/{mine}/images/{image_id}/delete"):
        assert client.post(path).status_code == 404
    assert client.post(f"/merchant/products/{theirs}/images/{image_id}/move",
                       data={"direction": "up"}).status_code == 404
    db.remove()
    assert image_rows() == 1 and len(stored_files(media)) == 6


def test_not_a_merchant_is_refused(app, client, media):
    with app.app_context():
        shopper = make_shopper("Zainab")
        db.commit()
        login(client, shopper)
    assert client.get("/merchant/products/1/images").status_code in (403, 404)


# -- delete, reorder, limits, rollbacks --------------------------------------------------

def test_delete_and_reorder(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    for color in ((255, 0, 0), (0, 255, 0), (0, 0, 255)):
        assert upload(client, product_id, png(color=color), "p.png").status_code == 302
    db.remove()
    first, second, third = db.scalars(select(ProductImage).order_by(ProductImage.position))
    client.post(f"/merchant/products/{product_id}/images/{third.id}/move",
                data={"direction": "up"})
    db.remove()
    order = list(db.scalars(select(ProductImage.id).order_by(ProductImage.position)))
    assert order == [first.id, third.id, second.id]
    gone = first.keys()
    assert client.post(f"/merchant/products/{product_id}/images/{first.id}/delete"
                       ).status_code == 302
    db.remove()
    rows = list(db.scalars(select(ProductImage).order_by(ProductImage.position)))
    assert [(r.id, r.position) for r in rows] == [(third.id, 0), (second.id, 1)]
    assert not any((media / key).exists() for key in gone)
    assert len(stored_files(media)) == 12


def test_at_most_so_many_pictures_per_product(app, shop_owner, media, monkeypatch):
    client, _merchant, product_id, _theirs = shop_owner
    monkeypatch.setitem(app.config, "SHOP_IMAGES_PER_PRODUCT", 2)
    assert upload(client, product_id, png(), "1.png").status_code == 302
    assert upload(client, product_id, png(), "2.png").status_code == 302
    r = upload(client, product_id, png(), "3.png")
    assert r.status_code == 422 and "أكثر من 2 صور" in r.get_data(as_text=True)
    assert len(stored_files(media)) == 12


def test_a_rollback_after_storing_removes_the_files(app_ctx, media):
    product = make_product(make_merchant())
    db.commit()
    with pytest.raises(RuntimeError), unit_of_work():
        images.add_image(product.merchant_id, product.id, png())
        assert len(stored_files(media)) == 6
        raise RuntimeError("the rest of the use case failed")
    assert stored_files(media) == []
    db.remove()
    assert image_rows() == 0


def test_a_deletion_rolled_back_keeps_the_files(app_ctx, media):
    product = make_product(make_merchant())
    db.commit()
    with unit_of_work():
        image = images.add_image(product.merchant_id, product.id, png())
    with pytest.raises(RuntimeError), unit_of_work():
        images.delete_image(product.merchant_id, product.id, image.id)
        raise RuntimeError("changed my mind")
    assert len(stored_files(media)) == 6
    db.remove()
    assert image_rows() == 1


def test_alt_text_too_long_is_refused(shop_owner, media):
    client, _merchant, product_id, _theirs = shop_owner
    r = upload(client, product_id, png(), "p.png", alt_en="x" * 301)
    assert r.status_code == 422
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


# -- what shoppers see -------------------------------------------------------------------

@pytest.fixture()
def pictured(app, media):
    with app.app_context():
        merchant = make_merchant()
        category = make_category()
        product = make_product(merchant, category, title_ar="ساعة يد رجالية",
                               title_en="Men's wristwatch")
        db.commit()
        with unit_of_work():
            images.add_image(merchant.id, product.id, png(1600, 1600),
                             alt_ar="ساعة بسوار جلد بني", alt_en="A watch with a brown strap")
            images.add_image(merchant.id, product.id, png(800, 800))
        return product.id, category.slug


@pytest.mark.parametrize("lang,alt,other", [
    ("ar", "ساعة بسوار جلد بني", "A watch with a brown strap"),
    ("en", "A watch with a brown strap", "ساعة بسوار جلد بني"),
])
def test_listing_and_product_pages_show_srcset_lazy_and_alt_in_the_page_language(
        client, pictured, lang, alt, other):
    product_id, slug = pictured
    client.get(f"/lang/{lang}")
    listing = client.get(f"/shop/c/{slug}").get_data(as_text=True)
    page = client.get(f"/shop/p/{product_id}").get_data(as_text=True)
    for html in (listing, page):
        assert '<source type="image/webp" srcset="' in html
        assert re.search(r'srcset="[^"]+\.webp 160w, [^"]+\.webp 480w, [^"]+\.webp 1200w"', html)
        assert re.search(r'srcset="[^"]+\.jpg 160w, [^"]+\.jpg 480w, [^"]+\.jpg 1200w"', html)
        assert f'alt="{alt}"' in html and other not in html
        assert "sizes=" in html
    assert 'loading="lazy"' in listing
    # The product page's first picture is what the shopper came for: not lazy; the
    # second (no alt of its own) is lazy and named by the product's title.
    first = re.search(r"<img [^>]*alt=\"" + re.escape(alt) + r"\"[^>]*>", page).group(0)
    assert 'loading="lazy"' not in first
    title = "ساعة يد رجالية" if lang == "ar" else "Men&#39;s wristwatch"
    assert re.search(r"<img [^>]*alt=\"" + re.escape(title) + r"\"[^>]*loading=\"lazy\"", page)


def test_the_app_serves_stored_files_with_type_and_long_cache(client, pictured, media):
    files = stored_files(media)
    webp = next(p for p in files if p.suffix == ".webp")
    key = webp.relative_to(media).as_posix()
    r = client.get(f"/media/{key}")
    assert r.status_code == 200 and r.data == webp.read_bytes()
    assert r.mimetype == "image/webp"
    assert "max-age=31536000" in r.headers["Cache-Control"]
    assert "immutable" in r.headers["Cache-Control"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    for bad in ("/media/../pyproject.toml", "/media/%2e%2e/pyproject.toml",
                "/media/products/none.webp", "/media/.tmp-x", "/media/Products/X.webp"):
        assert client.get(bad).status_code == 404, bad


def test_keys_are_checked():
    for bad in ("../x", "a/../../b", "/abs", "A.webp", "a//b", "a/.hidden", ""):
        with pytest.raises(StorageError):
            check_key(bad)
    assert check_key("products/12/ab12-thumb.webp")


# -- production: a directory nginx serves ------------------------------------------------

def test_production_storage_writes_to_the_directory_and_urls_use_the_media_prefix(
        app, client, tmp_path, monkeypatch):
    root = tmp_path / "srv-media"
    monkeypatch.setitem(app.config, "MEDIA_STORAGE", "directory")
    monkeypatch.setitem(app.config, "MEDIA_ROOT", str(root))
    monkeypatch.setitem(app.config, "MEDIA_URL", "https://media.barid.iq/m/")
    with app.app_context():
        backend = storage()
        assert isinstance(backend, DirectoryStorage)
        merchant = make_merchant()
        category = make_category()
        product = make_product(merchant, category)
        db.commit()
        with unit_of_work():
            image = images.add_image(merchant.id, product.id, png(900, 600))
        key = image.key("zoom", "webp")
        assert (root / key).is_file()
        assert oct((root / key).stat().st_mode & 0o777) == "0o644"  # nginx's user reads it
        assert backend.url(key) == f"https://media.barid.iq/m/{key}"
        product_id, slug = product.id, category.slug
    answer = client.get(f"/shop/p/{product_id}")
    page = answer.get_data(as_text=True)
    # The browser may load pictures from the media host: the CSP names it.
    assert "img-src 'self' data: https://media.barid.iq;" in answer.headers[
        "Content-Security-Policy"]
    assert f"https://media.barid.iq/m/{key} 900w" in page
    assert "/media/products" not in page
    listing = client.get(f"/shop/c/{slug}").get_data(as_text=True)
    assert listing.count("https://media.barid.iq/m/") >= 2


def test_production_defaults_to_the_directory_storage(app):
    from app import build_app

    prod = build_app({"BARID_ENV": "production", "SECRET_KEY": "x" * 40})
    assert prod.config["MEDIA_STORAGE"] == "directory"
    assert prod.config["MEDIA_URL"] == "/media/"
    assert app.config["MEDIA_STORAGE"] == "local"


# -- the API -----------------------------------------------------------------------------

@pytest.fixture()
def api_shop(app_ctx, media):
    merchant = make_merchant()
    category = make_category()
    mine = make_product(merchant, category)
    theirs = make_product(make_merchant(), category)
    db.commit()
    with unit_of_work():
        _key, secret = keys.create_key(merchant.id, "ERP", ["catalog"])
    return {"Authorization": f"Bearer {secret}"}, mine.id, theirs.id


def test_api_upload_answers_the_documented_shape(client, api_shop, media):
    headers, mine, _theirs = api_shop
    r = client.post(f"/api/v1/products/{mine}/images", headers=headers,
                    data={"file": (io.BytesIO(png(1000, 500)), "anything.bin"),
                          "alt_ar": "صورة", "alt_en": "A picture"},
                    content_type="multipart/form-data")
    assert r.status_code == 201, r.json
    doc = client.get("/api/v1/openapi.json").json
    validate_answer(doc, answer_schema(doc, "/api/v1/products/{product_id}/images", "post",
                                       201), r.json)
    assert r.json["variants"]["listing"]["width"] == 480
    assert r.json["variants"]["zoom"]["webp"].startswith("http://localhost/media/products/")
    body = doc["paths"]["/api/v1/products/{product_id}/images"]["post"]["requestBody"]
    assert "multipart/form-data" in body["content"]
    listed = client.get(f"/api/v1/products/{mine}/images", headers=headers)
    assert listed.status_code == 200 and [i["id"] for i in listed.json["data"]] == [r.json["id"]]
    gone = client.delete(f"/api/v1/products/{mine}/images/{r.json['id']}", headers=headers)
    assert gone.status_code == 204
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


@pytest.mark.parametrize("make,status,code", [
    (lambda: {"file": (io.BytesIO(b"not a picture"), "a.png")}, 422, "not_an_image"),
    (lambda: {"file": (io.BytesIO(png_declaring(30000, 30000)), "b.png")}, 422,
     "too_many_pixels"),
    (lambda: {"alt_en": "no file"}, 422, "validation_failed"),
    (lambda: {"file": "just text"}, 422, "not_an_image"),
])
def test_api_refusals_store_nothing(client, api_shop, media, make, status, code):
    headers, mine, _theirs = api_shop
    r = client.post(f"/api/v1/products/{mine}/images", headers=headers, data=make(),
                    content_type="multipart/form-data")
    assert (r.status_code, r.json["error"]) == (status, code), r.json
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def test_api_json_body_is_415_and_other_shops_product_404(client, api_shop, media):
    headers, mine, theirs = api_shop
    r = client.post(f"/api/v1/products/{mine}/images", headers=headers,
                    data=json.dumps({"file": "x"}), content_type="application/json")
    assert r.status_code == 415
    r = client.post(f"/api/v1/products/{theirs}/images", headers=headers,
                    data={"file": (io.BytesIO(png()), "p.png")},
                    content_type="multipart/form-data")
    assert r.status_code == 404 and r.json["error"] == "not_found"
    assert client.get(f"/api/v1/products/{theirs}/images", headers=headers).status_code == 404
    db.remove()
    assert image_rows() == 0 and stored_files(media) == []


def test_api_body_over_the_picture_limit_is_413(app, client, api_shop, media, monkeypatch):
    headers, mine, _theirs = api_shop
    monkeypatch.setitem(app.config, "SHOP_IMAGE_MAX_BODY_BYTES", 10_000)
    r = client.post(f"/api/v1/products/{mine}/images", headers=headers,
                    data={"file": (io.BytesIO(b"\xff" * 50_000), "p.jpg")},
                    content_type="multipart/form-data")
    assert r.status_code == 413 and r.json["error"] == "too_large"


@pytest.mark.commits  # idempotency keys are stored on a connection of their own
def test_api_upload_with_the_same_idempotency_key_stores_once(client, api_shop, media):
    headers, mine, _theirs = api_shop
    data = png()
    answers = [client.post(f"/api/v1/products/{mine}/images",
                           headers={**headers, "Idempotency-Key": "pic-1"},
                           data={"file": (io.BytesIO(data), "p.png")},
                           content_type="multipart/form-data") for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201], answers[0].json
    assert answers[1].headers.get("Idempotent-Replayed") == "true"
    assert answers[0].json == answers[1].json
    db.remove()
    assert image_rows() == 1 and len(stored_files(media)) == 6
    other = client.post(f"/api/v1/products/{mine}/images",
                        headers={**headers, "Idempotency-Key": "pic-1"},
                        data={"file": (io.BytesIO(png(color=(1, 2, 3))), "p.png")},
                        content_type="multipart/form-data")
    assert other.status_code == 422  # the key reused for another picture
