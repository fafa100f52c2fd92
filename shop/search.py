"""Search text for the catalog: one normal form for Arabic and English.

Shoppers type Arabic the way they write it by hand: hamza or not on the alef, ه for ة,
ي for ى, with or without harakat. Both the stored search column and the typed query go
through `normalise`, so "احمد" finds "أحمد" and "مكتبه" finds "مكتبة".

On PostgreSQL the normalised column carries a pg_trgm GIN index, which serves
`LIKE '%word%'` for every word of the query; SQLite falls back to a plain scan with LIKE.
Both sides are already lower-cased by `normalise`, so plain LIKE matches exactly what
ILIKE would, without folding case again on every row the index hands back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import ColumnElement, and_, case, literal

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


def query_words(query: str | None) -> list[str]:
    """The distinct normalised words of a shopper's query (at most MAX_QUERY_WORDS)."""
    words: list[str] = []
    for word in normalise(query).split(" "):
        if word and word not in words:
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
