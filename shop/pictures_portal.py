"""The merchant portal's picture pages (/merchant/products/<id>/images): a product's
pictures, upload, delete and reorder, for the merchant's own products only (another
shop's product id answers 404, like one that does not exist).

The product's create and edit pages link here; this page stands on its own so either
can change without the other. An upload may be larger than the site's usual request
limit (MAX_CONTENT_LENGTH): this blueprint lets a body of up to SHOP_IMAGE_MAX_BYTES
plus room for the form through, before the CSRF check reads the form, and the service
then counts the file's own bytes. Each POST runs one service in one unit of work; an
error is caught outside it, so nothing it stored stays (rows roll back, files go).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from werkzeug.wrappers import Response
from wtforms import StringField, SubmitField
from wtforms.validators import Length, Optional

from app.auth.decorators import role_required
from app.auth.models import Role
from app.database import unit_of_work
from app.errors import DomainError
from shop import images
from shop.portal import ActionForm, _merchant

bp = Blueprint("merchant_pictures", __name__, url_prefix="/merchant")

# Room for the multipart envelope and the alt texts around the file.
FORM_OVERHEAD = 64 * 1024


class PictureForm(FlaskForm):
    picture = FileField(_l("Picture (JPEG, PNG or WebP)"),
                        validators=[FileRequired(_l("Choose a picture to upload."))])
    alt_ar = StringField(_l("What the picture shows, in Arabic"),
                         validators=[Optional(), Length(max=images.ALT_MAX)],
                         description=_l("Read aloud to blind shoppers. Empty: the product's "
                                        "title."))
    alt_en = StringField(_l("What the picture shows, in English"),
                         validators=[Optional(), Length(max=images.ALT_MAX)])
    submit = SubmitField(_l("Upload picture"))


@bp.url_value_preprocessor
def _allow_picture_bodies(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    # Runs before the before_request hooks (the CSRF check parses the form there).
    if request.method == "POST":
        request.max_content_length = (int(current_app.config["SHOP_IMAGE_MAX_BYTES"])
                                      + FORM_OVERHEAD)


def _page(merchant_id: int, product_id: int, form: PictureForm, status: int = 200
          ) -> tuple[str, int]:
    product = images.owned_product(merchant_id, product_id)
    return render_template(
        "shop/portal/pictures.html", merchant=_merchant(), product=product, form=form,
        action=ActionForm(), pictures=images.list_images(merchant_id, product_id),
        max_mb=int(current_app.config["SHOP_IMAGE_MAX_BYTES"]) // (1024 * 1024),
        most=int(current_app.config["SHOP_IMAGES_PER_PRODUCT"])), status


@bp.route("/products/<int:product_id>/images", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def pictures(product_id: int) -> tuple[str, int] | Response:
    merchant = _merchant()
    images.owned_product(merchant.id, product_id)  # 404 before reading any upload
    form = PictureForm()
    if form.validate_on_submit():
        limit = int(current_app.config["SHOP_IMAGE_MAX_BYTES"])
        # One byte past the limit is enough to know it is too large.
        data = form.picture.data.stream.read(limit + 1)
        try:
            with unit_of_work():
                images.add_image(merchant.id, product_id, data, alt_ar=form.alt_ar.data,
                                 alt_en=form.alt_en.data)
        except DomainError as exc:
            form.picture.errors = [str(exc.message)]
            return _page(merchant.id, product_id, form, 422)
        flash(_("Picture added."), "success")
        return redirect(url_for(".pictures", product_id=product_id))
    return _page(merchant.id, product_id, form, 422 if form.errors else 200)


@bp.post("/products/<int:product_id>/images/<int:image_id>/delete")
@role_required(Role.MERCHANT)
def delete_picture(product_id: int, image_id: int) -> Response:
    merchant = _merchant()
    if ActionForm().validate_on_submit():
        with unit_of_work():
            images.delete_image(merchant.id, product_id, image_id)
        flash(_("Picture deleted."), "success")
    return redirect(url_for(".pictures", product_id=product_id))


@bp.post("/products/<int:product_id>/images/<int:image_id>/move")
@role_required(Role.MERCHANT)
def move_picture(product_id: int, image_id: int) -> Response:
    merchant = _merchant()
    step = {"up": -1, "down": 1}.get(request.form.get("direction", ""), 0)
    if ActionForm().validate_on_submit() and step:
        with unit_of_work():
            images.move_image(merchant.id, product_id, image_id, step)
    return redirect(url_for(".pictures", product_id=product_id))


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    # What the shop's pages need to show a picture (templates/shop/_macros.html).
    app.add_template_global(images.srcset, "picture_srcset")
    app.add_template_global(images.variant_url, "picture_url")
