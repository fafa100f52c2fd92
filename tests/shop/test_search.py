"""Search: Arabic spelling variants and English case are ignored, titles rank first, only
what may be sold is found, and PostgreSQL answers from the trigram index."""

from __future__ import annotations

from sqlalchemy import text

from app.database import db
from shop.models import MerchantStatus
from shop.search import normalise, query_words
from shop.services import catalog
from tests.shop.helpers import make_merchant, make_product


def test_normalise_folds_arabic_letters_marks_and_latin_case():
    assert normalise("أحمد") == "احمد"
    assert normalise("إسلام آمنة ٱلكتاب") == "اسلام امنه الكتاب"
    assert normalise("مكتبة") == "مكتبه"
    assert normalise("مستشفى") == "مستشفي"
    assert normalise("كِتَابٌ") == "كتاب"        # harakat
    assert normalise("جمـــيل") == "جميل"        # tatweel
    assert normalise("رحمٰن") == "رحمن"          # superscript alef
    assert normalise("  Samsung   GALAXY\tS24 ") == "samsung galaxy s24"
    assert normalise("موديل ٢٠٢٤") == "موديل 2024"


def test_query_words_are_distinct_normalised_and_capped():
    assert query_words("أحمد احمد  Phone phone") == ["احمد", "phone"]
    assert len(query_words(" ".join(f"w{i}" for i in range(20)))) == 8
    assert query_words("   ") == []


def _titles(page):
    return [p.title_en for p in page.items]


def test_arabic_search_ignores_hamza_taa_marbuta_and_diacritics(local_shop, category):
    make_product(local_shop, category, title_ar="كتاب أحمد شوقي", title_en="Ahmed Shawqi poems")
    make_product(local_shop, category, title_ar="مكتبة خشبية", title_en="Wooden bookcase")
    make_product(local_shop, category, title_ar="قَلَمٌ حِبْر", title_en="Fountain pen")
    make_product(local_shop, category, title_ar="هاتف", title_en="Phone")
    db.commit()

    assert _titles(catalog.search("احمد")) == ["Ahmed Shawqi poems"]
    assert _titles(catalog.search("مكتبه")) == ["Wooden bookcase"]
    assert _titles(catalog.search("قلم")) == ["Fountain pen"]
    assert _titles(catalog.search("قَلم حبر")) == ["Fountain pen"]
    assert _titles(catalog.search("إحمد")) == ["Ahmed Shawqi poems"]


def test_english_search_is_case_insensitive_and_needs_every_word(local_shop, category):
    make_product(local_shop, category, title_ar="سماعة", title_en="Wireless HEADPHONES Black")
    make_product(local_shop, category, title_ar="سماعة", title_en="Wired headphones White")
    db.commit()

    assert len(catalog.search("headphones").items) == 2
    assert _titles(catalog.search("HeadPhones black")) == ["Wireless HEADPHONES Black"]
    assert catalog.search("headphones blue").total == 0


def test_like_wildcards_in_the_query_are_taken_literally(local_shop, category):
    make_product(local_shop, category, title_en="Cable 100% copper")
    make_product(local_shop, category, title_en="Cable 100 metres")
    db.commit()
    # "00%" is no word of either title: the letters-inside-words search answers, and
    # its % is a percent sign, not "anything".
    assert _titles(catalog.search("00%")) == ["Cable 100% copper"]
    assert catalog.search("0_ m").total == 0
    # Punctuation alone is no search at all.
    for nothing in ("%", "_", "% _ ؟!"):
        found = catalog.search(nothing)
        assert (found.total, str(found.notice)) == (0, "Type a word or a number to search for.")


def test_title_matches_rank_before_description_matches(local_shop, category):
    make_product(local_shop, category, title_en="Phone case",
                 description_en="Fits the Nokia handset")
    make_product(local_shop, category, title_en="Nokia 3310 handset", description_en="Classic")
    make_product(local_shop, category, title_en="Charger", description_en="Works with Nokia")
    db.commit()
    assert _titles(catalog.search("nokia handset")) == ["Nokia 3310 handset", "Phone case"]
    assert _titles(catalog.search("nokia"))[0] == "Nokia 3310 handset"


def test_search_pages_through_results(local_shop, category):
    for i in range(30):
        make_product(local_shop, category, title_en=f"Notebook {i:02d}")
    db.commit()
    first = catalog.search("notebook", page=1, per_page=12)
    last = catalog.search("notebook", page=3, per_page=12)
    assert (first.total, first.pages, len(first.items), len(last.items)) == (30, 3, 12, 6)
    assert not last.has_next and last.has_prev
    everything = {p.id for n in (1, 2, 3) for p in catalog.search("notebook", page=n,
                                                                   per_page=12).items}
    assert len(everything) == 30


def test_hidden_products_and_shops_are_never_found(local_shop, category):
    suspended = make_merchant(status=MerchantStatus.SUSPENDED)
    pending = make_merchant(status=MerchantStatus.PENDING)
    make_product(local_shop, category, title_en="Lamp visible")
    make_product(local_shop, category, title_en="Lamp inactive", active=False)
    make_product(suspended, category, title_en="Lamp of suspended shop")
    make_product(pending, category, title_en="Lamp of pending shop")
    db.commit()
    assert _titles(catalog.search("lamp")) == ["Lamp visible"]


def test_search_text_follows_every_product_write(local_shop, category):
    product = make_product(local_shop, category, title_ar="ساعة", title_en="Watch")
    db.commit()
    catalog.update_product(local_shop.id, product.id, {"title_ar": "مِروَحة سقف"})
    assert _titles(catalog.search("مروحه")) == ["Watch"]
    assert catalog.search("ساعه").total == 0


def test_postgresql_answers_search_from_the_trigram_index(local_shop, category):
    db.execute(text(
        "INSERT INTO products (merchant_id, category_id, title_ar, title_en, description_ar, "
        "description_en, price, stock, weight_g, hs_code, origin_country, active, image_url, "
        "search_title, search_text, created_at, updated_at) "
        "SELECT :m, :c, 'منتج ' || g, 'item ' || g, '', '', 1000, 5, 100, '851712', 'IQ', "
        "true, '', 'منتج ' || g || ' item ' || g, "
        "'منتج ' || g || ' item ' || md5(g::text), now(), now() "
        "FROM generate_series(1, 20000) AS g"
    ), {"m": local_shop.id, "c": category.id})
    db.commit()
    db.execute(text("ANALYZE products"))
    stmt, order = catalog.search_statement(query_words("a1b2c"))
    compiled = stmt.order_by(*order).limit(24).compile(db.get_bind())
    plan = "\n".join(
        row[0] for row in db.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    )
    assert "ix_products_search_text_trgm" in plan, plan
    assert "Seq Scan on products" not in plan, plan
    # The service finds exactly what a plain scan finds.
    assert catalog.search("A1B2C").total == db.scalar(text(
        "SELECT count(*) FROM products WHERE search_text LIKE '%a1b2c%'"))
    # A common word: counting stops at MAX_COUNTED, the pages still work.
    common = catalog.search("item", page=2)
    assert (common.total, common.more, common.pages, len(common.items)) == (
        catalog.MAX_COUNTED, True, 42, 24)


def test_short_words_match_without_the_index(local_shop, category):
    make_product(local_shop, category, title_ar="تلفاز ذكي", title_en="LG TV 43 inch")
    make_product(local_shop, category, title_ar="يد خشبية", title_en="Wooden hand")
    db.commit()
    assert _titles(catalog.search("tv")) == ["LG TV 43 inch"]
    assert _titles(catalog.search("TV 43 تلفاز")) == ["LG TV 43 inch"]
    assert _titles(catalog.search("يد")) == ["Wooden hand"]
    stmt, _ = catalog.search_statement(query_words("tv"))
    assert "search_text || " in str(stmt.compile(db.get_bind()))


def test_postgresql_answers_word_search_from_the_full_text_indexes(local_shop, category):
    db.execute(text(
        "INSERT INTO products (merchant_id, category_id, title_ar, title_en, description_ar, "
        "description_en, price, stock, weight_g, hs_code, origin_country, active, image_url, "
        "search_title, search_text, created_at, updated_at) "
        "SELECT :m, :c, 'منتج ' || g, 'item ' || g, '', '', 1000, 5, 100, '851712', 'IQ', "
        "true, '', 'منتج ' || g || ' item' || g, "
        "'منتج ' || g || ' item' || g || ' ' || md5(g::text), now(), now() "
        "FROM generate_series(1, 20000) AS g"
    ), {"m": local_shop.id, "c": category.id})
    make_product(local_shop, category, title_ar="هاتف", title_en="Phone")
    db.commit()
    db.execute(text("ANALYZE products"))
    stmt, _ = catalog.ranked_words_statement(query_words("الهاتف"), [])
    compiled = stmt.limit(24).compile(db.get_bind())
    plan = "\n".join(
        row[0] for row in db.connection().exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    )
    assert "ix_products_search_title_vector" in plan, plan
    assert "ix_products_search_vector" in plan, plan
    assert "Seq Scan on products" not in plan, plan
    assert _titles(catalog.search("الهاتف")) == ["Phone"]
    # A word every product has: at most a thousand and one are ranked, the pages work.
    common = catalog.search("منتج", page=3)
    assert (common.total, common.more, common.pages, len(common.items)) == (
        catalog.MAX_COUNTED, True, 42, 24)


_picture_loads: list[str] = []


def _statements_of(action):
    """The SQL statements `action` sends to search (round trips to the database). The
    page's pictures come in one more statement whenever products are found (the
    listing shows them); that one is counted apart, in `_picture_loads`."""
    from sqlalchemy import event

    sent: list[str] = []

    def record(conn, cursor, statement, *args):
        if statement.startswith(("SAVEPOINT", "RELEASE")):  # the test's own
            return
        if "FROM product_images" in statement:
            _picture_loads.append(statement)
        else:
            sent.append(statement)

    engine = db.get_bind()
    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return sent


def test_a_search_costs_few_round_trips(local_shop, category):
    make_product(local_shop, category, title_ar="هاتف سامسونج", title_en="Samsung phone")
    make_product(local_shop, category, title_ar="شاحن", title_en="Charger",
                 description_en="Works with the Samsung phone")
    db.commit()
    # Found as words: the count, the ranking and the page's products in one statement
    # (and their pictures in one more).
    _picture_loads.clear()
    assert len(_statements_of(lambda: catalog.search("samsung phone"))) == 1
    assert len(_picture_loads) == 1
    # Nothing found: words, then letters, then the typo threshold and the typo search.
    assert len(_statements_of(lambda: catalog.search("zzqqxx"))) == 4
    # Several words, nothing found: the words no product holds are looked up at once.
    sent = _statements_of(lambda: catalog.search("هاتف قطني ابيض"))
    assert len(sent) <= 5, sent
    assert catalog.search("samsang").matched_by is catalog.MatchedBy.TYPO


def test_letters_inside_words_are_counted_and_paged_past_the_cap(local_shop, category):
    # "ip" is no word of any title, so the letters search answers, and a two-letter
    # word has no index: at most MAX_COUNTED + 1 are taken and ordered, in one trip.
    db.execute(text(
        "INSERT INTO products (merchant_id, category_id, title_ar, title_en, description_ar, "
        "description_en, price, stock, weight_g, hs_code, origin_country, active, image_url, "
        "search_title, search_text, created_at, updated_at) "
        "SELECT :m, :c, 'منتج', 'philips ' || g, '', '', 1000, 5, 100, '851712', 'IQ', "
        "true, '', 'منتج philips ' || g, 'منتج philips ' || g, now(), now() "
        "FROM generate_series(1, 1500) AS g"
    ), {"m": local_shop.id, "c": category.id})
    make_product(local_shop, category, title_en="Shipping box")
    db.commit()
    first = catalog.search("ip")
    assert (first.total, first.more, first.matched_by) == (
        catalog.MAX_COUNTED, True, catalog.MatchedBy.LETTERS)
    pages = [catalog.search("ip", page=n) for n in range(1, 43)]
    seen = [p.id for page in pages for p in page.items]
    assert len(seen) == len(set(seen)) >= catalog.MAX_COUNTED  # no product twice
    # Ordered as before: titles holding the letters, shorter titles first.
    lengths = [len(p.search_title) for p in first.items]
    assert lengths == sorted(lengths)
    assert len(_statements_of(lambda: catalog.search("ip"))) == 2  # words, letters
    # Past the first page, an empty page of words needs a count to tell "no match".
    assert len(_statements_of(lambda: catalog.search("ip", page=3))) == 3
    # A page past the end is empty and still says how many there are.
    past = catalog.search("ip", page=60)
    assert (past.items, past.total) == ([], catalog.MAX_COUNTED)
