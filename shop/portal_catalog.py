"""The merchant portal's catalog pages (/merchant/products): list, add, edit, stock,
activate and deactivate, and the CSV import (preview, rejected rows, apply).

Each view calls the same services as the merchant API (shop.services.merchant_api and
catalog), with the shop of the logged-in merchant as owner: another shop's product is
a 404, like one that does not exist. A POST runs its service in one unit of work and
catches a DomainError outside it, so nothing half-done is kept.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import BooleanField, HiddenField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional, Regexp

from app.auth.decorators import role_required
from app.auth.models import Role
from app.database import db, unit_of_work
from app.errors import Conflict, DomainError
from app.i18n import current_locale
from app.money import EXPONENT, to_minor
from app.numbers import MAX_STOCK, DecimalAmountField, WholeNumberField
from shop.models import Category, Product
from shop.portal import ActionForm, _merchant, bp
from shop.services import catalog, catalog_import
from shop.services import merchant_api as svc

PER_PAGE = 50


class ProductForm(FlaskForm):
    title_ar = StringField(_l("Name in Arabic"), validators=[
        InputRequired(_l("Write the product's name.")), Length(max=300)])
    title_en = StringField(_l("Name in English"), validators=[
        InputRequired(_l("Write the product's name.")), Length(max=300)])
    description_ar = TextAreaField(_l("Description in Arabic"),
                                   validators=[Optional(), Length(max=10000)])
    description_en = TextAreaField(_l("Description in English"),
                                   validators=[Optional(), Length(max=10000)])
    category_id = SelectField(_l("Category"), coerce=int,
                              validators=[InputRequired(_l("Choose a category."))])
    merchant_sku = StringField(_l("Your product code (SKU)"),
                               validators=[Optional(), Length(max=64)])
    price = DecimalAmountField(_l("Price"), validators=[InputRequired(_l("Write the price."))])
    stock = WholeNumberField(_l("In stock"), min=0, max=MAX_STOCK,
                             validators=[InputRequired(_l("Write how many you have."))])
    weight_g = WholeNumberField(_l("Weight of one item (grams)"), min=1, max=100_000,
                                validators=[InputRequired(_l("Give the weight in grams."))])
    hs_code = StringField(_l("HS code (customs)"), validators=[
        InputRequired(_l("The HS code has six digits.")),
        Regexp(r"^\d{6}$", message=_l("The HS code has six digits."))])
    origin_country = StringField(_l("Country of origin"), default="IQ", validators=[
        InputRequired(), Regexp(r"^[A-Za-z]{2}$",
                                message=_l("Use a two-letter country code, e.g. IQ."))])
    active = BooleanField(_l("On sale (shoppers can see and buy it)"), default=True)
    submit = SubmitField(_l("Save"))


class StockForm(FlaskForm):
    stock = WholeNumberField(_l("In stock"), min=0, max=MAX_STOCK,
                             validators=[InputRequired(_l("Write how many you have."))])
    submit = SubmitField(_l("Set stock"))


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"))
    submit = SubmitField(_l("Show what would change"))


class ApplyImportForm(FlaskForm):
    text = HiddenField()
    digest = HiddenField()
    submit = SubmitField(_l("Apply these changes"))


def _categories() -> list[tuple[int, str]]:
    ar = current_locale() == "ar"
    out: list[tuple[int, str]] = []
    for top in catalog.top_categories():
        out.append((top.id, top.name_ar if ar else top.name_en))
        for child in top.children:
            out.append((child.id, "— " + (child.name_ar if ar else child.name_en)))
    return out


def _category_names() -> dict[int, str]:
    name = Category.name_ar if current_locale() == "ar" else Category.name_en
    return {cid: n for cid, n in db.execute(select(Category.id, name)).all()}


def _product_form(product: Product | None = None) -> ProductForm:
    form = ProductForm(obj=product) if product is not None else ProductForm()
    form.category_id.choices = _categories()
    if product is not None and not form.is_submitted():
        exp = EXPONENT[product.merchant.currency]
        form.price.data = f"{product.price / 10**exp:.{exp}f}"
    return form


def _product_data(form: ProductForm, currency: str) -> dict[str, Any]:
    return {"title_ar": form.title_ar.data.strip(), "title_en": form.title_en.data.strip(),
            "description_ar": form.description_ar.data or "",
            "description_en": form.description_en.data or "",
            "category_id": form.category_id.data,
            "merchant_sku": (form.merchant_sku.data or "").strip() or None,
            "price": to_minor(form.price.data, currency),
            **({"stock": form.stock.data} if "stock" in form else {}),
            "weight_g": form.weight_g.data, "hs_code": form.hs_code.data,
            "origin_country": form.origin_country.data.upper(), "active": form.active.data}


def _field_errors(form: FlaskForm, exc: DomainError) -> None:
    """Show a service's refusal next to the fields it names (its own words when they
    are sentences, else its message), or at the top of the page."""
    placed = False
    for name, errors in (getattr(exc, "fields", None) or {}).items():
        target = getattr(form, name, None)
        if target is not None:
            words = [str(e) for e in errors if " " in str(e)] or [str(exc.message)]
            target.errors = [*target.errors, *words]
            placed = True
    if not placed:
        flash(str(exc.message), "error")


def images_url(product_id: int) -> str | None:
    """The product's pictures page, once the images feature is installed (another part
    of the portal adds `merchant_portal.product_images`)."""
    if "merchant_portal.product_images" not in current_app.view_functions:
        return None
    return url_for("merchant_portal.product_images", product_id=product_id)


@bp.get("/products")
@role_required(Role.MERCHANT)
def products() -> str:
    merchant = _merchant()
    state = request.args.get("state")
    active = {"active": True, "inactive": False}.get(state or "")
    q = (request.args.get("q") or "").strip()[:100]
    stmt = svc.products_query(merchant.id, active=active)
    if q:
        like = f"%{q}%"
        stmt = stmt.where(Product.title_ar.ilike(like) | Product.title_en.ilike(like)
                          | Product.merchant_sku.ilike(like))
    rows = list(db.scalars(stmt.order_by(Product.id.desc()).limit(PER_PAGE + 1)))
    return render_template("shop/portal/products.html", merchant=merchant,
                           products=rows[:PER_PAGE], more=len(rows) > PER_PAGE, state=state,
                           q=q, action=ActionForm(),
                           category_names=_category_names())


@bp.route("/products/new", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def product_new() -> str | Response:
    merchant = _merchant()
    form = _product_form()
    if form.validate_on_submit():
        try:
            with unit_of_work():
                product = svc.create_product(merchant.id,
                                             _product_data(form, merchant.currency))
        except DomainError as exc:
            _field_errors(form, exc)
        else:
            flash(_("Product added."), "success")
            return redirect(url_for(".product_edit", product_id=product.id))
    return render_template("shop/portal/product_form.html", merchant=merchant, form=form,
                           product=None)


@bp.route("/products/<int:product_id>", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def product_edit(product_id: int) -> str | Response:
    merchant = _merchant()
    product = svc.owned_product(merchant.id, product_id)
    form = _product_form(product)
    # Stock is set only on purpose, with the stock form: saving a name must not write
    # back a count read before shoppers' orders took from it.
    del form.stock
    if form.validate_on_submit():
        data = _product_data(form, merchant.currency)
        try:
            with unit_of_work():
                if data["merchant_sku"] and data["merchant_sku"] != product.merchant_sku \
                        and db.scalar(svc.products_query(
                            merchant.id, merchant_sku=data["merchant_sku"]).limit(1)):
                    raise Conflict(_l("You already have a product with this merchant_sku."),
                                   fields={"merchant_sku": [
                                       _("You already have a product with this code.")]})
                catalog.update_product(merchant.id, product_id, data)
        except DomainError as exc:
            _field_errors(form, exc)
        else:
            flash(_("Saved."), "success")
            return redirect(url_for(".product_edit", product_id=product_id))
    return render_template("shop/portal/product_form.html", merchant=merchant, form=form,
                           product=product, images_url=images_url(product.id),
                           stock_form=StockForm(stock=product.stock), action=ActionForm())


@bp.post("/products/<int:product_id>/stock")
@role_required(Role.MERCHANT)
def product_stock(product_id: int) -> Response:
    merchant = _merchant()
    svc.owned_product(merchant.id, product_id)
    form = StockForm()
    if form.validate_on_submit():
        with unit_of_work():
            svc.set_stock_levels(merchant.id, [{"product_id": product_id,
                                                "stock": form.stock.data}])
        flash(_("Stock set to %(n)s.", n=form.stock.data), "success")
    else:
        flash(next(iter(form.stock.errors), _("Write how many you have.")), "error")
    return redirect(request.form.get("back") == "list" and url_for(".products")
                    or url_for(".product_edit", product_id=product_id))


@bp.post("/products/<int:product_id>/active")
@role_required(Role.MERCHANT)
def product_active(product_id: int) -> Response:
    merchant = _merchant()
    product = svc.owned_product(merchant.id, product_id)
    if ActionForm().validate_on_submit():
        on = request.form.get("active") == "1"
        with unit_of_work():
            catalog.update_product(merchant.id, product.id, {"active": on})
        flash(_("The product is on sale.") if on else _("The product is off sale."),
              "success")
    return redirect(request.form.get("back") == "list" and url_for(".products")
                    or url_for(".product_edit", product_id=product_id))


def _digest(merchant_id: int, text: str) -> str:
    """A keyed hash of the previewed file, so only a file this shop previewed is
    applied. Line ends are normalised first: a browser sends a hidden field's newlines
    back as CR LF."""
    text = text.replace("\r\n", "\n")
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    return hashlib.blake2b(f"{merchant_id}:{text}".encode(), key=key[:64],
                           digest_size=16).hexdigest()


@bp.route("/products/import", methods=["GET", "POST"])
@role_required(Role.MERCHANT)
def products_import() -> str | Response:
    merchant = _merchant()
    form = ImportForm()
    result = error = None
    apply_form = ApplyImportForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            if upload is None or not getattr(upload, "filename", ""):
                raise catalog_import.ImportRefused(_l("Choose a CSV file."))
            text = catalog_import.decode(upload.read(catalog_import.MAX_BYTES + 1))
            text = text.replace("\r\n", "\n")
            result = catalog_import.plan(merchant.id, text)
        except DomainError as exc:
            error = str(exc.message)
        else:
            apply_form.text.data = text
            apply_form.digest.data = _digest(merchant.id, text)
    return render_template("shop/portal/import.html", merchant=merchant, form=form,
                           result=result, error=error, apply_form=apply_form,
                           columns=catalog_import.COLUMNS)


@bp.post("/products/import/apply")
@role_required(Role.MERCHANT)
def products_import_apply() -> str | Response:
    merchant = _merchant()
    form = ApplyImportForm()
    text = (form.text.data or "").replace("\r\n", "\n")
    if not form.validate_on_submit() or form.digest.data != _digest(merchant.id, text):
        flash(_("Upload the file again."), "error")
        return redirect(url_for(".products_import"))
    try:
        with unit_of_work():
            result = catalog_import.apply(merchant.id, text)
    except DomainError as exc:
        flash(str(exc.message), "error")
        return redirect(url_for(".products_import"))
    flash(_("Done: %(created)s added, %(updated)s changed, %(same)s unchanged.",
            created=result.count("create"), updated=result.count("update"),
            same=result.count("unchanged")), "success")
    return redirect(url_for(".products"))

