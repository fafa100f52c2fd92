"""Demo shops for the embedded default: categories, two local shops (Baghdad, Basra),
two foreign ones (Istanbul in lira, Dubai in dirhams) and forty-two products.

Runs after the people and post offices (app.auth.seed) and payments' seeders; looks
everything up before creating it, so running it twice changes nothing. The seeders only
flush: whoever runs them (app.seed.seed_demo's caller) owns the unit of work.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import current_app
from sqlalchemy import select

from app.auth import services as auth_services
from app.auth.models import PostOffice, Role, User
from app.auth.seed import DEMO_PASSWORD, demo_password_hash
from app.database import db
from app.seed import seeder
from payments.errors import NoExchangeRate
from payments.rates import add_rate, rate_at
from shop import demo_pictures, images
from shop.models import Address, BuyRequest, Category, Merchant, Product
from shop.services import addresses, buyforme, catalog, merchants

log = logging.getLogger(__name__)

# (slug, Arabic, English, parent slug)
CATEGORIES = [
    ("electronics", "إلكترونيات", "Electronics", None),
    ("phones", "هواتف وملحقاتها", "Phones and accessories", "electronics"),
    ("computers", "حواسيب", "Computers", "electronics"),
    ("clothing", "ملابس", "Clothing", None),
    ("men", "رجالي", "Men", "clothing"),
    ("women", "نسائي", "Women", "clothing"),
    ("books", "كتب", "Books", None),
    ("home", "البيت والمطبخ", "Home and kitchen", None),
    ("beauty", "العناية والجمال", "Beauty and care", None),
]

# Used only when payments has not stored a rate for the currency yet (IQD per unit).
DEMO_RATES = {"TRY": "31.90", "AED": "356.70"}

# (slug, Arabic, English, country, currency, governorate, post office code,
#  owner e-mail, owner name, commission in basis points)
SHOPS = [
    ("mutanabbi-books", "مكتبة المتنبي", "Al-Mutanabbi Bookshop", "IQ", "IQD", "IQ-BG",
     "BGD-01", "merchant@barid.iq", "متجر بغداد للكتب", 800),
    ("basra-electronics", "البصرة للإلكترونيات", "Basra Electronics", "IQ", "IQD", "IQ-BA",
     "BSR-01", "basra.shop@barid.iq", "كاظم البصري", 600),
    ("istanbul-bazaar", "بازار إسطنبول", "Istanbul Bazaar", "TR", "TRY", None, None,
     "istanbul.shop@barid.iq", "Mehmet Yılmaz", 1200),
    ("dubai-beauty", "دار دبي للعطور", "Dubai Beauty House", "AE", "AED", None, None,
     "dubai.shop@barid.iq", "Fatima Al Mansouri", 1200),
]

# shop slug -> (sku, category, Arabic title, English title, price in minor units, stock,
#               grams, HS code, origin, Arabic description, English description)
PRODUCTS: dict[str, list[tuple]] = {
    "mutanabbi-books": [
        ("B-001", "books", "ديوان المتنبي", "Diwan of al-Mutanabbi", 18_000, 25, 850,
         "490199", "IQ", "شعر أبي الطيب المتنبي كاملًا، طبعة مجلدة.",
         "The complete poems of al-Mutanabbi, hardback."),
        ("B-002", "books", "الأعمال الشعرية لبدر شاكر السياب", "Badr Shakir al-Sayyab: Poems",
         15_000, 12, 700, "490199", "IQ", "قصائد رائد الشعر الحر.",
         "Poems by the pioneer of free verse."),
        ("B-003", "books", "تاريخ بغداد المصور", "Baghdad: An Illustrated History", 25_000, 6,
         1200, "490199", "IQ", "تاريخ المدينة بالصور من العصر العباسي إلى اليوم.",
         "The city's story in pictures, from the Abbasids to today."),
        ("B-004", "books", "قاموس المورد عربي - إنجليزي", "Al-Mawrid Arabic-English Dictionary",
         22_000, 30, 1500, "490191", "LB", "قاموس شامل للطلاب والمترجمين.",
         "A complete dictionary for students and translators."),
        ("B-005", "books", "كتاب الطبخ العراقي", "Iraqi Home Cooking", 12_000, 0, 600,
         "490199", "IQ", "وصفات الدولمة والكبة والمسكوف.",
         "Recipes for dolma, kubba and masgouf."),
        ("B-006", "books", "رواية فرانكشتاين في بغداد", "Frankenstein in Baghdad (novel)", 14_000,
         18, 450, "490199", "IQ", "رواية أحمد سعداوي الحائزة على الجائزة العالمية للرواية العربية.",
         "Ahmed Saadawi's novel, winner of the International Prize for Arabic Fiction."),
        ("B-007", "books", "دفتر مدرسي 100 ورقة", "School notebook, 100 sheets", 1_500, 200, 250,
         "482020", "IQ", "دفتر مسطر بغلاف مقوى.", "Ruled notebook with a stiff cover."),
        ("B-008", "home", "مصباح مكتب للقراءة", "Reading desk lamp", 27_500, 9, 900, "940520",
         "CN", "مصباح LED بثلاث درجات إضاءة.", "LED lamp with three brightness levels."),
        ("B-009", "books", "أطلس العراق المدرسي", "Iraq school atlas", 9_000, 40, 500, "490510",
         "IQ", "خرائط المحافظات والأنهار.", "Maps of the governorates and rivers."),
        ("B-010", "books", "قصص الأطفال: كليلة ودمنة", "Children's tales: Kalila wa Dimna",
         8_000, 3, 400, "490300", "IQ", "حكايات مصورة للأطفال.", "Illustrated tales for children."),
    ],
    "basra-electronics": [
        ("E-001", "phones", "هاتف سامسونج جالاكسي A55", "Samsung Galaxy A55 phone", 565_000, 7,
         213, "851713", "VN", "شاشة 6.6 إنش، ذاكرة 256 غيغابايت.", "6.6-inch screen, 256 GB."),
        ("E-002", "phones", "سماعات لاسلكية", "Wireless earbuds", 45_000, 20, 60, "851830",
         "CN", "بلوتوث 5.3 مع علبة شحن.", "Bluetooth 5.3 with charging case."),
        ("E-003", "phones", "شاحن سريع 25 واط", "25 W fast charger", 18_000, 35, 90, "850440",
         "CN", "يدعم الشحن السريع للهواتف الحديثة.", "Fast charging for recent phones."),
        ("E-004", "phones", "بطارية متنقلة 20000 ملي أمبير", "Power bank 20,000 mAh", 32_000, 14,
         400, "850760", "CN", "تشحن هاتفين معًا.", "Charges two phones at once."),
        ("E-005", "computers", "حاسوب محمول لينوفو 15 إنش", "Lenovo 15-inch laptop", 1_250_000, 3,
         1700, "847130", "CN", "معالج Core i5، ذاكرة 16 غيغابايت.", "Core i5, 16 GB memory."),
        ("E-006", "computers", "فأرة لاسلكية", "Wireless mouse", 12_500, 50, 80, "847160", "CN",
         "فأرة هادئة ببطارية تدوم سنة.", "Quiet mouse, battery lasts a year."),
        ("E-007", "electronics", "تلفاز ذكي 43 إنش", "43-inch smart TV", 420_000, 0, 8000,
         "852872", "TR", "دقة 4K مع تطبيقات البث.", "4K with streaming apps."),
        ("E-008", "home", "مبردة هواء صغيرة", "Small air cooler", 95_000, 8, 6500, "847960",
         "CN", "مبردة ماء للغرف الصغيرة.", "Evaporative cooler for small rooms."),
        ("E-009", "electronics", "مولدة كهرباء منزلية 1 كيلوواط", "1 kW home generator",
         310_000, 2, 24000, "850220", "CN", "مولدة بنزين للطوارئ.",
         "Petrol generator for outages."),
        ("E-010", "phones", "غطاء حماية للهاتف", "Phone case", 7_500, 60, 40, "392690", "CN",
         "غطاء سيليكون شفاف.", "Clear silicone case."),
        ("E-011", "electronics", "ساعة ذكية رياضية", "Sports smartwatch", 85_000, 11, 50,
         "851762", "CN", "تقيس النبض والخطوات، مقاومة للماء.",
         "Counts steps and heart rate, water resistant."),
    ],
    "istanbul-bazaar": [
        ("T-001", "men", "قميص قطني رجالي", "Men's cotton shirt", 59_990, 25, 300, "620520",
         "TR", "قطن تركي 100%.", "100% Turkish cotton."),
        ("T-002", "women", "وشاح حرير", "Silk scarf", 44_950, 15, 120, "621410", "TR",
         "وشاح مطبوع بنقوش عثمانية.", "Printed with Ottoman patterns."),
        ("T-003", "men", "بنطلون جينز", "Denim jeans", 89_900, 20, 650, "620342", "TR",
         "جينز بقصة مستقيمة.", "Straight-cut denim."),
        ("T-004", "home", "طقم مناشف قطنية", "Cotton towel set", 64_900, 10, 1400, "630260",
         "TR", "أربع مناشف من قطن دنيزلي.", "Four towels of Denizli cotton."),
        ("T-005", "home", "طقم استكانات شاي", "Tea glass set", 34_990, 30, 900, "701337", "TR",
         "ستة استكانات مع صحونها.", "Six tea glasses with saucers."),
        ("T-006", "home", "دلة قهوة نحاسية", "Copper coffee pot", 79_000, 0, 500, "741810",
         "TR", "دلة مطروقة يدويًا.", "Hand-hammered copper."),
        ("T-007", "women", "فستان صيفي", "Summer dress", 119_900, 9, 350, "620442", "TR",
         "فستان قطني خفيف.", "Light cotton dress."),
        ("T-008", "home", "سجادة صلاة", "Prayer rug", 54_990, 40, 800, "570500", "TR",
         "سجادة مخملية ناعمة.", "Soft velvet rug."),
        ("T-011", "men", "ساعة يد رجالية بسوار جلد", "Men's wristwatch, leather strap",
         249_900, 4, 90, "910211", "TR", "ساعة كوارتز بميناء فولاذي.",
         "Quartz watch with a steel dial."),
        ("T-009", "men", "حذاء جلد رجالي", "Men's leather shoes", 149_900, 6, 1100, "640399",
         "TR", "جلد طبيعي بنعل مريح.", "Genuine leather, cushioned sole."),
        ("T-010", "beauty", "صابون زيت الزيتون", "Olive oil soap", 12_990, 80, 150, "340111",
         "TR", "صابون طبيعي من أيفاليك.", "Natural soap from Ayvalik."),
    ],
    "dubai-beauty": [
        ("D-001", "beauty", "عطر عود ملكي", "Royal oud perfume", 35_000, 12, 350, "330300", "AE",
         "عطر عود بخاخ 100 مل.", "Oud eau de parfum, 100 ml."),
        ("D-002", "beauty", "دهن عود", "Oud oil", 22_000, 8, 80, "330129", "AE",
         "دهن عود مركز 12 مل.", "Concentrated oud oil, 12 ml."),
        ("D-003", "beauty", "بخور معطر", "Scented bakhoor", 6_500, 40, 200, "330741", "AE",
         "بخور للبيت والمجالس.", "Incense for home and guests."),
        ("D-004", "beauty", "كريم مرطب للبشرة", "Moisturising face cream", 8_900, 25, 120,
         "330499", "AE", "كريم بزيت الأرغان.", "With argan oil."),
        ("D-005", "beauty", "أحمر شفاه", "Lipstick", 4_500, 50, 30, "330410", "FR",
         "لون ثابت طوال اليوم.", "Long-lasting colour."),
        ("D-006", "beauty", "شامبو بالحناء", "Henna shampoo", 3_200, 60, 450, "330510", "AE",
         "شامبو طبيعي للشعر.", "Natural hair shampoo."),
        ("D-007", "electronics", "مجفف شعر", "Hair dryer", 18_900, 10, 700, "851631", "CN",
         "2000 واط مع ثلاث سرعات.", "2000 W, three speeds."),
        ("D-008", "beauty", "مبخرة كهربائية", "Electric incense burner", 12_000, 0, 600, "851679",
         "CN", "مبخرة تعمل بالكهرباء والبطارية.", "Mains or battery incense burner."),
        ("D-009", "electronics", "ساعة ذكية", "Smart watch", 49_900, 5, 90, "851762", "CN",
         "تقيس النبض والخطوات.", "Tracks heart rate and steps."),
        ("D-010", "home", "تمر خلاص فاخر", "Premium Khalas dates", 7_500, 30, 1000, "080410",
         "AE", "علبة تمر 1 كيلوغرام.", "A 1 kg box of dates."),
    ],
}


def _owner(email: str, name: str) -> User:
    user = db.scalar(select(User).where(User.email == email))
    if user is not None:
        return user
    return auth_services.create_user(name, email=email, password=DEMO_PASSWORD,
                                     password_hash=demo_password_hash(),
                                     roles=[Role.MERCHANT])


def _ensure_rates() -> None:
    for currency, rate in DEMO_RATES.items():
        try:
            rate_at(currency)
        except NoExchangeRate:
            add_rate(currency, rate)


@seeder(300)
def seed_shops() -> None:
    """Categories, four demo shops and their products (idempotent; skipped in production,
    where shops are real merchants approved by an admin)."""
    if current_app.config.get("BARID_ENV") == "production":
        log.warning("demo shops are not created when BARID_ENV=production")
        return
    categories: dict[str, Category] = {
        c.slug: c for c in db.scalars(select(Category))
    }
    for position, (slug, name_ar, name_en, parent) in enumerate(CATEGORIES):
        if slug not in categories:
            parent_id = categories[parent].id if parent else None
            categories[slug] = catalog.create_category(
                slug, name_ar, name_en, parent_id=parent_id, position=position)
    _ensure_rates()
    for (slug, name_ar, name_en, country, currency, gov, office_code, email, owner_name,
         commission) in SHOPS:
        merchant = db.scalar(select(Merchant).where(Merchant.slug == slug))
        if merchant is None:
            office_id = db.scalar(select(PostOffice.id).where(PostOffice.code == office_code)) \
                if office_code else None
            owner = _owner(email, owner_name)
            merchant = merchants.register_merchant(owner.id, {
                "slug": slug, "name_ar": name_ar, "name_en": name_en, "country": country,
                "currency": currency, "governorate": gov, "post_office_id": office_id,
                "commission_bps": commission,
            })
            merchants.approve_merchant(merchant.id)
        known = set(db.scalars(select(Product.merchant_sku)
                               .where(Product.merchant_id == merchant.id)))
        for (sku, cat, title_ar, title_en, price, stock, grams, hs, origin, desc_ar,
             desc_en) in PRODUCTS[slug]:
            if sku in known:
                continue
            catalog.create_product(merchant.id, {
                "merchant_sku": sku, "category_id": categories[cat].id, "title_ar": title_ar,
                "title_en": title_en, "price": price, "stock": stock, "weight_g": grams,
                "hs_code": hs, "origin_country": origin, "description_ar": desc_ar,
                "description_en": desc_en,
            })


@seeder(310)
def seed_pictures() -> None:
    """A picture for every demo product that has none, drawn by shop.demo_pictures and
    put through the same checks, cleaning and variants as a merchant's upload into the
    media storage (MEDIA_ROOT). Deterministic drawings; a product that already has a
    picture is left alone, so running it twice changes nothing."""
    if current_app.config.get("BARID_ENV") == "production":
        return
    wanted = {(slug, item[0]): item for slug, items in PRODUCTS.items() for item in items}
    rows = db.execute(select(Product, Merchant.slug).join(Merchant)
                      .where(Merchant.slug.in_(list(PRODUCTS)))
                      .where(~Product.images.any())).all()
    todo = [(product, wanted[(slug, product.merchant_sku)]) for product, slug in rows
            if (slug, product.merchant_sku) in wanted]
    limits = images.limits()

    def draw(item: tuple[Any, ...]) -> images.Prepared:
        sku, category, _title_ar, title_en = item[:4]
        return images.prepare(demo_pictures.picture_for(sku, category, title_en),
                              limits_=limits)

    # Drawn and encoded on a thread per core (Pillow lets go of the GIL while it
    # resizes and encodes: 42 pictures, 6 files each); stored in order on this one.
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        for (product, item), prepared in zip(todo, pool.map(draw, [i for _, i in todo]),
                                             strict=True):
            images.store_image(product, prepared, alt_ar=item[2], alt_en=item[3])


# The demo shopper's address book and "buy for me" requests: one waiting for
# procurement, one already priced for the shopper to accept.
DEMO_ADDRESS = {"recipient_name": "مريم المتسوقة", "phone": "07701234567",
                "governorate": "IQ-BG", "district": "الكرادة داخل",
                "landmark": "قرب جامع الرحمن، مقابل مدرسة المنصور", "postal_code": ""}
DEMO_BUY_REQUESTS = [
    {"url": "https://www.example.com/p/winter-jacket-42", "title": "Winter jacket",
     "price": "49.99", "currency": "USD", "quantity": "1", "options": "M, navy",
     "weight_g": "900", "customs_category": "clothing"},
    {"url": "https://shop.example.de/kopfhoerer/123", "title": "Wireless headphones",
     "price": "89.00", "currency": "EUR", "quantity": "1", "options": "black",
     "weight_g": "350", "customs_category": "audio"},
]


@seeder(320)
def seed_orders() -> None:
    """An address and two buy-for-me requests (one priced) for shopper@barid.iq
    (idempotent; skipped in production)."""
    if current_app.config.get("BARID_ENV") == "production":
        return
    shopper = db.scalar(select(User).where(User.email == "shopper@barid.iq"))
    if shopper is None:
        return
    if db.scalar(select(Address.id).where(Address.user_id == shopper.id)) is None:
        addresses.add_address(shopper.id, addresses.AddressInput(**DEMO_ADDRESS))
    if db.scalar(select(BuyRequest.id).where(BuyRequest.user_id == shopper.id)) is not None:
        return
    buyer = db.scalar(select(User).where(User.email == "procurement@barid.iq"))
    for i, data in enumerate(DEMO_BUY_REQUESTS):
        req = buyforme.submit_request(shopper.id, data)
        if i == 1 and buyer is not None:
            buyforme.approve_request(req.id, reviewer_id=buyer.id, data={
                "note": "السعر مؤكد من المتجر، والشحن خلال أسبوعين تقريباً."})
