"""Search text for the catalog: one normal form for Arabic and English.

Shoppers type Arabic the way they write it by hand: hamza or not on the alef, ه for ة,
ي for ى, with or without harakat, with or without the article. Both the stored search
columns and the typed query go through `search_form` (which starts with `normalise`), so
"احمد" finds "أحمد", "مكتبه" finds "مكتبة", and "الهاتف", "للهاتف" and "هاتف" are one word,
as are "ساعة", "ساعه" and "الساعات".

On PostgreSQL the words are matched by full-text search (generated tsvector columns built
with the built-in `arabic` and `english` configurations from the search form, GIN
indexed) and ranked with ts_rank; when no product holds the words, the pg_trgm index on
the search text answers a substring match and then a typo-tolerant word similarity.
SQLite falls back to a plain scan with LIKE on the same search form. Both sides are
already lower-cased, so plain LIKE matches exactly what ILIKE would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Boolean, ColumnElement, and_, case, func, literal, literal_column
from sqlalchemy.ext.compiler import compiles

# Alef with hamza above/below, madda, wasla -> bare alef; taa marbuta -> haa;
# alef maqsura -> yaa; Arabic-Indic digits -> ASCII, so "٢٠٢٤" finds "2024".
_FOLD = str.maketrans(
    {
        "\u0623": "\u0627",  # أ
        "\u0625": "\u0627",  # إ
        "\u0622": "\u0627",  # آ
        "\u0671": "\u0627",  # ٱ
        "\u0629": "\u0647",  # ة -> ه
        "\u0649": "\u064a",  # ى -> ي
        **{chr(0x0660 + d): str(d) for d in range(10)},
        **{chr(0x06F0 + d): str(d) for d in range(10)},
    }
)
# Harakat and other marks (U+064B-U+065F), superscript alef (U+0670), tatweel (U+0640).
_STRIP = re.compile("[\u064b-\u065f\u0670\u0640]")
_SPACE = re.compile(r"\s+")
MAX_QUERY_WORDS = 8


def normalise(text: str | None) -> str:
    """The search form of `text`: Arabic letters folded, marks removed, Latin lower-cased,
    runs of white space collapsed to one space."""
    if not text:
        return ""
    folded = _STRIP.sub("", text.translate(_FOLD)).lower()
    return _SPACE.sub(" ", folded).strip()


# The article with the clitics that stick to it, longest first: "والساعة", "بالهاتف",
# "للهاتف" (li + al, the alef dropped in writing), "الكتاب".
_ARTICLES = ("وبال", "وال", "بال", "كال", "فال", "ولل", "لل", "ال")
# One-letter clitics (and, with/by, for): stripped only from a long word, because many
# short words start with these letters ("ورد", "بيت", "لون"). A word that only looks
# like it has a clitic ("بطارية") loses the letter in the index and in the query alike,
# so it still finds itself.
_CLITICS = ("و", "ب", "ل")
_CLITIC_MIN_REST = 4
# Light suffixes: the feminine plural, and taa marbuta (already folded to haa), so that
# "ساعة" and "الساعات" meet at "ساع". The stem keeps at least three letters.
_SUFFIXES = ("ات", "ه")
_STEM_MIN = 3
_ARABIC_LETTER = re.compile("[\u0621-\u064a]")
# A word needs a letter or a digit; "%" or "؟!" alone is no word.
_HAS_WORD_CHAR = re.compile(r"[^\W_]")


def light_stem(word: str) -> str:
    """`word` (already normalised) without the article, a leading clitic and a plural or
    taa-marbuta ending; Latin words and numbers are returned unchanged."""
    if not _ARABIC_LETTER.match(word):
        return word
    for prefix in _ARTICLES:
        if word.startswith(prefix) and len(word) - len(prefix) >= 2:
            word = word[len(prefix):]
            break
    else:
        if word[0] in _CLITICS and len(word) - 1 >= _CLITIC_MIN_REST:
            word = word[1:]
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= _STEM_MIN:
            word = word[: -len(suffix)]
            break
    return word


def search_form(text: str | None) -> str:
    """What search stores and matches: `normalise`d text with every Arabic word lightly
    stemmed (`light_stem`)."""
    return " ".join(light_stem(w) for w in normalise(text).split(" ") if w)


def query_words(query: str | None) -> list[str]:
    """The distinct words of a shopper's query in search form (at most MAX_QUERY_WORDS);
    runs of punctuation alone are dropped."""
    words: list[str] = []
    for word in search_form(query).split(" "):
        if word and _HAS_WORD_CHAR.search(word) and word not in words:
            words.append(word)
    return words[:MAX_QUERY_WORDS]


def _like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# A word shorter than a trigram gives the index nothing to look up: pg_trgm would read
# the whole index. Such words are checked on the rows the other words found instead.
MIN_INDEXED_LENGTH = 3


def match_all(column: ColumnElement[str], words: Iterable[str]) -> ColumnElement[bool]:
    """Every word appears somewhere in `column` (LIKE per word, the index serves each
    word of three letters or more)."""
    return and_(*(
        (column if len(w) >= MIN_INDEXED_LENGTH else column.concat(""))
        .like(_like_pattern(w), escape="\\")
        for w in words
    ))


def title_rank(title_column: ColumnElement[str], words: list[str]) -> ColumnElement[int]:
    """0 when the title alone holds every word, 1 when it holds the first word, else 2:
    products named after the query come before those that only mention it."""
    if not words:
        return literal(0)
    return case(
        (match_all(title_column, words), 0),
        (title_column.like(_like_pattern(words[0]), escape="\\"), 1),
        else_=2,
    )


# -- PostgreSQL: full-text search ----------------------------------------------------------
# Both configurations read the search form: `arabic` stems Arabic words (and leaves Latin
# ones as they are), `english` stems Latin words (and leaves Arabic ones as they are), so
# a word is found whichever language it is in. The title vector alone serves "named
# after the query" and ranks those products; the text vector (title weighted A, the rest
# D) serves every match and ranks the products that only mention the query.
TITLE_VECTOR_SQL = (
    "to_tsvector('arabic'::regconfig, search_title) || "
    "to_tsvector('english'::regconfig, search_title)"
)
TEXT_VECTOR_SQL = (
    "setweight(to_tsvector('arabic'::regconfig, search_title) || "
    "to_tsvector('english'::regconfig, search_title), 'A') || "
    "to_tsvector('arabic'::regconfig, search_text) || "
    "to_tsvector('english'::regconfig, search_text)"
)


class PostgresOnly(ColumnElement[Any]):
    """A generated column's expression on PostgreSQL, NULL elsewhere (SQLite keeps the
    column empty and searches the search form with LIKE)."""

    inherit_cache = True

    def __init__(self, sql: str) -> None:
        self.sql = sql


@compiles(PostgresOnly, "postgresql")
def _postgres_only_pg(element: PostgresOnly, compiler: Any, **kw: Any) -> str:
    return element.sql


@compiles(PostgresOnly)
def _postgres_only_other(element: PostgresOnly, compiler: Any, **kw: Any) -> str:
    return "NULL"


def _either_reading(word: str) -> ColumnElement[Any]:
    """`word` as the `arabic` or the `english` configuration reads it; once when both
    read it alike ("samsung", "هاتف"). The planner estimates 'x' | 'x' as twice as
    common as 'x', and for a common word that tips it into reading the table instead of
    the index (16 ms instead of 4 for "samsung" in 100,000 products). Both sides are
    immutable functions of the query, so PostgreSQL folds the CASE when it plans."""
    arabic = func.plainto_tsquery(literal_column("'arabic'::regconfig"), word)
    english = func.plainto_tsquery(literal_column("'english'::regconfig"), word)
    return case((arabic == english, english), else_=arabic.op("||")(english))


def ts_query(words: Iterable[str]) -> ColumnElement[Any]:
    """Every word, each as the `arabic` or the `english` configuration reads it."""
    per_word = [_either_reading(w) for w in words]
    query = per_word[0]
    for more in per_word[1:]:
        query = query.op("&&")(more)
    return query.self_group()


def ts_matches(vector: ColumnElement[Any], query: ColumnElement[Any]) -> ColumnElement[bool]:
    return vector.op("@@", return_type=Boolean)(query)
