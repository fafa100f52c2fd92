"""Fees and limits set by administrators: postage bands, customs fees, the tariff import.

What must hold: bands with a gap, an overlap, a bad start or a bad price are refused with
the band named and nothing changes; a saved edit is what the counter charges at once;
only an administrator saves (supervisors see); every change is audited before and after;
a tariff file with any rejected row applies nothing; a preview applies once, and not
after the tariff moved.
"""

from __future__ import annotations

import io
import threading

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from app.audit import AuditRecord
from app.database import db, unit_of_work
from app.errors import Conflict, NotFound, ValidationFailed
from tests.tracking.helpers import domestic_draft, login, make_user
from tracking.models import PostageBand, TariffLine
from tracking.services import customs, postage, tariff
from tracking.services.parcels import (
    Address,
    PaymentChoice,
    accept_at_counter,
    postage_for,
    postage_zone,
)

B = postage.Band


def _audits(action: str) -> list[AuditRecord]:
    return list(db.scalars(select(AuditRecord).where(AuditRecord.action == action)
                           .order_by(AuditRecord.id)))


def _bands_rows() -> list[tuple]:
    return list(db.execute(select(PostageBand.service, PostageBand.zone,
                                  PostageBand.from_grams, PostageBand.to_grams,
                                  PostageBand.price_iqd).order_by(PostageBand.id)).all())


@pytest.fixture()
def admin(offices):
    return make_user("Huda Admin", "admin", office=offices[0])


@pytest.fixture()
def supervisor(offices):
    return make_user("Saad Supervisor", "supervisor", office=offices[0])


# ---- postage bands ----------------------------------------------------------------------


def test_the_seeded_table_prices_exactly_as_the_built_in_tariff(app_ctx):
    weights = [1, 499, 500, 501, 999, 1000, 1001, 1500, 1501, 2600, 10_000, 29_999, 30_000]
    before = {(s, w): postage_for(s, w) for s in ("parcel", "ems", "registered", "ecommerce")
              for w in weights}
    postage.seed_built_in_bands()
    assert db.scalar(select(func.count()).select_from(PostageBand)) > 4
    after = {(s, w): postage_for(s, w) for s, w in before}
    assert after == before
    assert postage_for("parcel", 1000) == 5000 and postage_for("parcel", 1001) == 6000


@pytest.mark.parametrize(("bands", "expected"), [
    ([B(0, 1000, 5000), B(1500, 30000, 9000)], "Band 2 (1500–30000 g): gap"),
    ([B(0, 1000, 5000), B(900, 30000, 9000)], "Band 2 (900–30000 g): overlaps"),
    ([B(100, 30000, 5000)], "Band 1 (100–30000 g): the first band must start at 0 g"),
    ([B(0, 1000, 0), B(1000, 30000, 9000)], "Band 1 (0–1000 g): the price must be more"),
    ([B(0, 1000, 5000), B(1000, 1000, 9000)], "Band 2 (1000–1000 g): it must end above"),
    ([B(0, 1000, 5000)], "the bands must reach 30000 g"),
    ([], "at least one band"),
])
def test_bad_bands_are_refused_naming_the_band_and_nothing_changes(app_ctx, bands, expected):
    postage.seed_built_in_bands()
    db.commit()
    rows = _bands_rows()
    with pytest.raises(ValidationFailed) as err, unit_of_work():
        postage.replace_bands("parcel", "any", bands, actor_id=None)
    with force_locale("en"):
        problems = [str(p) for p in err.value.fields["bands"]]
    assert any(expected in p for p in problems), problems
    assert _bands_rows() == rows
    assert _audits("postage.bands_replaced") == []
    assert postage_for("parcel", 1200) == 6000


def test_an_administrator_edits_bands_and_the_counter_charges_the_new_price(
        client, admin, clerk, offices):
    login(client, admin)
    page = client.get("/backoffice/parcels/postage/parcel/any")
    assert page.status_code == 200 and "0 1000 5000" in page.get_data(as_text=True)
    # Arabic-Indic digits and thousands separators are read as the clerk typed them.
    text = "0 1000 ٥٠٠٠\n1000 2000 7,500\n2000 30000 20000\n"
    res = client.post("/backoffice/parcels/postage/parcel/any", data={"bands": text})
    assert res.status_code == 302
    parcel = accept_at_counter(domestic_draft(weight_grams=1200, length_cm=10, width_cm=10,
                                              height_cm=10),
                               clerk_id=clerk.id, office_id=offices[0].id,
                               payment=PaymentChoice("cash"), acceptance_key="fees-1")
    assert parcel.postage_amount == 7500
    [audit] = _audits("postage.bands_replaced")
    assert audit.actor_id == admin.id and audit.object_id == "parcel/any"
    # The built-in tariff priced it until now: that is what the audit keeps as before.
    assert audit.details["before_built_in"] is True
    assert audit.details["before"][:2] == [[0, 1000, 5000], [1000, 1500, 6000]]
    assert audit.details["after"] == [[0, 1000, 5000], [1000, 2000, 7500], [2000, 30000, 20000]]


def test_a_zone_of_its_own_prices_its_routes_and_others_keep_the_tariff_of_all_zones(
        app_ctx):
    postage.seed_built_in_bands()
    postage.replace_bands("parcel", "kurdistan", [B(0, 30000, 15000)], actor_id=None)
    to_erbil = domestic_draft(recipient=Address(name="ئاراس", phone="07501234567",
                                                governorate="IQ-AR", district="عينكاوة"))
    assert postage_zone(to_erbil) == "kurdistan"
    assert postage_for("parcel", 1200, zone="kurdistan") == 15000
    assert postage_for("parcel", 1200, zone="other_governorate") == 6000
    # Emptying a zone's bands gives it back the tariff of all zones.
    postage.replace_bands("parcel", "kurdistan", [], actor_id=None)
    assert postage_for("parcel", 1200, zone="kurdistan") == 6000


def test_a_parcel_beyond_the_last_band_is_refused_with_a_reason(app_ctx):
    postage.seed_built_in_bands()
    with pytest.raises(ValidationFailed) as err:
        postage_for("parcel", 2000, 100, 100, 100)  # 200 kg by volume
    assert "weight_grams" in err.value.fields


def test_the_page_says_what_is_wrong_in_arabic_and_saves_nothing(client, admin):
    login(client, admin)
    res = client.post("/backoffice/parcels/postage/ems/any",
                      data={"bands": "0 500 10000\n700 30000 12000\nعشرة"})
    body = res.get_data(as_text=True)
    assert res.status_code == 422
    assert "السطر 3" in body
    res = client.post("/backoffice/parcels/postage/ems/any",
                      data={"bands": "0 500 10000\n700 30000 12000"})
    body = res.get_data(as_text=True)
    assert res.status_code == 422 and "الشريحة 2" in body and "فجوة" in body
    assert db.scalar(select(func.count()).select_from(PostageBand)) == 0


def test_a_supervisor_sees_postage_but_cannot_change_it(client, supervisor):
    login(client, supervisor)
    assert client.get("/backoffice/parcels/postage").status_code == 200
    assert client.get("/backoffice/parcels/postage/parcel/any").status_code == 200
    res = client.post("/backoffice/parcels/postage/parcel/any",
                      data={"bands": "0 30000 1"})
    assert res.status_code == 403
    assert db.scalar(select(func.count()).select_from(PostageBand)) == 0


def test_an_unknown_service_or_zone_is_not_a_page(client, admin):
    login(client, admin)
    assert client.get("/backoffice/parcels/postage/pigeon/any").status_code == 404
    assert client.get("/backoffice/parcels/postage/parcel/mars").status_code == 404


# ---- customs fees -----------------------------------------------------------------------


def test_customs_fees_are_changed_by_an_administrator_and_audited(client, admin, supervisor):
    assert customs.customs_fees_iqd() == 15000
    login(client, admin)
    res = client.post("/backoffice/customs/fees", data={
        "CUSTOMS_INSPECTION_FEE_IQD": "٧٠٠٠", "CUSTOMS_STAMP_FEE_IQD": "10,000"})
    assert res.status_code == 302
    assert customs.customs_fees_iqd() == 17000
    [audit] = _audits("settings.changed")
    assert audit.details["before"] == 5000 and audit.details["after"] == 7000
    assert audit.object_id == "CUSTOMS_INSPECTION_FEE_IQD"


@pytest.mark.parametrize("typed", ["abc", "-1", "1.5", "", "9" * 40])
def test_a_bad_fee_is_refused_and_nothing_is_saved(client, admin, typed):
    login(client, admin)
    res = client.post("/backoffice/customs/fees", data={
        "CUSTOMS_INSPECTION_FEE_IQD": "6000", "CUSTOMS_STAMP_FEE_IQD": typed})
    assert res.status_code == 422
    assert customs.customs_fees_iqd() == 15000 and _audits("settings.changed") == []


def test_a_supervisor_cannot_change_customs_fees(client, supervisor):
    login(client, supervisor)
    assert client.get("/backoffice/customs/fees").status_code == 200
    res = client.post("/backoffice/customs/fees", data={
        "CUSTOMS_INSPECTION_FEE_IQD": "1", "CUSTOMS_STAMP_FEE_IQD": "1"})
    assert res.status_code == 403 and customs.customs_fees_iqd() == 15000


# ---- tariff import ----------------------------------------------------------------------

HEAD = "hs_prefix,rate_percent,description_en,description_ar\n"


def _load(csv_text: str) -> None:
    done = customs.import_tariff(csv_text.encode(), actor_id=None)
    assert not done.errors, done.errors


def _lines() -> dict[str, int]:
    return {t.hs_prefix: t.rate_bp for t in db.scalars(select(TariffLine))}


def test_preview_lists_added_changed_unchanged_and_applies_nothing_until_asked(app_ctx):
    _load(HEAD + "61,20,Knitted,محبوكة\n64,15,Footwear,أحذية\n8471,5,Computers,حاسبات\n")
    data = (HEAD + "61,25,Knitted,محبوكة\n64,15,Footwear,أحذية\n٩١٠٢,١٠,Watches,ساعات\n"
            ).encode()
    preview = tariff.preview_import(data, actor_id=None)
    assert [r.hs_prefix for r in preview.added] == ["9102"]
    assert [(r.hs_prefix, old["rate_bp"], r.rate_bp) for r, old in preview.changed] == [
        ("61", 2000, 2500)]
    assert [r.hs_prefix for r in preview.unchanged] == ["64"]
    assert preview.kept == 1 and preview.token
    assert _lines() == {"61": 2000, "64": 1500, "8471": 500}
    done = tariff.apply_import(preview.token, actor_id=None)
    assert len(done.added) == 1 and len(done.changed) == 1
    assert _lines() == {"61": 2500, "64": 1500, "8471": 500, "9102": 1000}
    audit = _audits("customs.tariff_imported")[-1]
    assert audit.details["before"] == {"61": {"rate_bp": 2000, "description_en": "Knitted",
                                              "description_ar": "محبوكة"}}
    assert audit.details["after"]["61"]["rate_bp"] == 2500
    assert audit.details["after"]["9102"]["rate_bp"] == 1000


def test_a_file_with_bad_rows_is_refused_with_each_reason_and_applies_nothing(app_ctx):
    _load(HEAD + "61,20,Knitted,محبوكة\n")
    data = (HEAD + "62,20,Clothing,ملابس\n"  # line 2: good
            "12345,5,Odd,فردي\n"                # 3: five digits
            "6x,5,Letters,حروف\n"               # 4
            "64,abc,Footwear,أحذية\n"           # 5
            "65,-5,Hats,قبعات\n"                # 6
            "66,150,Umbrellas,مظلات\n"          # 7
            "62,10,Again,مكرر\n"                # 8: duplicate of line 2
            "00,5,Zero,صفر\n"                   # 9
            "67,12.345,Feathers,ريش\n").encode()  # 10
    preview = tariff.preview_import(data, actor_id=None)
    with force_locale("en"):
        got = {r.line: " ".join(str(x) for x in r.reasons) for r in preview.rejected}
    assert set(got) == {3, 4, 5, 6, 7, 8, 9, 10}
    assert "2, 4, 6, 8 or 10 digits" in got[3] and "2, 4, 6, 8 or 10 digits" in got[4]
    assert "not a number" in got[5] and "negative" in got[6] and "over 100" in got[7]
    assert "already on line 2" in got[8] and "two decimals" in got[10]
    assert preview.token is None and not preview.acceptable
    assert _lines() == {"61": 2000}
    result = customs.import_tariff(data, actor_id=None)
    assert len(result.errors) == 8 and _lines() == {"61": 2000}
    assert len(_audits("customs.tariff_imported")) == 1  # only the first load


def test_a_preview_applies_once(app_ctx):
    preview = tariff.preview_import((HEAD + "61,20,Knitted,محبوكة\n").encode(), actor_id=None)
    tariff.apply_import(preview.token, actor_id=None)
    with pytest.raises(Conflict):
        tariff.apply_import(preview.token, actor_id=None)
    assert _lines() == {"61": 2000} and len(_audits("customs.tariff_imported")) == 1


def test_a_preview_is_refused_after_the_tariff_changed(app_ctx):
    _load(HEAD + "61,20,Knitted,محبوكة\n")
    stale = tariff.preview_import((HEAD + "62,30,Clothing,ملابس\n").encode(), actor_id=None)
    _load(HEAD + "61,22,Knitted,محبوكة\n")  # someone else's import in between
    with pytest.raises(Conflict):
        tariff.apply_import(stale.token, actor_id=None)
    assert _lines() == {"61": 2200}


def test_a_guessed_token_applies_nothing(app_ctx):
    for token in ("", "x" * 43, "1"):
        with pytest.raises(NotFound):
            tariff.apply_import(token, actor_id=None)
    assert _lines() == {}


@pytest.mark.commits
def test_two_applies_of_one_preview_at_once_apply_it_once(app):
    with app.app_context(), unit_of_work():
        token = tariff.preview_import((HEAD + "61,20,Knitted,محبوكة\n").encode(),
                                      actor_id=None).token
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def apply() -> None:
        with app.app_context():
            barrier.wait()
            try:
                with unit_of_work():
                    tariff.apply_import(token, actor_id=None)
                outcomes.append("applied")
            except Conflict:
                outcomes.append("conflict")
            finally:
                db.remove()

    threads = [threading.Thread(target=apply) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["applied", "conflict"]
    with app.app_context():
        assert _lines() == {"61": 2000}
        assert len(_audits("customs.tariff_imported")) == 1
        db.remove()


def test_the_tariff_page_previews_then_applies(client, supervisor):
    login(client, supervisor)
    data = (HEAD + "61,20,Knitted,محبوكة\n8471,5,Computers,حاسبات\n").encode()
    res = client.post("/backoffice/customs/tariff",
                      data={"file": (io.BytesIO(data), "tariff.csv")},
                      content_type="multipart/form-data")
    body = res.get_data(as_text=True)
    assert res.status_code == 200 and "ما يغيّره هذا الملف" in body
    assert _lines() == {}
    token = db.scalar(select(tariff.TariffImportPreview.token))
    res = client.post("/backoffice/customs/tariff/apply", data={"token": token})
    assert res.status_code == 302 and _lines() == {"61": 2000, "8471": 500}
    res = client.post("/backoffice/customs/tariff/apply", data={"token": token})
    assert res.status_code == 409 and "طُبِّق هذا الملف من قبل" in res.get_data(as_text=True)


def test_the_tariff_page_lists_rejected_rows_in_arabic(client, supervisor):
    login(client, supervisor)
    data = (HEAD + "61,20,Knitted,محبوكة\n8471,101,Computers,حاسبات\n").encode()
    res = client.post("/backoffice/customs/tariff",
                      data={"file": (io.BytesIO(data), "tariff.csv")},
                      content_type="multipart/form-data")
    body = res.get_data(as_text=True)
    assert res.status_code == 422
    assert "السطر 3" in body and "أكثر من 100" in body and 'id="apply"' not in body
    assert _lines() == {}
