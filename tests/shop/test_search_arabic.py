"""Search that understands Arabic, on the demo catalog: the article, clitics and plural
endings do not matter, an English name typed with a typo is still found (PostgreSQL),
bad queries get a clear message, and the facets narrow the results by exactly the counts
they show."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.auth.seed import seed_people
from app.database import db
from shop.search import light_stem, query_words, search_form
from shop.seed import seed_shops
from shop.services import catalog
from shop.services.catalog import MatchedBy, SearchFilters

ROOT = Path(__file__).resolve().parents[2]
WATCHES = {"Sports smartwatch", "Men's wristwatch, leather strap", "Smart watch"}
PHONES = {"Samsung Galaxy A55 phone", "Phone case"}


@pytest.fixture()
def demo(app_ctx):
    seed_people()
    seed_shops()
    db.flush()


@pytest.fixture()
def demo_pages(app):
    """The demo shops, for tests that look at pages (the app context is left before the
    client asks, so each request picks its own language)."""
    with app.app_context():
        seed_people()
        seed_shops()
        db.commit()  # into the test's own transaction, rolled back at its end


def _titles(page) -> set[str]:
    return {p.title_en for p in page.items}


def test_the_article_clitics_and_endings_fall_away_in_index_and_query_alike():
    assert [light_stem(w) for w in ("الهاتف", "للهاتف", "بالهاتف", "والهاتف", "هاتف")] == \
        ["هاتف"] * 5
    assert {light_stem(search_form(w)) for w in ("ساعة", "ساعه", "الساعات", "والساعة",
                                                  "وساعة", "بساعة", "لساعات")} == {"ساع"}
    # Short words that only begin with و, ب or ل keep their letter.
    assert [light_stem(w) for w in ("ورد", "بيت", "لون", "ال")] == ["ورد", "بيت", "لون", "ال"]
    # Hamza, alef, taa marbuta and yaa are still folded first.
    assert search_form("المكتبة إبريق مستشفى") == search_form("المكتبه ابريق مستشفي")
    assert query_words("Samsung A55 ٢٠٢٤") == ["samsung", "a55", "2024"]


def test_the_phone_with_the_article_finds_the_phones(demo):
    found = catalog.search("الهاتف")
    assert _titles(found) >= PHONES, _titles(found)
    assert _titles(found) == _titles(catalog.search("هاتف"))
    # "للهاتف" (for the phone) is in the case's title; the phone itself comes first.
    assert found.items[0].title_en in PHONES


@pytest.mark.parametrize("query", ["ساعه", "ساعة", "الساعات", "والساعة", "ساعات"])
def test_every_spelling_of_watch_finds_the_watches(demo, query):
    assert _titles(catalog.search(query)) == WATCHES


def test_an_english_name_with_a_typo_is_found(demo):
    typo = catalog.search("samsang galaxy")
    assert (_titles(typo), typo.matched_by) == ({"Samsung Galaxy A55 phone"}, MatchedBy.TYPO)
    assert "Lenovo 15-inch laptop" in _titles(catalog.search("lenvo"))
    # Exact words never go through the typo search.
    assert catalog.search("samsung galaxy").matched_by is MatchedBy.WORDS
    assert catalog.search("qqzzxxj").total == 0


def test_english_words_are_stemmed_and_arabic_ranks_titles_first(demo):
    assert "Sports smartwatch" in _titles(catalog.search("smartwatches"))
    assert "Men's cotton shirt" in _titles(catalog.search("shirts"))
    phones = catalog.search("phones")
    # Named after the query first, then products that only mention it.
    named = [p.title_en for p in phones.items if "phone" in p.search_title]
    assert [p.title_en for p in phones.items][: len(named)] == named


@pytest.mark.parametrize("query", ["ا" * 500, "phone " * 100, "؟" * 500])
def test_a_search_of_500_characters_gets_a_clear_message(demo_pages, client, query):
    with client.application.test_request_context("/"):
        found = catalog.search(query)
        assert (found.total, found.items, str(found.notice)) == (
            0, [], "عبارة البحث طويلة جدًا: استعمل 200 حرفًا على الأكثر.")
    page = client.get("/shop/search", query_string={"q": query})
    assert page.status_code == 200
    assert "عبارة البحث طويلة جدًا" in page.get_data(as_text=True)
    client.get("/lang/en")
    page = client.get("/shop/search", query_string={"q": query})
    assert "Your search is too long: use at most 200 characters." in page.get_data(as_text=True)


@pytest.mark.parametrize("query", ["%", "؟!،.", "_ - _", "«»"])
def test_a_search_of_punctuation_only_asks_for_a_word(demo_pages, client, query):
    page = client.get("/shop/search", query_string={"q": query})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "product-grid" not in html
    assert "اكتب كلمة أو رقمًا للبحث عنه." in html


def _facet_options(facets):
    yield from (("category", SearchFilters(category_id=f.value.id), f.count)
                for f in facets.categories)
    yield from (("shop", SearchFilters(merchant_id=f.value.id), f.count) for f in facets.shops)
    yield from (("origin", SearchFilters(origin=f.value), f.count) for f in facets.origins)
    yield from (("price", SearchFilters(price=f.value), f.count) for f in facets.prices)
    yield from (("in_stock", SearchFilters(in_stock=True), f.count) for f in facets.in_stock)


def _merge(a: SearchFilters, b: SearchFilters) -> SearchFilters:
    return SearchFilters(
        category_id=b.category_id or a.category_id, merchant_id=b.merchant_id or a.merchant_id,
        origin=b.origin or a.origin, price=b.price or a.price,
        in_stock=a.in_stock or b.in_stock)


@pytest.mark.parametrize("query", ["ساعة", "cotton", "هاتف", "oud", "ذكي", "شحن", "الكتاب"])
def test_every_facet_count_is_what_choosing_it_shows(demo, query):
    whole = catalog.search(query, with_facets=True)
    assert whole.total > 0
    options = list(_facet_options(whole.facets))
    # Every product is in exactly one category, one shop, local or foreign.
    for facet in ("category", "shop", "origin"):
        assert sum(n for f, _, n in options if f == facet) == whole.total, facet
    for facet, chosen, count in options:
        narrowed = catalog.search(query, filters=chosen, with_facets=True)
        assert narrowed.total == count, (facet, chosen)
        assert narrowed.total <= whole.total
        # With one filter on, every other facet's counts still say what a second
        # filter gives on top of it.
        for facet2, second, count2 in _facet_options(narrowed.facets):
            if facet2 != facet:
                both = catalog.search(query, filters=_merge(chosen, second))
                assert both.total == count2, (facet, chosen, facet2, second)


def test_facets_narrow_the_watches_by_shop_origin_price_and_stock(demo):
    watches = catalog.search("الساعات", with_facets=True)
    facets = watches.facets
    assert {(f.value.slug, f.count) for f in facets.shops} == {
        ("basra-electronics", 1), ("istanbul-bazaar", 1), ("dubai-beauty", 1)}
    assert [(f.value, f.count) for f in facets.origins] == [("local", 1), ("foreign", 2)]
    assert [(f.value, f.count) for f in facets.in_stock] == [(True, 3)]
    local = catalog.search("الساعات", filters=SearchFilters(origin="local"))
    assert _titles(local) == {"Sports smartwatch"}
    foreign = catalog.search("الساعات", filters=SearchFilters(origin="foreign", in_stock=True))
    assert _titles(foreign) == {"Men's wristwatch, leather strap", "Smart watch"}
    from_istanbul = catalog.search("الساعات", filters=SearchFilters(
        merchant_id=facets.shops[0].value.id if facets.shops[0].value.slug == "istanbul-bazaar"
        else next(f.value.id for f in facets.shops if f.value.slug == "istanbul-bazaar")))
    assert _titles(from_istanbul) == {"Men's wristwatch, leather strap"}
    # The smartwatch is 85,000 dinars; the Dubai watch 499 dirhams (about 178,000).
    cheap = catalog.search("الساعات", filters=SearchFilters(price="25000-100000",
                                                            origin="local"))
    assert _titles(cheap) == {"Sports smartwatch"}
    dearer = catalog.search("الساعات", filters=SearchFilters(price="100000-500000"))
    assert "Smart watch" in _titles(dearer)
    assert catalog.search("الساعات", filters=SearchFilters(price="0-25000")).total == 0


def test_out_of_stock_products_drop_out_with_the_in_stock_filter(demo):
    # The smart television (E-007) has none left; the smart watches have.
    smart = catalog.search("ذكية", with_facets=True)
    in_stock = catalog.search("ذكية", filters=SearchFilters(in_stock=True))
    assert "43-inch smart TV" in _titles(smart)
    assert "43-inch smart TV" not in _titles(in_stock)
    assert in_stock.total == smart.facets.in_stock[0].count == smart.total - 1


def test_the_search_page_shows_filters_that_work_together_with_the_query(demo_pages, client):
    client.get("/lang/en")
    html = client.get("/shop/search", query_string={"q": "الساعات"}).get_data(as_text=True)
    assert "Sports smartwatch" in html and "Men&#39;s wristwatch" in html
    assert "origin=local" in html and "shop=istanbul-bazaar" in html and "stock=1" in html
    narrowed = client.get("/shop/search", query_string={
        "q": "الساعات", "origin": "local", "stock": "1"}).get_data(as_text=True)
    assert "Sports smartwatch" in narrowed and "wristwatch" not in narrowed
    assert "1 product" in narrowed
    assert 'aria-current="true"' in narrowed  # the chosen filter shows as ticked
    assert "Clear all filters" in narrowed
    # Filters naming nothing known are left out, never a 500.
    odd = client.get("/shop/search", query_string={
        "q": "ساعة", "category": "no-such", "shop": "x' OR 1=1", "price": "1-2",
        "origin": "mars", "stock": "yes", "page": "abc"})
    assert odd.status_code == 200
    assert "Sports smartwatch" in odd.get_data(as_text=True)


def test_searching_on_sqlite_uses_the_same_normal_form(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tests.shop.sqlite_search", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["dialect"] == "sqlite"
    for query in ("الهاتف", "هاتف"):
        assert set(PHONES) <= set(result[query]), (query, result[query])
    for query in ("ساعه", "ساعة", "الساعات"):
        assert set(result[query]) == WATCHES, (query, result[query])
    assert result["%"] == {"notice": "اكتب كلمة أو رقمًا للبحث عنه."}
    assert result["facets"]["origin"] == [["local", 1], ["foreign", 2]]
    assert result["local watches"] == ["Sports smartwatch"]


def test_pairs_of_filters_never_fail(demo):
    keys = [SearchFilters(origin="local"), SearchFilters(in_stock=True),
            SearchFilters(price="500000-"), SearchFilters(origin="foreign")]
    for a, b in itertools.combinations(keys, 2):
        assert catalog.search("هاتف", filters=_merge(a, b)).total >= 0
