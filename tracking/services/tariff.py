"""Loading the customs tariff from a CSV file: preview what would change, then apply it.

An import is an upsert: each line of the file adds its HS code or changes it; lines of
the tariff the file does not name are kept (removing a line is not done by import).

`preview_import` reads the file and compares it with the tariff: lines added, changed
(old → new), unchanged, and rejected rows with their line number and reason. When no
row is rejected and something would change, it stores the rows it read under a random
token, with a fingerprint of the tariff it was compared with. `apply_import` applies
exactly those rows, once, in the caller's transaction, and only while the tariff is still
the one previewed; otherwise the administrator previews again. Nothing is applied from a
file with any rejected row.

HS codes: the Harmonized System numbers goods by chapter (2 digits), heading (4),
subheading (6), and national lines (8 or 10); a tariff line applies to every code that
starts with it, so any of those lengths is accepted. Digits may be typed Arabic-Indic
("٦١٠٩") and are stored ASCII; dots and spaces inside a code ("6109.10") are ignored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select, text

from app.audit import record_audit
from app.database import db, utcnow
from app.errors import Conflict, NotFound, ValidationFailed
from app.numbers import ascii_digits, parse_decimal
from tracking.models import TariffImportPreview, TariffLine

CODE_COLUMN = "hs_prefix"
CODE_ALIASES = ("hs_prefix", "hs_code")
RATE_COLUMN = "rate_percent"
COLUMNS = ("hs_prefix", "rate_percent", "description_en", "description_ar")
HS_LENGTHS = (2, 4, 6, 8, 10)
DESCRIPTION_MAX = 200
MAX_ROWS = 20000
PREVIEW_VALID_FOR = timedelta(hours=1)
# One application of the tariff at a time (PostgreSQL advisory lock; SQLite locks the file).
_TARIFF_LOCK = 0x7A11FF


@dataclass(frozen=True)
class Row:
    line: int
    hs_prefix: str
    rate_bp: int
    description_en: str
    description_ar: str

    def values(self) -> dict[str, Any]:
        return {"rate_bp": self.rate_bp, "description_en": self.description_en,
                "description_ar": self.description_ar}


@dataclass(frozen=True)
class Rejected:
    line: int
    code: str
    reasons: tuple[Any, ...]


@dataclass
class Preview:
    added: list[Row] = field(default_factory=list)
    changed: list[tuple[Row, dict[str, Any]]] = field(default_factory=list)  # row, before
    unchanged: list[Row] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    file_errors: list[Any] = field(default_factory=list)
    kept: int = 0  # tariff lines the file does not name (they stay)
    token: str | None = None

    @property
    def acceptable(self) -> bool:
        return not self.rejected and not self.file_errors

    @property
    def changes(self) -> int:
        return len(self.added) + len(self.changed)


def _code(raw: str) -> tuple[str, Any | None]:
    code = ascii_digits(raw or "").replace(".", "").replace(" ", "")
    if not code:
        return code, _l("the HS code is missing")
    if not code.isdigit() or len(code) not in HS_LENGTHS or code.startswith("00"):
        return code, _l("the HS code must be 2, 4, 6, 8 or 10 digits (chapter, heading, "
                        "subheading or national line)")
    return code, None


def _rate(raw: str) -> tuple[int | None, Any | None]:
    text_ = ascii_digits(raw or "").removesuffix("%").strip()
    if not text_:
        return None, _l("the duty rate is missing")
    if text_.startswith("-"):
        return None, _l("the duty rate cannot be negative")
    percent = parse_decimal(text_)
    if percent is None:
        return None, _l("the duty rate is not a number")
    if percent > 100:
        return None, _l("the duty rate is over 100 %")
    bp = percent * 100
    if bp != bp.to_integral_value():
        return None, _l("the duty rate has more than two decimals")
    return int(bp), None


def read_rows(data: bytes) -> tuple[list[Row], list[Rejected], list[Any]]:
    """The good rows, the rejected rows (line and reasons) and the file's own errors
    (not UTF-8, a missing column, too many rows) of a tariff CSV. Changes nothing."""
    try:
        content = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [], [_l("The file is not UTF-8 text. Save it as \"CSV UTF-8\" and try "
                           "again.")]
    reader = csv.DictReader(io.StringIO(content))
    names = [(n or "").strip().lower() for n in (reader.fieldnames or [])]
    reader.fieldnames = names
    code_col = next((c for c in CODE_ALIASES if c in names), None)
    missing = ([] if code_col else [CODE_COLUMN]) + ([] if RATE_COLUMN in names
                                                     else [RATE_COLUMN])
    if missing:
        return [], [], [_l("Missing column(s): %(cols)s", cols=", ".join(missing))]
    rows: list[Row] = []
    rejected: list[Rejected] = []
    first_line: dict[str, int] = {}
    for n, rec in enumerate(reader, start=2):
        if n - 1 > MAX_ROWS:
            return [], [], [_l("The file has more than %(n)s lines.", n=MAX_ROWS)]
        raw_code = (rec.get(code_col) or "").strip()
        code, code_problem = _code(raw_code)
        bp, rate_problem = _rate(rec.get(RATE_COLUMN) or "")
        en = (rec.get("description_en") or "").strip()
        ar = (rec.get("description_ar") or "").strip()
        reasons = [p for p in (code_problem, rate_problem) if p is not None]
        if len(en) > DESCRIPTION_MAX or len(ar) > DESCRIPTION_MAX:
            reasons.append(_l("a description is longer than %(n)s characters",
                              n=DESCRIPTION_MAX))
        if code_problem is None and code in first_line:
            reasons.append(_l("HS code %(code)s is already on line %(line)s", code=code,
                              line=first_line[code]))
        if reasons:
            rejected.append(Rejected(n, raw_code, tuple(reasons)))
            continue
        first_line[code] = n
        assert bp is not None
        rows.append(Row(n, code, bp, en, ar))
    if not rows and not rejected:
        return [], [], [_l("The file has no tariff lines.")]
    return rows, rejected, []


def fingerprint() -> str:
    """A digest of the whole tariff as it stands (changes when any line changes)."""
    h = hashlib.sha256()
    for t in db.scalars(select(TariffLine).order_by(TariffLine.hs_prefix)):
        h.update(f"{t.hs_prefix}\t{t.rate_bp}\t{t.description_en}\t{t.description_ar}\n"
                 .encode())
    return h.hexdigest()


def _compare(rows: list[Row], preview: Preview) -> None:
    existing = {t.hs_prefix: t for t in db.scalars(select(TariffLine))}
    named = set()
    for r in rows:
        named.add(r.hs_prefix)
        line = existing.get(r.hs_prefix)
        if line is None:
            preview.added.append(r)
            continue
        before = {"rate_bp": line.rate_bp, "description_en": line.description_en,
                  "description_ar": line.description_ar}
        if before == r.values():
            preview.unchanged.append(r)
        else:
            preview.changed.append((r, before))
    preview.kept = len(set(existing) - named)


def preview_import(data: bytes, *, actor_id: int | None) -> Preview:
    """What loading tariff file `data` would change, and a token to apply exactly that.

    Changes no tariff line. When the file is acceptable and changes something, stores
    the preview (its rows and the tariff's fingerprint) and sets `token`; flushes.
    """
    preview = Preview()
    rows, preview.rejected, preview.file_errors = read_rows(data)
    if preview.file_errors:
        return preview
    _compare(rows, preview)
    if preview.acceptable and preview.changes:
        preview.token = secrets.token_urlsafe(32)
        db.add(TariffImportPreview(
            token=preview.token, file_sha256=hashlib.sha256(data).hexdigest(),
            basis=fingerprint(), created_by_id=actor_id,
            rows=[[r.line, r.hs_prefix, r.rate_bp, r.description_en, r.description_ar]
                  for r in rows]))
        db.flush()
    return preview


def _lock_tariff() -> None:
    if db.get_bind().dialect.name == "postgresql":
        db.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _TARIFF_LOCK})


def apply_import(token: str, *, actor_id: int | None) -> Preview:
    """Apply the previewed tariff file `token`: add and change its lines, all at once.

    Raises NotFound for an unknown token, Conflict when it was applied already, is older
    than an hour, or the tariff changed since it was previewed (nothing is applied then:
    preview again). Audits `customs.tariff_imported` with each line before and after;
    flushes, and the caller's unit of work commits it all or nothing.
    """
    stored = db.scalar(select(TariffImportPreview).where(TariffImportPreview.token == token)
                       .with_for_update()) if token else None
    if stored is None:
        raise NotFound(_l("This preview is unknown. Upload the file again."))
    if stored.applied_at is not None:
        raise Conflict(_l("This file was applied already; nothing was changed again."))
    if utcnow() - stored.created_at > PREVIEW_VALID_FOR:
        raise Conflict(_l("This preview is more than an hour old. Upload the file again to "
                          "see what it changes now."))
    _lock_tariff()
    if fingerprint() != stored.basis:
        raise Conflict(_l("The tariff changed since this preview. Upload the file again to "
                          "see what it changes now."))
    rows = [Row(*r) for r in stored.rows]
    preview = Preview()
    _compare(rows, preview)
    existing = {t.hs_prefix: t for t in db.scalars(select(TariffLine))}
    now = utcnow()
    for r in preview.added:
        db.add(TariffLine(hs_prefix=r.hs_prefix, updated_at=now, **r.values()))
    for r, _before in preview.changed:
        line = existing[r.hs_prefix]
        line.rate_bp = r.rate_bp
        line.description_en, line.description_ar = r.description_en, r.description_ar
        line.updated_at = now
    stored.applied_at = now
    stored.applied_by_id = actor_id
    record_audit("customs.tariff_imported", object_type="customs_tariff",
                 object_id=stored.id, actor_id=actor_id, details={
                     "file_sha256": stored.file_sha256,
                     "added": len(preview.added), "changed": len(preview.changed),
                     "unchanged": len(preview.unchanged), "kept": preview.kept,
                     "before": {r.hs_prefix: b for r, b in preview.changed},
                     "after": {r.hs_prefix: r.values()
                               for r in [*preview.added, *(c for c, _ in preview.changed)]},
                 })
    db.flush()
    return preview


def rejection_messages(preview: Preview) -> list[str]:
    """The file's errors and each rejected row as one sentence ("Line 3: …")."""
    out = [str(e) for e in preview.file_errors]
    for r in preview.rejected:
        out.append(str(_l("Line %(n)s: %(reason)s.", n=r.line,
                          reason="; ".join(str(x) for x in r.reasons))))
    return out


def import_now(data: bytes, *, actor_id: int | None) -> Preview:
    """Preview and apply a tariff file in one go (seed data, commands, tests).

    Raises ValidationFailed listing every rejected row (nothing applied); flushes.
    """
    preview = preview_import(data, actor_id=actor_id)
    if not preview.acceptable:
        raise ValidationFailed(_l("Nothing was applied: the file has rejected rows."),
                               fields={"file": rejection_messages(preview)})
    if preview.token is None:
        return preview
    return apply_import(preview.token, actor_id=actor_id)


def percent(bp: int) -> Decimal:
    return Decimal(bp) / 100
